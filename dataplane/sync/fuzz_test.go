package sync

import (
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/go-logr/logr"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

// FuzzReceive feeds arbitrary table messages to the client: it must never
// panic, must apply only tables that decode and finalize, must answer every
// message with an ack or a nack for that version, and must keep the old table
// on a nack.
func FuzzReceive(f *testing.F) {
	good := &routetable.Table{
		Providers: []routetable.Provider{{ID: "ns/p", Namespace: "ns", Name: "p", Type: routetable.ProviderOpenAI, BaseURL: "http://x", APIKey: "sk-fuzz"}},
		Routes:    []routetable.Route{{ID: "ns/r", Namespace: "ns", Name: "r", Model: "m", Targets: []routetable.Target{{Provider: "ns/p", Model: "m"}}}},
	}
	if err := good.Finalize(); err != nil {
		f.Fatal(err)
	}
	raw, _ := json.Marshal(good)
	f.Add(good.Version, raw)
	f.Add("", raw)
	f.Add("deadbeef", []byte(strings.Replace(string(raw), `"ns/p","model"`, `"ns/q","model"`, 1)))
	f.Add("", []byte(`{"keys":[{"hash":"short"}]}`))
	f.Add("x", []byte(`null`))
	f.Add("x", []byte(`{`))
	f.Fuzz(func(t *testing.T, version string, table []byte) {
		applied := 0
		c := &Client{Log: logr.Discard(), Apply: func(tb *routetable.Table) error {
			if _, ok := tb.Provider("ns/p"); len(tb.Providers) > 0 && tb.Providers[0].ID == "ns/p" && !ok {
				t.Fatal("applied a table without indexes")
			}
			applied++
			return nil
		}}
		before := "previous"
		c.version.Store(&before)
		c.synced.Store(true)
		m := c.receive(wire.Message{Type: wire.TypeTable, Version: version, Table: table})
		if m.Version != version {
			t.Fatalf("answer for version %q, want %q", m.Version, version)
		}
		switch m.Type {
		case wire.TypeAck:
			if c.Version() != version || applied != 1 {
				t.Fatalf("ack without apply: serving %q, applied %d", c.Version(), applied)
			}
		case wire.TypeNack:
			if c.Version() != before || applied != 0 || m.Error == "" {
				t.Fatalf("nack but serving %q, applied %d, error %q", c.Version(), applied, m.Error)
			}
		default:
			t.Fatalf("answer type %q", m.Type)
		}
		if !c.Synced() {
			t.Fatal("lost Synced")
		}
	})
}
