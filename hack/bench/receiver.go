package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
)

// stepResult is one concurrency step of the receiver or the baseline.
type stepResult struct {
	Concurrency int     `json:"concurrency"`
	Attempted   int     `json:"attempted"`
	OK          int     `json:"ok"`
	Failed      int     `json:"failed"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"perSecond"`
	P50Millis   float64 `json:"p50Millis"`
	P99Millis   float64 `json:"p99Millis"`
	// Statuses counts the receiver's HTTP answers (receiver steps only).
	Statuses map[int]int `json:"statuses,omitempty"`
	// TimedOut is set when the step's time bound ended it early.
	TimedOut bool `json:"timedOut,omitempty"`
}

// receiver posts signed single-message deliveries to the receiver at rising
// concurrency and, step by step, writes the same objects straight to the
// API server the way the receiver does (create, then status patch) as the
// baseline the receiver is compared with.
func (b *bench) receiver(ctx context.Context) error {
	cfg := b.cfg
	httpClient := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute},
	}
	progress("waiting for the receiver to know the app and route to the channels")
	warm := 0
	if err := waitFor(ctx, time.Minute, "receiver accepts a delivery", func() (bool, error) {
		warm++
		status, err := b.postDelivery(ctx, httpClient, b.channels[0], fmt.Sprintf("bench-warmup-%d", warm), 0)
		return err == nil && status == http.StatusOK, err
	}); err != nil {
		return err
	}

	var recvSteps, baseSteps []stepResult
	for si, c := range cfg.concurrency {
		progress("receiver: %d deliveries at concurrency %d", cfg.deliveries, c)
		r := b.loadStep(ctx, c, func(ctx context.Context, i int) (int, error) {
			ch := b.channels[i%len(b.channels)]
			return b.postDelivery(ctx, httpClient, ch, fmt.Sprintf("bench-recv-%d-%d", si, i), i)
		})
		recvSteps = append(recvSteps, r)
		b.objectPathBest = max(b.objectPathBest, r.PerSecond)
		progress("  %.1f deliveries/s, p50 %.1f ms, p99 %.1f ms, answers %v", r.PerSecond, r.P50Millis, r.P99Millis, r.Statuses)

		progress("baseline: %d create+status writes at concurrency %d", cfg.deliveries, c)
		base := b.loadStep(ctx, c, func(ctx context.Context, i int) (int, error) {
			ch := b.channels[i%len(b.channels)]
			if isComment(i) {
				return http.StatusOK, b.writeComment(ctx, ch, fmt.Sprintf("bench-base-%d-%d", si, i), time.Now())
			}
			return http.StatusOK, b.writeIncoming(ctx, ch, fmt.Sprintf("bench-base-%d-%d", si, i), contactID(i), time.Now())
		})
		base.Statuses = nil
		baseSteps = append(baseSteps, base)
		progress("  %.1f objects/s, p50 %.1f ms, p99 %.1f ms", base.PerSecond, base.P50Millis, base.P99Millis)

		ratio := 0.0
		if base.PerSecond > 0 {
			ratio = r.PerSecond / base.PerSecond
		}
		note := fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, %d/%d acked 200", r.P50Millis, r.P99Millis, r.Statuses[http.StatusOK], r.Attempted)
		if r.TimedOut {
			note += fmt.Sprintf(", stopped by the %s bound", cfg.stepTimeout)
		}
		b.res.add(scenarioReceiver, fmt.Sprintf("deliveries/s at concurrency %d", c), r.PerSecond, "1/s", "", note)
		b.res.add(scenarioReceiver, fmt.Sprintf("baseline objects/s at concurrency %d", c), base.PerSecond, "1/s", "", fmt.Sprintf("create + status patch; p50 %.1f ms, p99 %.1f ms", base.P50Millis, base.P99Millis))
		b.res.add(scenarioReceiver, fmt.Sprintf("receiver/baseline at concurrency %d", c), ratio, "ratio", ">= 0.8", "")
	}
	b.res.detail("receiver.steps", recvSteps)
	b.res.detail("receiver.baselineSteps", baseSteps)

	// The acknowledgements mean stored: check one object of the last step.
	last := len(cfg.concurrency) - 1
	ch := b.channels[0]
	var m igv1.InstagramMessage
	key := client.ObjectKey{Namespace: ch.Namespace, Name: names.IncomingMessageName(ch.Name, fmt.Sprintf("bench-recv-%d-%d", last, 0))}
	if err := b.fast.Get(ctx, key, &m); err != nil {
		return fmt.Errorf("an acknowledged delivery was not stored: %w", err)
	}
	if m.Status.Phase != igv1.PhaseReceived {
		return fmt.Errorf("an acknowledged delivery is stored with phase %q, want Received", m.Status.Phase)
	}
	return nil
}

