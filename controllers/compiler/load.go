package compiler

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"tollgate.dev/tollgate/api/v1alpha1"
)

// DefaultNamespace is the namespace of file-mode objects that name none, as
// kubectl would apply them to the default namespace.
const DefaultNamespace = "default"

// ErrUnsupportedKind is returned for a manifest that is not one of the four
// Tollgate kinds or a v1 Secret: file mode refuses what it would otherwise
// silently ignore.
var ErrUnsupportedKind = errors.New("unsupported kind")

// LoadManifests reads every *.yaml, *.yml and *.json file under dir
// (recursively, in lexical order, skipping dot-directories such as the
// "..data" of mounted ConfigMaps) and returns the objects as compiler input.
// Files may hold several documents separated by "---", or a v1 List. This
// is the data plane's file mode: no cluster, so VirtualKeys carry their key
// in a Secret named KeySecretName(name) with the key under data.key (or
// stringData.key).
func LoadManifests(dir string) (Input, error) {
	in := Input{Secrets: map[string]map[string][]byte{}}
	l := loader{in: &in, seen: map[string]bool{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		// Mounted ConfigMaps expose their files as symlinks; follow them.
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return l.load(p, b)
	})
	if err != nil {
		return Input{}, err
	}
	return in, nil
}

// ParseManifests decodes multi-document YAML (or JSON) into compiler input;
// source names the origin in error messages.
func ParseManifests(source string, data []byte) (Input, error) {
	in := Input{Secrets: map[string]map[string][]byte{}}
	l := loader{in: &in, seen: map[string]bool{}}
	if err := l.load(source, data); err != nil {
		return Input{}, err
	}
	return in, nil
}

type loader struct {
	in   *Input
	seen map[string]bool // "Kind/ns/name"
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Items of a v1 List, kept undecoded (sigs.k8s.io/yaml converts YAML
	// to JSON and hands it to encoding/json).
	Items []json.RawMessage `json:"items"`
}

func (l *loader) load(source string, data []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", source, n, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := l.doc(doc); err != nil {
			return fmt.Errorf("%s: document %d: %w", source, n, err)
		}
	}
}

func (l *loader) doc(doc []byte) error {
	var tm typeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	if tm.APIVersion == "" && tm.Kind == "" {
		// A document of only comments or an empty mapping.
		var v any
		if err := yaml.Unmarshal(doc, &v); err == nil && (v == nil || isEmptyMap(v)) {
			return nil
		}
	}
	gv := v1alpha1.GroupVersion.String()
	switch {
	case tm.APIVersion == "v1" && tm.Kind == "List":
		for i, item := range tm.Items {
			if err := l.doc(item); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		return nil
	case tm.APIVersion == "v1" && tm.Kind == "Secret":
		var s corev1.Secret
		if err := yaml.UnmarshalStrict(doc, &s); err != nil {
			return fmt.Errorf("Secret: %w", err)
		}
		ns := defaultNS(&s.Namespace)
		if err := l.claim("Secret", ns, s.Name); err != nil {
			return err
		}
		data := make(map[string][]byte, len(s.Data)+len(s.StringData))
		for k, v := range s.Data {
			data[k] = v
		}
		// The API server merges stringData over data; do the same.
		for k, v := range s.StringData {
			data[k] = []byte(v)
		}
		l.in.Secrets[ns+"/"+s.Name] = data
		return nil
	case tm.APIVersion != gv:
		return fmt.Errorf("%w %s %s: file mode reads %s kinds and v1 Secrets", ErrUnsupportedKind, tm.APIVersion, tm.Kind, gv)
	}
	switch tm.Kind {
	case KindLLMProvider:
		var o v1alpha1.LLMProvider
		if err := decode(doc, &o, &o.Namespace, &o.Name); err != nil {
			return err
		}
		l.in.Providers = append(l.in.Providers, o)
		return l.claim(tm.Kind, o.Namespace, o.Name)
	case KindRoute:
		var o v1alpha1.Route
		if err := decode(doc, &o, &o.Namespace, &o.Name); err != nil {
			return err
		}
		l.in.Routes = append(l.in.Routes, o)
		return l.claim(tm.Kind, o.Namespace, o.Name)
	case KindVirtualKey:
		var o v1alpha1.VirtualKey
		if err := decode(doc, &o, &o.Namespace, &o.Name); err != nil {
			return err
		}
		l.in.VirtualKeys = append(l.in.VirtualKeys, o)
		return l.claim(tm.Kind, o.Namespace, o.Name)
	case KindMCPTool:
		var o v1alpha1.MCPTool
		if err := decode(doc, &o, &o.Namespace, &o.Name); err != nil {
			return err
		}
		l.in.MCPTools = append(l.in.MCPTools, o)
		return l.claim(tm.Kind, o.Namespace, o.Name)
	}
	return fmt.Errorf("%w %s %s", ErrUnsupportedKind, tm.APIVersion, tm.Kind)
}

// decode is strict: an unknown field in a hand-written file is a typo that
// would otherwise be dropped without a word.
func decode(doc []byte, into any, ns, name *string) error {
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		return err
	}
	defaultNS(ns)
	if *name == "" {
		return errors.New("metadata.name is required")
	}
	return nil
}

func defaultNS(ns *string) string {
	if *ns == "" {
		*ns = DefaultNamespace
	}
	return *ns
}

func (l *loader) claim(kind, ns, name string) error {
	if name == "" {
		return fmt.Errorf("%s: metadata.name is required", kind)
	}
	id := kind + "/" + ns + "/" + name
	if _, dup := l.seen[id]; dup {
		return fmt.Errorf("%s %s/%s is defined twice", kind, ns, name)
	}
	l.seen[id] = true
	return nil
}

func isEmptyMap(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}
