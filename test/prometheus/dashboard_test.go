package prometheus

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const dashboardsDir = "../../config/grafana"

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	Targets    []struct {
		Expr       string     `json:"expr"`
		RefID      string     `json:"refId"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no dashboards in %s", dashboardsDir)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// allPanels flattens rows, which hold their panels when collapsed.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// grafanaVariables become what Grafana substitutes at query time, so the
// expression is PromQL again.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// TestDashboardQueriesUseExportedMetrics checks every panel query and
// template variable of config/grafana against what the binaries export,
// as the rules are checked.
func TestDashboardQueriesUseExportedMetrics(t *testing.T) {
	metrics := exportedMetrics(t)
	for file, d := range readDashboards(t) {
		t.Run(file, func(t *testing.T) {
			queries := 0
			for _, p := range allPanels(d.Panels) {
				for _, target := range p.Targets {
					queries++
					t.Run(p.Title+"/"+target.RefID, func(t *testing.T) {
						checkExpr(t, metrics, grafanaVariables.Replace(target.Expr))
					})
				}
			}
			if queries == 0 {
				t.Fatal("no panel queries")
			}
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				var q struct {
					Query string `json:"query"`
				}
				if err := json.Unmarshal(v.Query, &q); err != nil {
					t.Fatalf("variable %s: query: %v", v.Name, err)
				}
				m := labelValues.FindStringSubmatch(q.Query)
				if m == nil {
					t.Errorf("variable %s: %q is not label_values(instagram_..., label)", v.Name, q.Query)
					continue
				}
				f, ok := metrics.lookup(m[1])
				if !ok {
					t.Errorf("variable %s: %s is not exported", v.Name, m[1])
				} else if f.labels[m[2]] == nil {
					t.Errorf("variable %s: %s has no label %s", v.Name, m[1], m[2])
				}
				checkExpr(t, metrics, q.Query)
			}
		})
	}
}

// TestDashboardShape checks what Grafana needs to import the dashboard
// anywhere: a stable uid, unique panel ids, every query on the chosen
// Prometheus data source, and the panels the operations guide promises.
func TestDashboardShape(t *testing.T) {
	for file, d := range readDashboards(t) {
		t.Run(file, func(t *testing.T) {
			if d.UID == "" || d.Title == "" {
				t.Error("uid and title are required")
			}
			ids := map[int]bool{}
			metricsShown := map[string]bool{}
			for _, p := range allPanels(d.Panels) {
				if ids[p.ID] {
					t.Errorf("panel id %d used twice", p.ID)
				}
				ids[p.ID] = true
				if p.Type == "row" {
					continue
				}
				if p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q uses data source %q, want the ${datasource} variable", p.Title, p.Datasource.UID)
				}
				for _, target := range p.Targets {
					if target.Datasource.UID != "${datasource}" {
						t.Errorf("panel %q query %s uses data source %q", p.Title, target.RefID, target.Datasource.UID)
					}
					for _, name := range metricRef.FindAllString(target.Expr, -1) {
						metricsShown[strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count")] = true
					}
				}
			}
			for _, want := range []string{
				"instagram_channel_token_expiration_timestamp_seconds",
				"instagram_channel_token_refresh_total",
				"instagram_webhook_events_total",
				"instagram_webhook_request_duration_seconds",
				"instagram_messages_sent_total",
				"instagram_api_requests_total",
			} {
				if !metricsShown[want] {
					t.Errorf("no panel shows %s", want)
				}
			}
		})
	}
}