// loadStep runs cfg.deliveries operations at concurrency c, bounded by
// cfg.stepTimeout, and measures each one's latency.
func (b *bench) loadStep(ctx context.Context, c int, op func(ctx context.Context, i int) (int, error)) stepResult {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.stepTimeout)
	defer cancel()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		statuses  = map[int]int{}
		failed    int
		attempted int
	)
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				t := time.Now()
				status, err := op(ctx, i)
				d := time.Since(t)
				mu.Lock()
				attempted++
				if err != nil {
					failed++
				} else {
					statuses[status]++
					if status == http.StatusOK {
						latencies = append(latencies, d)
					} else {
						failed++
					}
				}
				mu.Unlock()
			}
		}()
	}
	timedOut := false
feed:
	for i := range b.cfg.deliveries {
		select {
		case jobs <- i:
		case <-ctx.Done():
			timedOut = true
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	sortDurations(latencies)
	return stepResult{
		Concurrency: c, Attempted: attempted, OK: len(latencies), Failed: failed,
		Seconds: elapsed.Seconds(), PerSecond: float64(len(latencies)) / elapsed.Seconds(),
		P50Millis: millis(percentile(latencies, 50)), P99Millis: millis(percentile(latencies, 99)),
		Statuses: statuses, TimedOut: timedOut,
	}
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// contactID is a customer's IGSID: digits, as Instagram sends them.
func contactID(i int) string { return fmt.Sprintf("55123400%08d", i%5000) }

// isComment: one delivery in five is a comment notification, the rest
// customer messages, so the ratio covers both kinds the receiver writes.
func isComment(i int) bool { return i%5 == 4 }

// postDelivery posts one signed delivery with one customer message (or, see
// isComment, one comment), as Meta does, and returns the receiver's HTTP
// status.
func (b *bench) postDelivery(ctx context.Context, hc *http.Client, ch channel, mid string, i int) (int, error) {
	now := time.Now()
	customer := contactID(i)
	var env fake.Envelope
	if isComment(i) {
		env = fake.Envelope{Object: "instagram", Entry: []fake.Entry{{ID: ch.UserID, Time: now.Unix(), Changes: []fake.Change{{
			Field: "comments", Value: map[string]any{
				"id": mid, "from": map[string]any{"id": "1784140000000555", "username": "jane.doe"},
				"media": map[string]any{"id": "17887498072083520", "media_product_type": "FEED"}, "text": "How much is this?",
			},
		}}}}}
	} else {
		env = fake.NewEnvelope(ch.UserID, now, fake.Messaging{
			Sender: fake.Party{ID: customer}, Recipient: fake.Party{ID: ch.UserID}, Timestamp: now.UnixMilli(),
			Message: &fake.Message{MID: mid, Text: "Hi! Is the blue one still in stock in size M?"},
		})
	}
	body, err := json.Marshal(env)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.env.PublicURL+"/webhooks/instagram", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", fake.SignatureHeader(b.app.Secret, body))
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// incomingMessage is the object the receiver writes for a customer's
// message: same name, labels, owner, spec and first status.
func incomingMessage(ch channel, mid, contact string) *igv1.InstagramMessage {
	return &igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{
			Name:      names.IncomingMessageName(ch.Name, mid),
			Namespace: ch.Namespace,
			Labels: map[string]string{
				igv1.LabelChannel:       ch.Name,
				igv1.LabelContact:       contact,
				igv1.LabelDirection:     igv1.DirectionLabelIncoming,
				igv1.LabelEvent:         igv1.EventLabelMessage,
				igv1.LabelAwaitingReply: "true",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: igv1.GroupVersion.String(), Kind: "InstagramChannel",
				Name: ch.Name, UID: ch.UID, Controller: ptr.To(true),
			}},
		},
		Spec: igv1.InstagramMessageSpec{
			ChannelRef: igv1.ChannelReference{Name: ch.Name},
			Direction:  igv1.DirectionIncoming,
			ContactID:  contact,
			Text:       "Hi! Is the blue one still in stock in size M?",
		},
	}
}

// writeIncoming stores an incoming message as the receiver does: create,
// then the first status as a merge patch with an optimistic lock.
func (b *bench) writeIncoming(ctx context.Context, ch channel, mid, contact string, at time.Time) error {
	obj := incomingMessage(ch, mid, contact)
	if err := b.asReceiver.Create(ctx, obj); err != nil {
		return fmt.Errorf("create message: %w", err)
	}
	base := obj.DeepCopy()
	obj.Status.Phase = igv1.PhaseReceived
	obj.Status.MessageID = mid
	obj.Status.Timestamp = ptr.To(metav1.NewTime(at))
	obj.Status.EventTime = ptr.To(metav1.NewMicroTime(at))
	obj.Status.ReceivedAt = ptr.To(metav1.NewMicroTime(at))
	obj.Status.ObservedGeneration = obj.Generation
	meta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type: igv1.ConditionReady, Status: metav1.ConditionTrue, Reason: string(igv1.PhaseReceived),
		Message: "Recorded from an Instagram webhook", ObservedGeneration: obj.Generation,
		LastTransitionTime: metav1.NewTime(at),
	})
	if err := b.asReceiver.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patch message status: %w", err)
	}
	return nil
}

