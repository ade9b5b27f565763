package gemini

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/gemini"
)

// maxSchemaDepth bounds nesting (and $ref expansion) so a hostile schema
// cannot make the conversion recurse without end.
const maxSchemaDepth = 64

// ConvertSchema converts a JSON Schema (as sent in OpenAI tool parameters
// and response_format.json_schema) to Gemini's Schema, an OpenAPI 3.0
// subset. It keeps type (lower-case names become Gemini's upper-case enum;
// a ["T","null"] type array becomes T + nullable), format where Gemini
// supports it (date-time and enum for strings, float/double for numbers,
// int32/int64 for integers), title, description, enum (string enums only),
// const (a string becomes a one-value enum), properties (with
// propertyOrdering in the client's order, so JSON output keeps the field
// order OpenAI structured outputs would), required (restricted to declared
// properties), items, min/maxItems, min/maxLength, min/maxProperties,
// minimum, maximum, pattern, default, example (or the first of examples),
// and anyOf/oneOf (as anyOf; a {"type":"null"} member becomes nullable).
// $ref to #/$defs/... or #/definitions/... is inlined; a recursive
// reference becomes an OBJECT without properties. allOf is merged
// (properties and required of its members).
//
// Everything else is dropped because Gemini rejects or ignores it:
// $schema, $id, $comment, $defs/definitions (after inlining),
// additionalProperties, patternProperties, unevaluatedProperties,
// propertyNames, dependentRequired, dependentSchemas, strict, not,
// if/then/else, uniqueItems, contains, prefixItems and tuple items,
// multipleOf, exclusiveMinimum, exclusiveMaximum, readOnly, writeOnly,
// deprecated, contentEncoding, contentMediaType, non-string enum/const
// values, and unsupported format values. A nil schema (JSON true, {}) means
// "anything".
func ConvertSchema(raw json.RawMessage) (*wire.Schema, error) {
	c := schemaConverter{}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(raw, &root); err != nil {
		var b bool
		if json.Unmarshal(raw, &b) == nil {
			return nil, nil
		}
		return nil, errors.New("schema must be a JSON object")
	}
	c.defs = make(map[string]json.RawMessage)
	for _, key := range []string{"$defs", "definitions"} {
		if d, ok := root[key]; ok {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(d, &m); err != nil {
				return nil, fmt.Errorf("schema %s must be an object", key)
			}
			for name, s := range m {
				c.defs["#/"+key+"/"+name] = s
			}
		}
	}
	return c.convert(root, 0)
}

type schemaConverter struct {
	defs    map[string]json.RawMessage
	expands []string // $refs being expanded, to detect recursion
}

func (c *schemaConverter) convertRaw(raw json.RawMessage, depth int) (*wire.Schema, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		if bytes.Equal(raw, []byte("true")) {
			return nil, nil
		}
		return nil, errors.New("schema must be a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errors.New("schema must be a JSON object")
	}
	return c.convert(m, depth)
}

