package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/localenv"
)

// bench is one run's state.
type bench struct {
	cfg    *config
	env    *localenv.Env
	res    *Results
	logDir string

	app      localenv.App
	channels []channel
	// own is the manager the bench started with its own flags; nil while
	// localenv's manager runs.
	own *managerProc
	// fast writes without client-side throttling; asReceiver likewise, as
	// the receiver's ServiceAccount.
	fast       client.Client
	asReceiver client.Client
	clientset  kubernetes.Interface
	// objectPathBest is the receiver scenario's best deliveries/s into
	// objects, which the sink scenario compares with.
	objectPathBest float64
}

// channel is one Ready channel and its account.
type channel struct {
	Namespace, Name, UserID string
	UID                     types.UID
}

// manager is the running manager.
func (b *bench) manager() proc {
	if b.own != nil {
		return b.own
	}
	return b.env.Manager
}

// restartManager stops the running manager and starts one with extra flags.
func (b *bench) restartManager(ctx context.Context, label string, extra ...string) error {
	b.stopManager()
	m, err := startManager(ctx, b.env, b.logDir, label, extra...)
	if err != nil {
		return err
	}
	b.own = m
	return nil
}

func (b *bench) stopManager() {
	if b.own != nil {
		b.own.Stop()
		b.own = nil
		return
	}
	b.env.Manager.Stop()
}

func (b *bench) stop() {
	b.own.Stop()
	b.env.Stop()
}

func (b *bench) namespace(i int) string { return fmt.Sprintf("bench-%d", i%b.cfg.namespaces) }

// accountUserID is a professional account ID shaped like Instagram's.
func accountUserID(i int) string { return fmt.Sprintf("178414%011d", i+1) }

