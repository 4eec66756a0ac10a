package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// localSink is the cheapest CloudEvents sink: it takes binary-mode events,
// remembers their ids and answers 202. It stands for a Broker or KafkaSink
// on the same machine.
type localSink struct {
	url    string
	srv    *http.Server
	events atomic.Int64
	mu     sync.Mutex
	ids    map[string]struct{}
}

func startLocalSink() (*localSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &localSink{url: "http://" + l.Addr().String() + "/", ids: map[string]struct{}{}}
	s.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Ce-Id")
		if id == "" || r.Header.Get("Ce-Specversion") != "1.0" {
			http.Error(w, "not a binary-mode CloudEvent", http.StatusBadRequest)
			return
		}
		s.events.Add(1)
		s.mu.Lock()
		s.ids[id] = struct{}{}
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *localSink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// sink switches every channel to object-less mode with a local sink and
// posts the receiver scenario's deliveries again: the sink path against the
// object path of the same run, then the acknowledgement latency at half the
// sink path's best rate.
func (b *bench) sink(ctx context.Context) error {
	ls, err := startLocalSink()
	if err != nil {
		return err
	}
	defer func() { _ = ls.srv.Close() }()

	progress("sink: pointing %d channels at a local sink, object-less", len(b.channels))
	for _, ch := range b.channels {
		var obj igv1.InstagramChannel
		if err := b.fast.Get(ctx, client.ObjectKey{Namespace: ch.Namespace, Name: ch.Name}, &obj); err != nil {
			return err
		}
		patch := client.MergeFrom(obj.DeepCopy())
		obj.Spec.Sink = &igv1.SinkSpec{Destination: igv1.Destination{URI: ls.url}, IncomingObjects: igv1.IncomingObjectsSkip}
		if err := b.fast.Patch(ctx, &obj, patch); err != nil {
			return fmt.Errorf("set the sink of %s/%s: %w", ch.Namespace, ch.Name, err)
		}
	}
	if err := waitFor(ctx, b.cfg.readyTimeout, "every channel's sink resolved", func() (bool, error) {
		var list igv1.InstagramChannelList
		if err := b.fast.List(ctx, &list); err != nil {
			return false, err
		}
		for i := range list.Items {
			if list.Items[i].Spec.Sink != nil && list.Items[i].Status.SinkURI != ls.url {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	httpClient := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute},
	}
	// The receiver's cache sees the status a moment after the manager
	// wrote it: wait until a delivery reaches the sink.
	warm := 0
	if err := waitFor(ctx, time.Minute, "the receiver sends to the sink", func() (bool, error) {
		warm++
		before := ls.events.Load()
		status, err := b.postDelivery(ctx, httpClient, b.channels[len(b.channels)-1], fmt.Sprintf("bench-sink-warmup-%d", warm), 0)
		return err == nil && status == http.StatusOK && ls.events.Load() > before, err
	}); err != nil {
		return err
	}

	var steps []stepResult
	best := 0.0
	acked := 0
	before := ls.distinct()
	for si, c := range b.cfg.concurrency {
		progress("sink: %d deliveries at concurrency %d", b.cfg.deliveries, c)
		r := b.loadStep(ctx, c, func(ctx context.Context, i int) (int, error) {
			ch := b.channels[i%len(b.channels)]
			return b.postDelivery(ctx, httpClient, ch, fmt.Sprintf("bench-sink-%d-%d", si, i), i)
		})
		steps = append(steps, r)
		acked += r.Statuses[http.StatusOK]
		best = max(best, r.PerSecond)
		ratio := 0.0
		if b.objectPathBest > 0 {
			ratio = r.PerSecond / b.objectPathBest
		}
		b.res.add(scenarioSink, fmt.Sprintf("deliveries/s at concurrency %d", c), r.PerSecond, "1/s", "",
			fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, %d/%d acked 200", r.P50Millis, r.P99Millis, r.Statuses[http.StatusOK], r.Attempted))
		if b.objectPathBest > 0 {
			b.res.add(scenarioSink, fmt.Sprintf("sink/object path at concurrency %d", c), ratio, "ratio", "", "against the object path's best step of this run")
		}
	}
	if b.objectPathBest > 0 {
		b.res.add(scenarioSink, "best sink/best object path", best/b.objectPathBest, "ratio", ">= 5", "")
	}
	// Every acknowledged delivery carried one new event: its id is there.
	if got := ls.distinct() - before; got < acked {
		return fmt.Errorf("%d deliveries acknowledged but only %d distinct event ids reached the sink", acked, got)
	}
	b.res.add(scenarioSink, "distinct event ids per acknowledged delivery", float64(ls.distinct()-before)/float64(max(acked, 1)), "ratio", ">= 1", "")

	// Open loop at half the best rate: the latency a delivery sees when the
	// receiver is not saturated.
	rate := best / 2
	if rate >= 1 {
		n := b.cfg.deliveries
		progress("sink: %d deliveries paced at %.0f/s", n, rate)
		interval := time.Duration(float64(time.Second) / rate)
		var (
			mu        sync.Mutex
			latencies []time.Duration
			wg        sync.WaitGroup
			failed    atomic.Int32
		)
		tick := time.NewTicker(interval)
		for i := 0; i < n; i++ {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.Now()
				status, err := b.postDelivery(ctx, httpClient, b.channels[i%len(b.channels)], fmt.Sprintf("bench-sink-paced-%d", i), i)
				if err != nil || status != http.StatusOK {
					failed.Add(1)
					return
				}
				mu.Lock()
				latencies = append(latencies, time.Since(t))
				mu.Unlock()
			}()
		}
		tick.Stop()
		wg.Wait()
		sortDurations(latencies)
		b.res.add(scenarioSink, "p99 ack latency at half the best rate", millis(percentile(latencies, 99)), "ms", "",
			fmt.Sprintf("%.0f deliveries/s offered, p50 %.1f ms, %d failed", rate, millis(percentile(latencies, 50)), failed.Load()))
	}
	b.res.detail("sink.steps", steps)
	return nil
}