// writeComment stores a comment as the receiver does: create, then the
// first status as a merge patch with an optimistic lock.
func (b *bench) writeComment(ctx context.Context, ch channel, id string, at time.Time) error {
	obj := &igv1.InstagramComment{
		ObjectMeta: metav1.ObjectMeta{
			Name:      names.CommentName(ch.Name, id),
			Namespace: ch.Namespace,
			Labels: map[string]string{
				igv1.LabelChannel: ch.Name, igv1.LabelEvent: igv1.EventLabelComment,
				igv1.LabelMedia: "17887498072083520", igv1.LabelContact: "1784140000000555",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: igv1.GroupVersion.String(), Kind: "InstagramChannel",
				Name: ch.Name, UID: ch.UID, Controller: ptr.To(true),
			}},
		},
		Spec: igv1.InstagramCommentSpec{
			ChannelRef: igv1.ChannelReference{Name: ch.Name},
			CommentID:  id,
			Media:      igv1.CommentMedia{ID: "17887498072083520", ProductType: "FEED"},
			From:       igv1.CommentAuthor{ID: "1784140000000555", Username: "jane.doe"},
			Text:       "How much is this?",
		},
	}
	if err := b.asReceiver.Create(ctx, obj); err != nil {
		return fmt.Errorf("create comment: %w", err)
	}
	base := obj.DeepCopy()
	obj.Status.EventTime = ptr.To(metav1.NewMicroTime(at))
	obj.Status.ReceivedAt = ptr.To(metav1.NewMicroTime(at))
	obj.Status.ObservedGeneration = obj.Generation
	meta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type: igv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Recorded",
		Message: "Recorded from an Instagram webhook", ObservedGeneration: obj.Generation,
		LastTransitionTime: metav1.NewTime(at),
	})
	if err := b.asReceiver.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patch comment status: %w", err)
	}
	return nil
}
