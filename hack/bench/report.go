package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Results is everything one run measured.
type Results struct {
	StartedAt    string         `json:"startedAt"`
	TotalSeconds float64        `json:"totalSeconds"`
	Host         map[string]any `json:"host"`
	Scenarios    []string       `json:"scenarios"`
	Params       map[string]any `json:"params"`
	// Rows are the headline figures, in the order they were measured.
	Rows []Row `json:"rows"`
	// Details hold the breakdowns behind the rows (calls by endpoint,
	// writes by resource, per-step latencies).
	Details map[string]any `json:"details"`
	GoBench []GoBench      `json:"goBenchmarks,omitempty"`
	Notes   []string       `json:"notes,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// Row is one figure.
type Row struct {
	Scenario string  `json:"scenario"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Goal     string  `json:"goal,omitempty"`
	Note     string  `json:"note,omitempty"`
}

// GoBench is one line of `go test -bench` output.
type GoBench struct {
	Name    string             `json:"name"`
	Package string             `json:"package"`
	N       int64              `json:"n"`
	Metrics map[string]float64 `json:"metrics"`
}

func (r *Results) add(scenario, metric string, value float64, unit, goal, note string) {
	r.Rows = append(r.Rows, Row{Scenario: scenario, Metric: metric, Value: value, Unit: unit, Goal: goal, Note: note})
	progress("  %s: %s = %s %s", scenario, metric, formatValue(value), unit)
}

func (r *Results) detail(key string, v any) {
	if r.Details == nil {
		r.Details = map[string]any{}
	}
	r.Details[key] = v
}

func (r *Results) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func formatValue(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e15 && v > -1e15:
		return strconv.FormatInt(int64(v), 10)
	case v >= 100 || v <= -100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// table is the human summary: headline rows, then the Go benchmarks.
func (r *Results) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "instagram-operator bench, %s, %v cores, total %.0fs\n\n", r.StartedAt, r.Host["cpus"], r.TotalSeconds)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tMETRIC\tVALUE\tUNIT\tGOAL\tNOTE")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Scenario, row.Metric, formatValue(row.Value), row.Unit, row.Goal, row.Note)
	}
	_ = tw.Flush()
	if len(r.GoBench) > 0 {
		fmt.Fprintln(&b)
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "GO BENCHMARK\tN\tMETRICS")
		for _, g := range r.GoBench {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", g.Name, g.N, formatMetrics(g.Metrics))
		}
		_ = tw.Flush()
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nnote: %s", n)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(&b)
	}
	return b.String()
}

func formatMetrics(m map[string]float64) string {
	order := []string{"ns/op", "msgs/s", "MB/s", "B/op", "allocs/op"}
	var parts []string
	seen := map[string]bool{}
	for _, k := range order {
		if v, ok := m[k]; ok {
			parts = append(parts, formatValue(v)+" "+k)
			seen[k] = true
		}
	}
	for k, v := range m {
		if !seen[k] {
			parts = append(parts, formatValue(v)+" "+k)
		}
	}
	return strings.Join(parts, ", ")
}

func (r *Results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# instagram-operator bench\n\nStarted %s on %v cores (%s), %.0f s in total. Scenarios: %s.\n\n",
		r.StartedAt, r.Host["cpus"], r.Host["goos"], r.TotalSeconds, strings.Join(r.Scenarios, ", "))
	fmt.Fprintln(&b, "| scenario | metric | value | unit | goal | note |")
	fmt.Fprintln(&b, "|---|---|---:|---|---|---|")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", row.Scenario, row.Metric, formatValue(row.Value), row.Unit, row.Goal, row.Note)
	}
	if len(r.GoBench) > 0 {
		fmt.Fprint(&b, "\n## Go benchmarks\n\n| benchmark | N | metrics |\n|---|---:|---|\n")
		for _, g := range r.GoBench {
			fmt.Fprintf(&b, "| %s | %d | %s |\n", g.Name, g.N, formatMetrics(g.Metrics))
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprint(&b, "\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "\n**The run stopped early:** %s\n", r.Error)
	}
	fmt.Fprint(&b, "\nBreakdowns (calls by endpoint, writes by resource, per-step latencies) are in results.json.\n")
	return b.String()
}

func (r *Results) write(dir string) error {
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.markdown()), 0o644)
}

// parseGoBench reads `go test -bench` output: "pkg:" lines and result lines
// of value/unit pairs.
func parseGoBench(path string) ([]GoBench, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var out []GoBench
	pkg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		g := GoBench{Name: fields[0], Package: pkg, N: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				break
			}
			g.Metrics[fields[i+1]] = v
		}
		out = append(out, g)
	}
	return out, sc.Err()
}

func hostInfo() map[string]any {
	h := map[string]any{"cpus": runtime.NumCPU(), "goos": runtime.GOOS + "/" + runtime.GOARCH, "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		h["loadavgAtStart"] = strings.TrimSpace(string(b))
	}
	return h
}