// setupChannels brings up one ClusterInstagramApp and cfg.channels channels
// that bring their own long-lived token, and measures the time and the
// Instagram calls until all are Ready, and the API writes that took.
func (b *bench) setupChannels(ctx context.Context) error {
	cfg, env := b.cfg, b.env
	var err error
	if b.fast, err = client.New(fastConfig(env.Config), client.Options{Scheme: env.Scheme}); err != nil {
		return err
	}
	// What the receiver writes, the bench writes as the receiver: the
	// install's admission policy lets only its ServiceAccount create
	// incoming messages and comments.
	asReceiver := fastConfig(env.Config)
	asReceiver.Impersonate = rest.ImpersonationConfig{UserName: localenv.ServiceAccountUser("webhookserver")}
	if b.asReceiver, err = client.New(asReceiver, client.Options{Scheme: env.Scheme}); err != nil {
		return err
	}
	if b.clientset, err = kubernetes.NewForConfig(fastConfig(env.Config)); err != nil {
		return err
	}
	b.app = localenv.App{ID: "1000000000000001", Secret: "bench-app-secret-" + utilrand.String(12), VerifyToken: "bench-verify", Name: "bench"}
	if err := env.CreateApp(ctx, b.app); err != nil {
		return fmt.Errorf("create app: %w", err)
	}
	if err := waitFor(ctx, time.Minute, "ClusterInstagramApp Ready", func() (bool, error) {
		var a igv1.ClusterInstagramApp
		if err := b.fast.Get(ctx, client.ObjectKey{Name: b.app.Name}, &a); err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(a.Status.Conditions, igv1.ConditionReady), nil
	}); err != nil {
		return err
	}
	for i := range min(cfg.namespaces, cfg.channels) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.namespace(i)}}
		if err := b.fast.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}

	// Quiet before the clock starts: the app is settled.
	if _, err := waitSettled(ctx, b.manager(), 0, time.Minute); err != nil {
		return err
	}
	writes0, err := apiWrites(ctx, b.clientset)
	if err != nil {
		return err
	}
	calls0 := len(env.Fake.Calls())

	progress("creating %d accounts, seed Secrets and InstagramChannels in %d namespaces (%d workers)", cfg.channels, cfg.namespaces, cfg.workers)
	start := time.Now()
	err = parallel(ctx, cfg.workers, cfg.channels, func(i int) error {
		acc := fake.Account{UserID: accountUserID(i), ID: "app-scoped-" + accountUserID(i), Username: fmt.Sprintf("shop_%04d", i), Name: "Shop", AccountType: "BUSINESS"}
		_, err := env.CreateTokenChannel(ctx, b.app, b.namespace(i), fmt.Sprintf("ch-%04d", i), acc, true)
		return err
	})
	if err != nil {
		return fmt.Errorf("create channels: %w", err)
	}
	created := time.Since(start)
	progress("created in %s; waiting for all Ready", created.Round(time.Millisecond))

	var readyAt time.Duration
	lastReport := time.Now()
	err = waitFor(ctx, cfg.readyTimeout, "all channels Ready", func() (bool, error) {
		var list igv1.InstagramChannelList
		if err := b.fast.List(ctx, &list); err != nil {
			return false, err
		}
		ready, reasons := 0, map[string]int{}
		for _, ch := range list.Items {
			if meta.IsStatusConditionTrue(ch.Status.Conditions, igv1.ConditionReady) {
				ready++
			} else if c := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady); c != nil {
				reasons[c.Reason]++
			} else {
				reasons["(no condition)"]++
			}
		}
		if time.Since(lastReport) > 10*time.Second {
			progress("  %d/%d Ready after %s; not ready: %v", ready, cfg.channels, time.Since(start).Round(time.Second), reasons)
			lastReport = time.Now()
		}
		if ready < cfg.channels {
			return false, nil
		}
		readyAt = time.Since(start)
		b.channels = b.channels[:0]
		for _, ch := range list.Items {
			b.channels = append(b.channels, channel{Namespace: ch.Namespace, Name: ch.Name, UID: ch.UID, UserID: ch.Status.Account.UserID})
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	n := float64(cfg.channels)
	b.res.add(scenarioChannels, "channels", n, "", "", "one ClusterInstagramApp, seed Secrets with long-lived tokens")
	b.res.add(scenarioChannels, "create channels (API)", created.Seconds(), "s", "", fmt.Sprintf("%d workers", cfg.workers))
	b.res.add(scenarioChannels, "time until all Ready", readyAt.Seconds(), "s", "", "from the first create; manager defaults (rate limit 20/s burst 40 per app)")
	b.res.add(scenarioChannels, "channels Ready per second", n/readyAt.Seconds(), "1/s", "", "")

	// Everything the manager does for the new channels is counted, also
	// what it finishes after the last one turned Ready.
	settle, err := waitSettled(ctx, b.manager(), cfg.channels, 2*time.Minute)
	if err != nil {
		return err
	}
	calls := env.Fake.Calls()[calls0:]
	byEndpoint, failed := callsByEndpoint(calls)
	b.res.add(scenarioChannels, "Instagram calls per channel", float64(len(calls))/n, "calls", "", fmt.Sprintf("%s; non-2xx answers %v", formatCallsPer(byEndpoint, n), failed))
	b.res.detail("channels.bringUp.instagramCallsByEndpoint", byEndpoint)
	b.res.detail("channels.bringUp.instagramNon2xx", failed)

	writes1, err := apiWrites(ctx, b.clientset)
	if err != nil {
		return err
	}
	ours, other, total := writes1.diff(writes0)
	// The bench itself created a seed Secret and a channel per channel.
	managerWrites := total - 2*n
	b.res.add(scenarioChannels, "API writes per channel (manager, bring-up)", managerWrites/n, "writes", "", "apiserver_request_total; excludes the bench's 2 creates per channel")
	b.res.detail("channels.bringUp.apiWrites", ours)
	b.res.detail("channels.bringUp.apiWritesOther", other)
	b.res.detail("channels.bringUp.settleAfterReadySeconds", settle.Seconds())

	mem, err := readMemory(b.manager())
	if err != nil {
		return err
	}
	b.res.add(scenarioChannels, "manager RSS, channels Ready", mib(mem.RSSBytes), "MiB", "", fmt.Sprintf("peak %.0f MiB, Go heap in use %.0f MiB", mib(mem.PeakRSSBytes), mib(mem.HeapInuseBytes)))
	return nil
}

// idleResync restarts the manager with a short resync interval and counts
// the API writes of one full resync of every channel when nothing changed.
func (b *bench) idleResync(ctx context.Context) error {
	cfg, env := b.cfg, b.env
	n := len(b.channels)
	v0, err := snapshotVersions(ctx, b.fast)
	if err != nil {
		return err
	}
	w0, err := apiWrites(ctx, b.clientset)
	if err != nil {
		return err
	}
	limit := fmt.Sprintf("%g", cfg.raisedLimit)
	restartCalls0 := len(env.Fake.Calls())
	progress("restarting the manager with --resync-interval=%s --instagram-rate-limit=%s", cfg.resyncInterval, limit)
	// The default 20 calls/s could not check 1000 subscriptions within
	// one 20s interval; the limit is raised so one interval is one resync.
	if err := b.restartManager(ctx, "resync", "--resync-interval="+cfg.resyncInterval.String(), "--instagram-rate-limit="+limit); err != nil {
		return err
	}
	startup, err := waitSettled(ctx, b.own, n, 2*time.Minute)
	if err != nil {
		return err
	}
	v1, err := snapshotVersions(ctx, b.fast)
	if err != nil {
		return err
	}
	w1, err := apiWrites(ctx, b.clientset)
	if err != nil {
		return err
	}
	startOurs, _, startTotal := w1.diff(w0)
	restartCalls, restartFailed := callsByEndpoint(env.Fake.Calls()[restartCalls0:])
	restartTotal := 0
	for _, c := range restartCalls {
		restartTotal += c
	}
	b.res.add(scenarioChannels, "Instagram calls on manager restart", float64(restartTotal), "calls", "",
		fmt.Sprintf("%d Ready channels; %v, non-2xx %v; settled in %.1f s", n, restartCalls, restartFailed, startup.Seconds()))
	b.res.detail("channels.restart.instagramCallsByEndpoint", restartCalls)
	b.res.add(scenarioChannels, "API writes on manager restart", startTotal, "writes", "0",
		fmt.Sprintf("%d Ready channels, restart with --resync-interval=%s; objects changed: %v", n, cfg.resyncInterval, v1.changed(v0)))
	b.res.detail("channels.restart.apiWrites", startOurs)
	b.res.detail("channels.restart.settleSeconds", startup.Seconds())

	// ResyncAfter spreads checks over interval +/- 10%: one window of
	// 1.1 intervals plus a margin covers every channel once.
	window := cfg.resyncInterval + cfg.resyncInterval/10 + 5*time.Second
	calls0 := len(env.Fake.Calls())
	progress("idle for %s (one resync of every channel)", window)
	if err := sleepCtx(ctx, window); err != nil {
		return err
	}
	v2, err := snapshotVersions(ctx, b.fast)
	if err != nil {
		return err
	}
	w2, err := apiWrites(ctx, b.clientset)
	if err != nil {
		return err
	}
	calls := env.Fake.Calls()[calls0:]
	byEndpoint, failed := callsByEndpoint(calls)
	ours, other, total := w2.diff(w1)
	changed := v2.changed(v1)
	b.res.add(scenarioChannels, "subscription checks in idle window", float64(byEndpoint[fake.EndpointSubscriptions]), "calls", fmt.Sprintf("~%d", n), fmt.Sprintf("%s window, all calls %v, non-2xx %v", window, byEndpoint, failed))
	b.res.add(scenarioChannels, "API writes during one idle resync", total, "writes", "0", fmt.Sprintf("apiserver_request_total %v", ours))
	b.res.add(scenarioChannels, "objects changed during one idle resync", float64(changed["InstagramChannel"]+changed["Secret"]+changed["ClusterInstagramApp"]), "objects", "0", fmt.Sprintf("resourceVersion changes: %v", changed))
	b.res.detail("channels.idleResync.apiWrites", ours)
	b.res.detail("channels.idleResync.apiWritesOther", other)
	b.res.detail("channels.idleResync.instagramCallsByEndpoint", byEndpoint)
	mem, err := readMemory(b.own)
	if err != nil {
		return err
	}
	b.res.add(scenarioChannels, "manager RSS after idle resync", mib(mem.RSSBytes), "MiB", "", fmt.Sprintf("peak %.0f MiB, Go heap in use %.0f MiB", mib(mem.PeakRSSBytes), mib(mem.HeapInuseBytes)))

	// The later scenarios run with the defaults again; every channel was
	// just checked, so the restart causes no burst of checks.
	progress("restarting the manager with default flags")
	if err := b.restartManager(ctx, "default"); err != nil {
		return err
	}
	_, err = waitSettled(ctx, b.own, n, 2*time.Minute)
	return err
}

func formatCallsPer(byEndpoint map[string]int, n float64) string {
	s := ""
	for _, ep := range []string{fake.EndpointExchangeToken, fake.EndpointRefreshToken, fake.EndpointMe, fake.EndpointSubscriptions, fake.EndpointSubscribe, fake.EndpointSend, fake.EndpointProfile} {
		if c := byEndpoint[ep]; c > 0 {
			if s != "" {
				s += ", "
			}
			s += fmt.Sprintf("%s %.2f", ep, float64(c)/n)
		}
	}
	return s
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// waitFor polls cond every second until it holds.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("%s: not reached after %s: %w", what, timeout, lastErr)
			}
			return fmt.Errorf("%s: not reached after %s", what, timeout)
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
	}
}
