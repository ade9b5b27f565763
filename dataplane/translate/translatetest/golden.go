// Package translatetest holds the harness the translator test suites share:
// golden files, fixture listing, draining a ChunkReader, the ChunkReader
// contract, replaying a stream at every split, fake-provider round trips and
// benchmark scaffolding. Only tests import it.
package translatetest

import (
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// Update is the -update flag: golden files are rewritten instead of
// compared. It is registered here once so every test binary has exactly one.
var Update = flag.Bool("update", false, "rewrite golden files")

// Fixtures lists testdata/dir/*suffix, skipping golden files; a suite
// without fixtures is a failure, not a silent pass.
func Fixtures(t testing.TB, dir, suffix string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if !strings.Contains(filepath.Base(f), ".golden.") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no fixtures in testdata/%s", dir)
	}
	return out
}

// ReadFile returns a file's contents or fails the test or benchmark.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// GoldenPath names the golden file of fixture in: its extension becomes
// ".golden"+ext.
func GoldenPath(in, ext string) string {
	return strings.TrimSuffix(in, filepath.Ext(in)) + ".golden" + ext
}

// CheckJSON compares got (any JSON-marshalable value) with a golden JSON
// file semantically, or rewrites it with -update.
func CheckJSON(t testing.TB, path string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if *Update {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var g, w any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("golden %s: %v", path, err)
	}
	if d := cmp.Diff(w, g); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}

// CheckText compares got with a golden file byte for byte, or rewrites it
// with -update.
func CheckText(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}

// RequestGolden is what an upstream request is compared as: method, URL,
// headers (first value each) and the body, which must be JSON.
func RequestGolden(t testing.TB, hr *http.Request) map[string]any {
	t.Helper()
	body, err := io.ReadAll(hr.Body)
	if err != nil {
		t.Fatal(err)
	}
	var decoded any
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	headers := map[string]string{}
	for k := range hr.Header {
		headers[k] = hr.Header.Get(k)
	}
	return map[string]any{"method": hr.Method, "url": hr.URL.String(), "headers": headers, "body": decoded}
}

// requestFixture is a testdata/requests file: the target model, provider
// fields that differ from the suite's default, and the request.
type requestFixture struct {
	Model    string          `json:"model"`
	Provider json.RawMessage `json:"provider"`
	Request  json.RawMessage `json:"request"`
}

// LoadRequestFixture reads a request fixture over provider p and returns
// the raw request body and the target; the suite decodes the body the way
// its translator receives it.
func LoadRequestFixture(t testing.TB, path string, p *routetable.Provider) (json.RawMessage, translate.Target) {
	t.Helper()
	var f requestFixture
	if err := json.Unmarshal(ReadFile(t, path), &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.Provider) > 0 {
		if err := json.Unmarshal(f.Provider, p); err != nil {
			t.Fatalf("%s provider: %v", path, err)
		}
	}
	return f.Request, translate.Target{Provider: p, Model: f.Model}
}

// DecodeRequest unmarshals a canonical request as it is stored in a
// fixture, without the inbound parser's checks.
func DecodeRequest(t testing.TB, path string, raw json.RawMessage) *openai.ChatRequest {
	t.Helper()
	var req *openai.ChatRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return req
}
