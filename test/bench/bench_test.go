// Package bench_test runs `make bench` at a small size (100 channels, 1000
// stored messages, 200 contacts, a short receiver, send and sink run) so the bench keeps
// working between the full runs. It checks that every scenario ran and
// reported its figures, never the figures themselves: tests do not assert
// on wall-clock time.
package bench_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/leadchat/instagram-operator/internal/testenv"
)

func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binaries")
	}
	root := testenv.RepoRoot()
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "hack", "bench.sh"),
		"-channels", "100", "-namespaces", "2", "-messages", "1000", "-deliveries", "100", "-concurrency", "4",
		"-sends", "20", "-contacts", "200", "-contacts-quiet", "10s", "-out", out)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GO_BENCH=0", "KUBEBUILDER_ASSETS="+testenv.AssetsDir())
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench failed: %v\n%s", err, output)
	}
	raw, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Rows []struct {
			Scenario string  `json:"scenario"`
			Metric   string  `json:"metric"`
			Value    float64 `json:"value"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	scenarios := map[string]int{}
	for _, r := range res.Rows {
		scenarios[r.Scenario]++
	}
	for _, s := range []string{"channels", "receiver", "messages", "contacts", "sink"} {
		if scenarios[s] == 0 {
			t.Errorf("scenario %s reported no figure; results.json:\n%s", s, raw)
		}
	}
}