func (c *schemaConverter) convert(m map[string]json.RawMessage, depth int) (*wire.Schema, error) {
	if depth > maxSchemaDepth {
		return nil, errors.New("schema is nested too deeply")
	}
	if ref, ok := m["$ref"]; ok {
		return c.convertRef(ref, m, depth)
	}
	s := &wire.Schema{}
	var str string
	for _, kw := range []struct {
		key string
		dst *string
	}{{"title", &s.Title}, {"description", &s.Description}, {"pattern", &s.Pattern}} {
		if v, ok := m[kw.key]; ok && json.Unmarshal(v, &str) == nil {
			*kw.dst = str
		}
	}
	if v, ok := m["type"]; ok {
		if err := c.setType(s, v); err != nil {
			return nil, err
		}
	}
	for _, kw := range []struct {
		key string
		dst **int64
	}{
		{"minItems", &s.MinItems}, {"maxItems", &s.MaxItems},
		{"minLength", &s.MinLength}, {"maxLength", &s.MaxLength},
		{"minProperties", &s.MinProperties}, {"maxProperties", &s.MaxProperties},
	} {
		if v, ok := m[kw.key]; ok {
			var n int64
			if json.Unmarshal(v, &n) == nil {
				*kw.dst = &n
			}
		}
	}
	for _, kw := range []struct {
		key string
		dst **float64
	}{{"minimum", &s.Minimum}, {"maximum", &s.Maximum}} {
		if v, ok := m[kw.key]; ok {
			var f float64
			if json.Unmarshal(v, &f) == nil {
				*kw.dst = &f
			}
		}
	}
	if v, ok := m["default"]; ok {
		s.Default = v
	}
	if v, ok := m["example"]; ok {
		s.Example = v
	} else if v, ok := m["examples"]; ok {
		var ex []json.RawMessage
		if json.Unmarshal(v, &ex) == nil && len(ex) > 0 {
			s.Example = ex[0]
		}
	}
	if v, ok := m["enum"]; ok {
		var vals []string
		if json.Unmarshal(v, &vals) == nil && len(vals) > 0 {
			s.Enum = vals
		}
	} else if v, ok := m["const"]; ok && json.Unmarshal(v, &str) == nil {
		s.Enum = []string{str}
	}
	if v, ok := m["properties"]; ok {
		if err := c.setProperties(s, v, depth); err != nil {
			return nil, err
		}
	}
	if v, ok := m["required"]; ok && s.Properties != nil {
		var req []string
		if json.Unmarshal(v, &req) == nil {
			for _, r := range req {
				if _, ok := s.Properties[r]; ok {
					s.Required = append(s.Required, r)
				}
			}
		}
	}
	if v, ok := m["items"]; ok && len(bytes.TrimSpace(v)) > 0 && bytes.TrimSpace(v)[0] == '{' {
		items, err := c.convertRaw(v, depth+1)
		if err != nil {
			return nil, err
		}
		s.Items = items
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		if v, ok := m[key]; ok {
			if err := c.setAnyOf(s, v, depth); err != nil {
				return nil, err
			}
		}
	}
	if v, ok := m["allOf"]; ok {
		if err := c.mergeAllOf(s, v, depth); err != nil {
			return nil, err
		}
	}
	if s.Type == "" {
		switch {
		case s.Properties != nil:
			s.Type = wire.TypeObject
		case s.Items != nil:
			s.Type = wire.TypeArray
		case s.Enum != nil:
			s.Type = wire.TypeString
		}
	}
	if s.Enum != nil && s.Type != wire.TypeString {
		s.Enum = nil
	}
	if v, ok := m["format"]; ok && json.Unmarshal(v, &str) == nil && supportedFormat(s.Type, str) {
		s.Format = str
	}
	// A single anyOf member left after removing null is the schema itself.
	if len(s.AnyOf) == 1 && s.Type == "" && s.Properties == nil && s.Items == nil {
		only := *s.AnyOf[0]
		if s.Description != "" {
			only.Description = s.Description
		}
		if s.Title != "" {
			only.Title = s.Title
		}
		only.Nullable = only.Nullable || s.Nullable
		if s.Default != nil {
			only.Default = s.Default
		}
		return &only, nil
	}
	return s, nil
}

// convertRef inlines a local $ref; sibling description/title override the
// referenced schema's.
func (c *schemaConverter) convertRef(ref json.RawMessage, m map[string]json.RawMessage, depth int) (*wire.Schema, error) {
	var name string
	if err := json.Unmarshal(ref, &name); err != nil {
		return nil, errors.New("$ref must be a string")
	}
	target, ok := c.defs[name]
	if !ok {
		return nil, fmt.Errorf("$ref %q does not point into $defs or definitions", name)
	}
	for _, e := range c.expands {
		if e == name {
			return &wire.Schema{Type: wire.TypeObject}, nil
		}
	}
	c.expands = append(c.expands, name)
	s, err := c.convertRaw(target, depth+1)
	c.expands = c.expands[:len(c.expands)-1]
	if err != nil || s == nil {
		return s, err
	}
	var str string
	if v, ok := m["description"]; ok && json.Unmarshal(v, &str) == nil {
		s.Description = str
	}
	if v, ok := m["title"]; ok && json.Unmarshal(v, &str) == nil {
		s.Title = str
	}
	return s, nil
}

var schemaTypes = map[string]string{
	"string": wire.TypeString, "number": wire.TypeNumber, "integer": wire.TypeInteger,
	"boolean": wire.TypeBoolean, "array": wire.TypeArray, "object": wire.TypeObject,
}

