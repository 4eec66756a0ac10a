package prometheus

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

var (
	quoted    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	metricRef = regexp.MustCompile(`\binstagram_[a-z0-9_]+\b`)
	selector  = regexp.MustCompile(`\b(instagram_[a-z0-9_]+)\s*\{([^}]*)\}`)
	matcher   = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	grouping  = regexp.MustCompile(`\b(on|by|ignoring|without)\s*\(([^)]*)\)`)
	// label_values(metric{...}, label) of Grafana template variables.
	labelValues = regexp.MustCompile(`label_values\(\s*(instagram_[a-z0-9_]+)\s*(?:\{[^}]*\})?\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)`)
)

// targetLabels are the labels Prometheus adds to every series it scrapes
// through a ServiceMonitor; expressions may group by them.
var targetLabels = map[string]bool{"namespace": true, "pod": true, "service": true, "job": true, "instance": true, "container": true}

// checkExpr fails the test with every problem exprProblems finds.
func checkExpr(t *testing.T, metrics exported, expr string) {
	t.Helper()
	for _, p := range exprProblems(metrics, expr) {
		t.Error(p)
	}
}

// exprProblems reports when a PromQL expression names a metric the operator
// does not export, matches on a label the metric lacks, compares a label
// with a value the code never writes, or groups by a label none of its
// metrics carries. Values holding a Grafana variable ($namespace) are
// chosen at view time and not compared.
func exprProblems(metrics exported, expr string) []string {
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	// Names inside label values are data, not references.
	names := metricRef.FindAllString(quoted.ReplaceAllString(expr, `""`), -1)
	if len(names) == 0 {
		return []string{"expression names no instagram_ metric:\n" + expr}
	}
	for _, name := range names {
		if _, ok := metrics.lookup(name); !ok {
			errorf("%s is not exported by the operator", name)
		}
	}

	for _, sel := range selector.FindAllStringSubmatch(expr, -1) {
		f, ok := metrics.lookup(sel[1])
		if !ok {
			continue
		}
		for _, m := range matcher.FindAllStringSubmatch(sel[2], -1) {
			label, op, value := m[1], m[2], m[3]
			values, ok := f.labels[label]
			if !ok {
				errorf("%s has no label %s (labels: %v)", sel[1], label, labelNames(f))
				continue
			}
			// An equality against a value the code never writes would
			// make the alert or panel silently show nothing.
			if (op == "=" || op == "!=") && !strings.Contains(value, "$") && !values[value] {
				errorf("%s{%s%s%q}: the operator never writes %s=%q (seen: %v)", sel[1], label, op, value, label, value, sortedKeys(values))
			}
		}
	}

	for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, label := range strings.Split(g[2], ",") {
			label = strings.TrimSpace(label)
			if label == "" {
				continue
			}
			carried := false
			for _, name := range names {
				f, _ := metrics.lookup(name)
				carried = carried || f.labels[label] != nil ||
					(label == "le" && strings.HasSuffix(name, "_bucket") && f.typ == dto.MetricType_HISTOGRAM)
			}
			// on() must hold on every side; by() and without() on at least
			// one metric, or the result has no such label.
			if g[1] == "on" || g[1] == "ignoring" {
				for _, name := range names {
					if f, _ := metrics.lookup(name); f.labels[label] == nil {
						errorf("%s(%s): %s has no label %s", g[1], g[2], name, label)
					}
				}
			} else if !carried && !targetLabels[label] {
				errorf("%s(%s): none of %v has a label %s", g[1], g[2], names, label)
			}
		}
	}
	return problems
}

// TestCheckExprCatches shows the checker is not blind: each of these
// expressions has one mistake it must report.
func TestCheckExprCatches(t *testing.T) {
	metrics := exportedMetrics(t)
	for name, expr := range map[string]string{
		"unknown metric":       `rate(instagram_webhook_deliveries_total[5m])`,
		"unknown label":        `instagram_messages_sent_total{outcome="sent"}`,
		"value never written":  `instagram_channel_condition{condition="Healthy"}`,
		"grouping by no label": `sum by (channel) (rate(instagram_messages_sent_total[5m]))`,
		"on a missing label":   `instagram_channel_condition and on (endpoint) instagram_api_requests_total`,
	} {
		t.Run(name, func(t *testing.T) {
			if problems := exprProblems(metrics, expr); len(problems) != 1 {
				t.Errorf("exprProblems(%s) = %q, want exactly one problem", expr, problems)
			}
		})
	}
}
