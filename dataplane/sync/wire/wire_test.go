package wire

import (
	"strings"
	"testing"
	"unicode/utf8"

	json "github.com/go-json-experiment/json/v1"
)

// FuzzReportBound: whatever a replica's report holds, Bound leaves valid
// UTF-8 texts within their limits, an encoding within MaxReportBytes, and a
// report that still says the same thing as itself.
func FuzzReportBound(f *testing.F) {
	f.Add(`{"targets":[{"provider":"a/p","model":"m","errorRate":0.5}],"mcpServers":[{"id":"a/t","tools":[{"name":"x","description":"d"}]}]}`, 3, 10)
	f.Add(`{}`, 0, 0)
	f.Fuzz(func(t *testing.T, raw string, copies, repeat int) {
		var r Report
		if json.Unmarshal([]byte(raw), &r) != nil {
			return
		}
		// Inflate the input so the limits are reached.
		copies, repeat = min(max(copies, 0), 300), min(max(repeat, 0), 2000)
		for i := range r.MCPServers {
			s := &r.MCPServers[i]
			s.Message = strings.Repeat(s.Message, repeat)
			for n := len(s.Tools); n > 0 && len(s.Tools) < n*copies && len(s.Tools) < 1000; {
				s.Tools = append(s.Tools, s.Tools[:n]...)
			}
			for j := range s.Tools {
				s.Tools[j].Description = strings.Repeat(s.Tools[j].Description, repeat)
			}
		}
		r.Bound()
		b, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MaxReportBytes {
			t.Fatalf("bounded report is %d bytes", len(b))
		}
		if len(r.Targets) > MaxReportTargets || len(r.MCPServers) > MaxReportMCPServers {
			t.Fatal("lists not capped")
		}
		for _, s := range r.MCPServers {
			if len(s.Message) > MaxReportText || (utf8.ValidString(raw) && !utf8.ValidString(s.Message)) {
				t.Fatalf("message of %d bytes", len(s.Message))
			}
			for _, tool := range s.Tools {
				if len(tool.Description) > MaxReportText {
					t.Fatal("description not clipped")
				}
			}
		}
		if !SameHealth(&r, &r) {
			t.Fatal("a report differs from itself")
		}
	})
}