// setType maps "type": a name or an array of names (with "null" meaning
// nullable; several non-null names become anyOf).
func (c *schemaConverter) setType(s *wire.Schema, v json.RawMessage) error {
	var one string
	if json.Unmarshal(v, &one) == nil {
		if one == "null" {
			s.Nullable = true
			return nil
		}
		t, ok := schemaTypes[strings.ToLower(one)]
		if !ok {
			return fmt.Errorf("unknown schema type %q", one)
		}
		s.Type = t
		return nil
	}
	var many []string
	if err := json.Unmarshal(v, &many); err != nil {
		return errors.New("schema type must be a string or an array of strings")
	}
	var types []string
	for _, n := range many {
		if n == "null" {
			s.Nullable = true
			continue
		}
		t, ok := schemaTypes[strings.ToLower(n)]
		if !ok {
			return fmt.Errorf("unknown schema type %q", n)
		}
		types = append(types, t)
	}
	switch len(types) {
	case 0:
	case 1:
		s.Type = types[0]
	default:
		for _, t := range types {
			s.AnyOf = append(s.AnyOf, &wire.Schema{Type: t})
		}
	}
	return nil
}

// setProperties converts properties and records their order.
func (c *schemaConverter) setProperties(s *wire.Schema, v json.RawMessage, depth int) error {
	var props map[string]json.RawMessage
	if err := json.Unmarshal(v, &props); err != nil {
		return errors.New("schema properties must be an object")
	}
	s.Properties = make(map[string]*wire.Schema, len(props))
	for name, p := range props {
		ps, err := c.convertRaw(p, depth+1)
		if err != nil {
			return fmt.Errorf("property %q: %w", name, err)
		}
		if ps == nil {
			ps = &wire.Schema{}
		}
		s.Properties[name] = ps
	}
	if len(props) > 1 {
		s.PropertyOrdering = objectKeys(v)
	}
	return nil
}

// setAnyOf converts anyOf/oneOf members; {"type":"null"} members make the
// schema nullable instead.
func (c *schemaConverter) setAnyOf(s *wire.Schema, v json.RawMessage, depth int) error {
	var members []json.RawMessage
	if err := json.Unmarshal(v, &members); err != nil {
		return errors.New("anyOf/oneOf must be an array")
	}
	for _, mraw := range members {
		ms, err := c.convertRaw(mraw, depth+1)
		if err != nil {
			return err
		}
		if ms == nil {
			continue
		}
		if ms.Type == "" && ms.Nullable && ms.AnyOf == nil && ms.Properties == nil {
			s.Nullable = true
			continue
		}
		s.AnyOf = append(s.AnyOf, ms)
	}
	return nil
}

// mergeAllOf folds allOf members into s: properties, required, and type or
// description when s has none.
func (c *schemaConverter) mergeAllOf(s *wire.Schema, v json.RawMessage, depth int) error {
	var members []json.RawMessage
	if err := json.Unmarshal(v, &members); err != nil {
		return errors.New("allOf must be an array")
	}
	if len(s.Properties) == 1 && s.PropertyOrdering == nil {
		for k := range s.Properties {
			s.PropertyOrdering = []string{k}
		}
	}
	for _, mraw := range members {
		ms, err := c.convertRaw(mraw, depth+1)
		if err != nil {
			return err
		}
		if ms == nil {
			continue
		}
		if s.Type == "" {
			s.Type = ms.Type
		}
		if s.Description == "" {
			s.Description = ms.Description
		}
		if s.Items == nil {
			s.Items = ms.Items
		}
		if s.Enum == nil {
			s.Enum = ms.Enum
		}
		if len(ms.Properties) > 0 {
			if s.Properties == nil {
				s.Properties = make(map[string]*wire.Schema, len(ms.Properties))
			}
			order := ms.PropertyOrdering
			if order == nil {
				for k := range ms.Properties {
					order = append(order, k)
				}
			}
			for _, k := range order {
				if _, dup := s.Properties[k]; !dup {
					s.PropertyOrdering = append(s.PropertyOrdering, k)
				}
				s.Properties[k] = ms.Properties[k]
			}
		}
		s.Required = append(s.Required, ms.Required...)
	}
	if len(s.Properties) < 2 {
		s.PropertyOrdering = nil
	}
	return nil
}

// supportedFormat reports whether Gemini accepts format f for type t.
func supportedFormat(t, f string) bool {
	switch t {
	case wire.TypeString:
		return f == "date-time" || f == "enum"
	case wire.TypeNumber:
		return f == "float" || f == "double"
	case wire.TypeInteger:
		return f == "int32" || f == "int64"
	}
	return false
}

// objectKeys returns the keys of a JSON object in document order
// (map decoding loses it).
func objectKeys(obj json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := t.(string)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return keys
		}
		keys = append(keys, k)
	}
	return keys
}
