package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

// labelRun marks the outgoing messages of one send run so a watch sees
// only them. Workloads may label their messages freely.
const labelRun = "bench.instagram.leadchat.io/run"

// messages stores a large message history, measures the manager's memory
// after a restart over it, then the send throughput with the default and a
// raised per-app rate limit.
func (b *bench) messages(ctx context.Context) error {
	cfg := b.cfg
	// The manager does not take part in storing history; stopped, it
	// leaves the CPU to the API server.
	b.stopManager()
	progress("storing %d incoming InstagramMessages (create + status, %d workers, at most %s)", cfg.messages, cfg.workers, cfg.messageBudget)
	stored, elapsed, err := b.seedMessages(ctx)
	if err != nil {
		return err
	}
	note := fmt.Sprintf("%d workers, create + status patch", cfg.workers)
	if stored < cfg.messages {
		note += fmt.Sprintf("; the %s budget ran out: %d of %d requested", cfg.messageBudget, stored, cfg.messages)
		b.res.note("messages: only %d of the %d requested messages fit in the %s budget; the memory figure is for %d.", stored, cfg.messages, cfg.messageBudget, stored)
	}
	b.res.add(scenarioMessages, "incoming messages stored by the bench", float64(stored), "objects", "", note)
	b.res.add(scenarioMessages, "store rate", float64(stored)/elapsed.Seconds(), "1/s", "", fmt.Sprintf("%.0f s", elapsed.Seconds()))
	total, err := b.countMessages(ctx)
	if err != nil {
		return err
	}

	progress("starting the manager over %d stored messages", total)
	lists0, err := apiLists(ctx, b.clientset, "instagrammessages")
	if err != nil {
		return err
	}
	start := time.Now()
	if err := b.restartManager(ctx, "messages"); err != nil {
		return err
	}
	if _, err := waitSettled(ctx, b.own, len(b.channels), 3*time.Minute); err != nil {
		return err
	}
	synced := time.Since(start)
	lists1, err := apiLists(ctx, b.clientset, "instagrammessages")
	if err != nil {
		return err
	}
	lists := lists1.minus(lists0)
	b.res.add(scenarioMessages, "manager start-up until settled", synced.Seconds(), "s", "",
		fmt.Sprintf("start to %d channel reconciles and empty queues; meanwhile the API server answered %.0f LISTs of instagrammessages taking %.1f s in total",
			len(b.channels), lists.Requests, lists.Seconds))
	b.res.detail("messages.startup.instagrammessageLists", lists)
	// A few quiet seconds let the Go runtime return what start-up used.
	if err := sleepCtx(ctx, 15*time.Second); err != nil {
		return err
	}
	var mem memory
	for range 5 {
		m, err := readMemory(b.own)
		if err != nil {
			return err
		}
		mem.RSSBytes = max(mem.RSSBytes, m.RSSBytes)
		mem.PeakRSSBytes, mem.HeapInuseBytes = m.PeakRSSBytes, max(mem.HeapInuseBytes, m.HeapInuseBytes)
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
	}
	b.res.add(scenarioMessages, "manager RSS with stored history", mib(mem.RSSBytes), "MiB", "<= 150 MiB",
		fmt.Sprintf("%d channels, %d InstagramMessages stored; peak %.0f MiB, Go heap in use %.0f MiB",
			len(b.channels), total, mib(mem.PeakRSSBytes), mib(mem.HeapInuseBytes)))
	b.res.detail("messages.managerMemory", mem)
	b.res.detail("messages.storedTotal", total)

	if err := b.sendRun(ctx, "default", "rate limit 20/s burst 40 (default)"); err != nil {
		return err
	}
	limit := fmt.Sprintf("%g", cfg.raisedLimit)
	progress("restarting the manager with --instagram-rate-limit=%s", limit)
	if err := b.restartManager(ctx, "raised-limit", "--instagram-rate-limit="+limit); err != nil {
		return err
	}
	if _, err := waitSettled(ctx, b.own, len(b.channels), 3*time.Minute); err != nil {
		return err
	}
	return b.sendRun(ctx, "raised", "--instagram-rate-limit="+limit)
}

