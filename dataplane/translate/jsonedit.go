package translate

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// EditObject rewrites the top-level members of the JSON object obj, in
// order and otherwise byte for byte: edit gets each member's name and raw
// value and returns the value to write in its place (the same value to
// keep it, nil to drop the member; val is valid only during the call).
// Native passthrough uses it to replace
// a provider's envelope (id, model) without decoding the rest.
//
// obj must be a valid JSON object in UTF-8 with unique member names;
// anything else is an error, so a caller can fall back to its canonical
// path rather than forward what a strict client would reject.
func EditObject(obj []byte, edit func(name string, val jsontext.Value) jsontext.Value) ([]byte, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, errNotObject
	}
	out := make([]byte, 0, len(obj)+64)
	out = append(out, '{')
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		key := name.String()
		val, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		nv := edit(key, val)
		if nv == nil {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		if out, err = jsontext.AppendQuote(out, key); err != nil {
			return nil, err
		}
		out = append(out, ':')
		out = append(out, nv...)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	if _, err := dec.ReadToken(); err == nil || !errors.Is(err, io.EOF) {
		return nil, errNotObject // trailing data
	}
	return append(out, '}'), nil
}

var errNotObject = errors.New("not a single JSON object")

// Quote returns s as a JSON string value.
func Quote(s string) jsontext.Value {
	b, err := jsontext.AppendQuote(nil, s)
	if err != nil { // invalid UTF-8: encode what encoding/json would
		b, _ = jsontext.AppendQuote(nil, strings.ToValidUTF8(s, "\uFFFD"))
	}
	return b
}
