package translate

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func TestEditObject(t *testing.T) {
	replaceModel := func(name string, val jsontext.Value) jsontext.Value {
		switch name {
		case "model":
			return Quote("target")
		case "drop":
			return nil
		}
		return val
	}
	for _, tc := range []struct{ in, want string }{
		{`{"model":"a","x":{"y":[1, 2]},"drop":1,"z":"é\u00e9"}`, `{"model":"target","x":{"y":[1, 2]},"z":"é\u00e9"}`},
		{` { "a" : 1 , "model" : null } `, `{"a":1,"model":"target"}`},
		{`{}`, `{}`},
		{`{"drop":true}`, `{}`},
		{`{"m\u006fdel":"a"}`, `{"model":"target"}`}, // names are compared unescaped
	} {
		got, err := EditObject([]byte(tc.in), replaceModel)
		if err != nil || string(got) != tc.want {
			t.Errorf("EditObject(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"a":1,"a":2}`, `{"a":1} {}`, `{"a":1`, "{\"a\":\"\xff\"}", `"x"`} {
		if got, err := EditObject([]byte(bad), replaceModel); err == nil {
			t.Errorf("EditObject(%q) = %s; want an error", bad, got)
		}
	}
	if got := string(Quote("bad \xff")); got != `"bad `+"\uFFFD"+`"` {
		t.Errorf("Quote of invalid UTF-8 = %s", got)
	}
}