// seedMessages writes incoming messages as the receiver would, spread over
// every channel and many contacts, until cfg.messages are stored or the
// budget runs out.
func (b *bench) seedMessages(ctx context.Context) (int, time.Duration, error) {
	cfg := b.cfg
	bctx, cancel := context.WithTimeout(ctx, cfg.messageBudget)
	defer cancel()
	var stored atomic.Int64
	start := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := stored.Load()
				progress("  %d stored, %.0f/s", n, float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	at := time.Now().Add(-time.Hour)
	err := parallel(bctx, cfg.workers, cfg.messages, func(i int) error {
		ch := b.channels[i%len(b.channels)]
		if err := b.writeIncoming(bctx, ch, fmt.Sprintf("bench-hist-%d", i), contactID(i/len(b.channels)), at); err != nil {
			return err
		}
		stored.Add(1)
		return nil
	})
	close(done)
	elapsed := time.Since(start)
	if err != nil && bctx.Err() == nil {
		return 0, 0, err
	}
	// Running out of budget is not a failure: the count says how far it got.
	return int(stored.Load()), elapsed, ctx.Err()
}

// countMessages asks the API server for the number of InstagramMessages
// without listing them all.
func (b *bench) countMessages(ctx context.Context) (int64, error) {
	var list igv1.InstagramMessageList
	if err := b.fast.List(ctx, &list, client.Limit(1)); err != nil {
		return 0, err
	}
	n := int64(len(list.Items))
	if list.RemainingItemCount != nil {
		n += *list.RemainingItemCount
	}
	return n, nil
}

// sendRun creates cfg.sends outgoing messages for Ready channels and
// measures the time until all are Sent.
func (b *bench) sendRun(ctx context.Context, run, limiter string) error {
	cfg := b.cfg
	wc, err := client.NewWithWatch(fastConfig(b.env.Config), client.Options{Scheme: b.env.Scheme})
	if err != nil {
		return err
	}
	w, err := wc.Watch(ctx, &igv1.InstagramMessageList{}, client.MatchingLabels{labelRun: run})
	if err != nil {
		return err
	}
	defer w.Stop()

	w0, err := apiWrites(ctx, b.clientset)
	if err != nil {
		return err
	}
	calls0 := len(b.env.Fake.Calls())
	sent0 := len(b.env.Fake.Sent())
	progress("send run %q: %d outgoing messages, %s", run, cfg.sends, limiter)
	start := time.Now()
	var createErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		createErr = parallel(ctx, cfg.workers, cfg.sends, func(i int) error {
			ch := b.channels[i%len(b.channels)]
			contact := contactID(i)
			m := &igv1.InstagramMessage{
				ObjectMeta: metav1.ObjectMeta{
					Name: fmt.Sprintf("send-%s-%04d", run, i), Namespace: ch.Namespace,
					Labels: map[string]string{
						labelRun: run, igv1.LabelChannel: ch.Name, igv1.LabelContact: contact,
						igv1.LabelDirection: igv1.DirectionLabelOutgoing,
					},
				},
				Spec: igv1.InstagramMessageSpec{
					ChannelRef: igv1.ChannelReference{Name: ch.Name}, Direction: igv1.DirectionOutgoing,
					ContactID: contact, Text: "Yes, size M is in stock. Want me to reserve one?",
				},
			}
			return b.fast.Create(ctx, m)
		})
	}()

	phases := map[string]igv1.Phase{}
	count := func(p ...igv1.Phase) int {
		n := 0
		for _, ph := range phases {
			for _, want := range p {
				if ph == want {
					n++
				}
			}
		}
		return n
	}
	var lastSent time.Duration
	deadline := time.NewTimer(cfg.sendTimeout)
	defer deadline.Stop()
	timedOut := false
loop:
	for count(igv1.PhaseSent, igv1.PhaseRead, igv1.PhaseFailed) < cfg.sends {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch of send run %q closed", run)
			}
			if ev.Type == watch.Error {
				return fmt.Errorf("watch of send run %q: %v", run, ev.Object)
			}
			m, ok := ev.Object.(*igv1.InstagramMessage)
			if !ok {
				continue
			}
			before := phases[m.Name]
			phases[m.Name] = m.Status.Phase
			if (m.Status.Phase == igv1.PhaseSent || m.Status.Phase == igv1.PhaseRead) && before != igv1.PhaseSent && before != igv1.PhaseRead {
				lastSent = time.Since(start)
			}
		case <-deadline.C:
			timedOut = true
			break loop
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	wg.Wait()
	if createErr != nil {
		return fmt.Errorf("create outgoing messages: %w", createErr)
	}
	// The manager finishes each message after Sent (labels, echo
	// clean-up); the writes are counted once it is done, and a restart
	// then interrupts nothing.
	if _, err := waitSettled(ctx, b.own, 0, time.Minute); err != nil {
		return err
	}
	w1, err := apiWrites(ctx, b.clientset)
	if err != nil {
		return err
	}
	writes, _, writesTotal := w1.diff(w0)
	sent := count(igv1.PhaseSent, igv1.PhaseRead)
	failed := count(igv1.PhaseFailed)
	calls := b.env.Fake.Calls()[calls0:]
	byEndpoint, non2xx := callsByEndpoint(calls)
	rate := 0.0
	if lastSent > 0 {
		rate = float64(sent) / lastSent.Seconds()
	}
	note := fmt.Sprintf("%s; %d Sent in %.1f s, %d Failed; fake accepted %d sends; Instagram calls in the run %v, non-2xx %v",
		limiter, sent, lastSent.Seconds(), failed, len(b.env.Fake.Sent())-sent0, byEndpoint, non2xx)
	if timedOut {
		note += fmt.Sprintf("; stopped by the %s bound", cfg.sendTimeout)
	}
	b.res.add(scenarioMessages, fmt.Sprintf("send throughput (%s limiter)", run), rate, "msgs/s", "", note)
	b.res.detail("messages.send."+run+".instagramCallsByEndpoint", byEndpoint)
	b.res.detail("messages.send."+run+".apiWrites", writes)
	// The bench created each message: one write per message is not the
	// manager's.
	b.res.add(scenarioMessages, fmt.Sprintf("API writes per sent message (%s run)", run), (writesTotal-float64(cfg.sends))/float64(cfg.sends), "writes", "",
		fmt.Sprintf("manager only (the bench's create excluded); %v", writes))
	if calls := byEndpoint[fake.EndpointSubscriptions] + byEndpoint[fake.EndpointMe]; calls > 0 {
		b.res.note("send run %q shared the rate limiter with %d channel checks (subscriptions, me) made during it.", run, calls)
	}
	return nil
}
