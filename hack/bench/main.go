// Command bench runs the operator's load scenarios against a local control
// plane (envtest), the in-process fake Instagram and the real bin/manager and
// bin/webhookserver binaries, and reports what a platform team sizes the
// operator by: time and Instagram calls to bring many channels Ready, API
// writes while idle, the manager's memory with a large message history,
// send throughput under the per-app rate limit, and the receiver's
// throughput compared with writing the same objects directly, and with
// sending the same events to a local CloudEvents sink (object-less).
//
// It measures and reports; it never fails on a figure. `make bench` runs it
// after the Go benchmarks (hack/bench.sh). Figures are printed as a table
// and written to <out>/results.json and <out>/results.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/leadchat/instagram-operator/internal/localenv"
)

// config is the command line.
type config struct {
	scenarios []string
	out       string
	goBench   string

	channels   int
	namespaces int
	workers    int

	resyncInterval time.Duration
	readyTimeout   time.Duration

	messages      int
	messageBudget time.Duration
	sends         int
	raisedLimit   float64
	sendTimeout   time.Duration

	deliveries  int
	concurrency []int
	stepTimeout time.Duration
}

func (c *config) wants(s string) bool { return slices.Contains(c.scenarios, s) }

func parseFlags() (*config, error) {
	c := &config{}
	var scenarios, concurrency string
	flag.StringVar(&scenarios, "scenarios", "channels,receiver,messages,sink", "Comma-separated scenarios to run: channels, receiver, messages, sink. Channels are always created: the other scenarios need them; sink compares with receiver when both run.")
	flag.StringVar(&c.out, "out", "bin/bench", "Directory for results.json, results.md and the binaries' logs.")
	flag.StringVar(&c.goBench, "go-bench", "", "File with `go test -bench` output to include in the summary.")
	flag.IntVar(&c.channels, "channels", 1000, "InstagramChannels to create (one fake account each).")
	flag.IntVar(&c.namespaces, "namespaces", 4, "Namespaces the channels are spread over.")
	flag.IntVar(&c.workers, "workers", 16, "Concurrent API clients used to create objects.")
	flag.DurationVar(&c.resyncInterval, "resync-interval", 20*time.Second, "Manager --resync-interval for the idle-resync measurement.")
	flag.DurationVar(&c.readyTimeout, "ready-timeout", 8*time.Minute, "Longest wait for all channels to become Ready.")
	flag.IntVar(&c.messages, "messages", 100000, "Incoming InstagramMessages to store before measuring the manager's memory.")
	flag.DurationVar(&c.messageBudget, "messages-budget", 5*time.Minute, "Longest time spent storing messages; fewer are stored (and reported) when it runs out.")
	flag.IntVar(&c.sends, "sends", 300, "Outgoing messages per send-throughput run.")
	flag.Float64Var(&c.raisedLimit, "raised-rate-limit", 1000, "Manager --instagram-rate-limit of the second send-throughput run.")
	flag.DurationVar(&c.sendTimeout, "send-timeout", 3*time.Minute, "Longest wait for one send-throughput run.")
	flag.IntVar(&c.deliveries, "deliveries", 500, "Webhook deliveries per receiver concurrency step.")
	flag.StringVar(&concurrency, "concurrency", "1,4,16,64", "Receiver load-generator concurrency steps.")
	flag.DurationVar(&c.stepTimeout, "step-timeout", 60*time.Second, "Longest time of one receiver (or baseline) step.")
	flag.Parse()

	for _, s := range strings.Split(scenarios, ",") {
		s = strings.TrimSpace(s)
		switch s {
		case "":
		case scenarioChannels, scenarioReceiver, scenarioMessages, scenarioSink:
			c.scenarios = append(c.scenarios, s)
		default:
			return nil, fmt.Errorf("unknown scenario %q (want channels, receiver, messages, sink)", s)
		}
	}
	for _, s := range strings.Split(concurrency, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad -concurrency step %q", s)
		}
		c.concurrency = append(c.concurrency, n)
	}
	if c.channels < 1 || c.namespaces < 1 || c.workers < 1 {
		return nil, fmt.Errorf("-channels, -namespaces and -workers must be positive")
	}
	return c, nil
}

const (
	scenarioChannels = "channels"
	scenarioReceiver = "receiver"
	scenarioMessages = "messages"
	// scenarioSink runs last: it turns every channel object-less.
	scenarioSink = "sink"
)

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *config) error {
	// controller-runtime's client logs through this; without a sink it
	// complains once per process.
	ctrllog.SetLogger(logr.Discard())
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	logDir := filepath.Join(cfg.out, "run")
	if err := os.RemoveAll(logDir); err != nil {
		return err
	}
	started := time.Now()
	res := &Results{
		StartedAt: started.UTC().Format(time.RFC3339),
		Host:      hostInfo(),
		Scenarios: cfg.scenarios,
		Params: map[string]any{
			"channels": cfg.channels, "namespaces": cfg.namespaces, "messages": cfg.messages,
			"sends": cfg.sends, "deliveries": cfg.deliveries, "concurrency": cfg.concurrency,
			"resyncInterval": cfg.resyncInterval.String(),
		},
	}
	if cfg.goBench != "" {
		gb, err := parseGoBench(cfg.goBench)
		if err != nil {
			return fmt.Errorf("read Go benchmark output: %w", err)
		}
		res.GoBench = gb
	}

	progress("starting control plane, fake Instagram, manager and receiver (logs in %s)", logDir)
	env, err := localenv.Start(ctx, localenv.Options{
		Dir:    logDir,
		Logger: funcr.New(func(prefix, args string) { progress("fake: %s %s", prefix, args) }, funcr.Options{}),
	})
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, env: env, res: res, logDir: logDir}
	defer b.stop()

	if err := b.runScenarios(ctx); err != nil {
		// Whatever was measured before the failure is still written.
		res.Error = err.Error()
	}
	res.TotalSeconds = time.Since(started).Seconds()
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.Host["loadavgAtEnd"] = strings.TrimSpace(string(load))
	}
	res.note("wall-clock figures come from one run on %d cores shared with the control plane, both binaries, the fake and the load generator (load average at start %v, at end %v): treat them as indicative, not as a regression gate.",
		runtime.NumCPU(), res.Host["loadavgAtStart"], res.Host["loadavgAtEnd"])
	if werr := res.write(cfg.out); werr != nil {
		return werr
	}
	fmt.Println()
	fmt.Print(res.table())
	fmt.Printf("\nwritten: %s, %s\n", filepath.Join(cfg.out, "results.json"), filepath.Join(cfg.out, "results.md"))
	if res.Error != "" {
		return fmt.Errorf("run stopped early: %s", res.Error)
	}
	return nil
}

func (b *bench) runScenarios(ctx context.Context) error {
	if err := b.setupChannels(ctx); err != nil {
		return fmt.Errorf("channels: %w", err)
	}
	if b.cfg.wants(scenarioChannels) {
		if err := b.idleResync(ctx); err != nil {
			return fmt.Errorf("idle resync: %w", err)
		}
	}
	if b.cfg.wants(scenarioReceiver) {
		if err := b.receiver(ctx); err != nil {
			return fmt.Errorf("receiver: %w", err)
		}
	}
	if b.cfg.wants(scenarioMessages) {
		if err := b.messages(ctx); err != nil {
			return fmt.Errorf("messages: %w", err)
		}
	}
	if b.cfg.wants(scenarioSink) {
		if err := b.sink(ctx); err != nil {
			return fmt.Errorf("sink: %w", err)
		}
	}
	return nil
}

// progress prints a timestamped line while the run goes on.
func progress(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
