package helm

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var dashboardPath = filepath.Join(chartDir, "files", "dashboards", "tollgate.json")

var (
	// metricDefinition finds metric names in Go source: prometheus Opts
	// Name fields and NewDesc calls both spell them as string literals.
	metricDefinition = regexp.MustCompile(`"(tollgate_[a-z0-9_]+)"`)
	metricUse        = regexp.MustCompile(`\btollgate_[a-z0-9_]+`)
	variableUse      = regexp.MustCompile(`\$\{?([a-zA-Z_]+)`)
)

// definedMetrics returns every tollgate_* name that the non-test Go code
// under dataplane/ and controllers/ spells out.
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	defined := map[string]bool{}
	for _, dir := range []string{"dataplane", "controllers"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range metricDefinition.FindAllStringSubmatch(string(src), -1) {
				defined[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return defined
}

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr         string `json:"expr"`
			LegendFormat string `json:"legendFormat"`
			Datasource   *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboard checks the Grafana dashboard the chart ships: valid JSON,
// every query names a metric the code defines (histograms through their
// _bucket series), uses only defined variables and the selectable data
// source, and covers spend by team and latency.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard needs a uid and a title")
	}
	vars := map[string]bool{"__range": true, "__rate_interval": true, "__interval": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	defined := definedMetrics(t)
	if len(defined) == 0 {
		t.Fatal("found no tollgate_* metric definitions in dataplane/ or controllers/")
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	var spendByTeam, latency bool
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the ${datasource} variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range variableUse.FindAllStringSubmatch(q.Expr, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q uses undefined variable $%s", p.Title, m[1])
				}
			}
			for _, name := range metricUse.FindAllString(q.Expr, -1) {
				used[name] = true
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(name, suffix); ok && defined[b] {
						base = b
					}
				}
				if !defined[base] {
					t.Errorf("panel %q queries %s, which no code under dataplane/ or controllers/ defines", p.Title, name)
				}
			}
			if strings.Contains(q.Expr, "tollgate_cost_total") && strings.Contains(q.Expr, "by (team") {
				spendByTeam = true
			}
			if strings.Contains(q.Expr, "histogram_quantile") && strings.Contains(q.Expr, "tollgate_request_duration_seconds_bucket") {
				latency = true
			}
		}
	}
	if !spendByTeam || !latency {
		t.Errorf("dashboard lacks spend by team (%v) or latency quantiles (%v)", spendByTeam, latency)
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	slices.Sort(names)
	t.Logf("metrics queried: %s", strings.Join(names, ", "))
}
