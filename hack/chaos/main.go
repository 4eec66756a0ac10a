// Command chaos runs the failure drills of internal/chaos at full size and
// writes bin/chaos/results.{json,md}. `make chaos` runs it; it exits 1 when
// a drill lost, duplicated or double-sent anything.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/leadchat/instagram-operator/internal/chaos"
)

func main() {
	cfg := chaos.Config{}
	out := flag.String("out", "bin/chaos", "Directory for results and the binaries' logs.")
	flag.IntVar(&cfg.Deliveries, "deliveries", 2000, "Signed deliveries per load drill.")
	flag.IntVar(&cfg.Concurrency, "concurrency", 16, "Load generator concurrency.")
	flag.DurationVar(&cfg.Pause, "pause", 10*time.Second, "How long the API server is stopped.")
	flag.IntVar(&cfg.Sends, "sends", 50, "Outgoing messages in the manager drill.")
	flag.DurationVar(&cfg.RetryFor, "retry-for", 3*time.Minute, "How long one delivery is retried, as Meta would.")
	flag.Parse()
	if cfg.Deliveries < 1 || cfg.Concurrency < 1 || cfg.Sends < 1 {
		fmt.Fprintln(os.Stderr, "chaos: -deliveries, -concurrency and -sends must be at least 1")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	cfg.Dir = abs
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	results, err := chaos.Run(ctx, cfg, func(f string, a ...any) { fmt.Printf(time.Now().Format("15:04:05 ")+f+"\n", a...) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	md := chaos.Markdown(results)
	fmt.Print(md)
	js, _ := json.MarshalIndent(results, "", "  ")
	_ = os.WriteFile(filepath.Join(abs, "results.json"), js, 0o644)
	_ = os.WriteFile(filepath.Join(abs, "results.md"), []byte(md), 0o644)
	for _, r := range results {
		if !r.OK() {
			os.Exit(1)
		}
	}
}
