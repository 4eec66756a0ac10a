// Package chaos_test runs a small version of the failure drills (make chaos
// runs them at full size): nothing acknowledged is lost, nothing is stored
// twice, nothing is sent twice, whatever the timing.
package chaos_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/leadchat/instagram-operator/internal/chaos"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

func TestDrills(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binaries")
	}
	for _, bin := range []string{"manager", "webhookserver"} {
		if _, err := os.Stat(filepath.Join(testenv.RepoRoot(), "bin", bin)); err != nil {
			t.Fatalf("bin/%s is missing: run make build (make test does)", bin)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	results, err := chaos.Run(ctx, chaos.Config{
		Dir: t.TempDir(), Deliveries: 150, Concurrency: 8, Pause: 3 * time.Second, Sends: 8, RetryFor: 2 * time.Minute,
	}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + chaos.Markdown(results))
	if len(results) != 3 {
		t.Fatalf("%d drills ran", len(results))
	}
	for _, r := range results {
		if !r.OK() {
			t.Errorf("%s: lost %d, duplicated %d, sent twice %d", r.Drill, r.Lost, r.Duplicated, r.SentTwice)
		}
		if r.Drill != results[2].Drill && r.Acked != 150 {
			t.Errorf("%s: %d of 150 deliveries acknowledged within the retry window", r.Drill, r.Acked)
		}
	}
	if sent := results[2].SentOnce; sent == 0 {
		t.Errorf("manager drill: no send reached the fake")
	}
}
