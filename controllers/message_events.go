package controllers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/sink"
)

// OutcomeEmitter delivers the outcome of each outgoing message (sent or
// failed) of a channel with a sink as a CloudEvent, with the channel's
// retries and backoff, and to its dead-letter sink what the sink refuses
// (4xx) or what still fails after the retry budget. Until then the message
// keeps its done label off, so it stays in the manager's cache and a
// restart delivers its outcome again (same event id): at least once.
// Delivery runs on the emitter's own workers and queue, never in the
// message reconciler, so a slow or dead sink delays no send.
//
// Read receipts are not an outcome of the manager: the receiver sends them
// as io.leadchat.instagram.message.read events (a watermark over the
// conversation).
type OutcomeEmitter struct {
	// Client reads channels and messages from the cache and patches the
	// done label.
	Client client.Client
	// Recorder records Warning Events on the channel; nil records none.
	Recorder events.EventRecorder
	Clock    clock.Clock
	// Sender sends the events; a default one when nil.
	Sender *sink.Sender
	// Workers bounds the outcomes delivered at once (default 4).
	Workers int

	once  sync.Once
	queue workqueue.TypedDelayingInterface[types.NamespacedName]
	mu    sync.Mutex
	// state is per message UID; forgotten once the message is done.
	state map[types.UID]*outcomeState
}

// outcomeState is the progress of one outcome.
type outcomeState struct {
	attempts int32
	// delivered: the sink or the dead-letter sink took it (or there was
	// none to take it); only the done label is left to write.
	delivered bool
	// failingSince: when the first attempt failed; an Event is recorded
	// once it fails for longer than sinkFailingEventAfter.
	failingSince time.Time
	warned       bool
}

// sinkFailingEventAfter is how long an outcome fails before a Warning Event
// says so on the channel.
const sinkFailingEventAfter = 5 * time.Minute

// Defaults of the channel's spec.sink.delivery, as the CRD defaults them.
const (
	defaultSinkRetry        = 5
	defaultSinkBackoffDelay = time.Second
	maxSinkBackoff          = 10 * time.Minute
)

// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagrammessages,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

func (e *OutcomeEmitter) init() {
	e.once.Do(func() {
		e.queue = workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[types.NamespacedName]{Name: "sink-outcomes"})
		e.state = map[types.UID]*outcomeState{}
		if e.Sender == nil {
			e.Sender = sink.NewSender(sink.Options{})
		}
		if e.Clock == nil {
			e.Clock = clock.RealClock{}
		}
		if e.Workers <= 0 {
			e.Workers = 4
		}
	})
}

// Pending reports whether msg's outcome still has to reach its channel's
// sink; it then queues the delivery, and the emitter writes the done label
// once it is delivered. False for a channel without a sink, or a nil
// emitter.
func (e *OutcomeEmitter) Pending(ctx context.Context, msg *igv1.InstagramMessage) bool {
	if e == nil || outcomeType(msg) == "" {
		return false
	}
	e.init()
	ch := &igv1.InstagramChannel{}
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: msg.Namespace, Name: msg.Spec.ChannelRef.Name}, ch); err != nil || ch.Spec.Sink == nil {
		return false
	}
	e.queue.Add(client.ObjectKeyFromObject(msg))
	return true
}

// NeedLeaderElection: only the leader sends, so only it finishes messages.
func (e *OutcomeEmitter) NeedLeaderElection() bool { return true }

// Start runs the workers until ctx ends.
func (e *OutcomeEmitter) Start(ctx context.Context) error {
	e.init()
	var wg sync.WaitGroup
	for range e.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e.work(ctx) {
			}
		}()
	}
	<-ctx.Done()
	e.queue.ShutDown()
	wg.Wait()
	return nil
}

func (e *OutcomeEmitter) work(ctx context.Context) bool {
	key, shutdown := e.queue.Get()
	if shutdown {
		return false
	}
	defer e.queue.Done(key)
	if retryAfter := e.process(ctx, key); retryAfter > 0 {
		e.queue.AddAfter(key, retryAfter)
	}
	return true
}

// process delivers one outcome; a positive duration asks to come back then.
func (e *OutcomeEmitter) process(ctx context.Context, key types.NamespacedName) time.Duration {
	logger := log.FromContext(ctx).WithValues("message", key.Name, "namespace", key.Namespace)
	msg := &igv1.InstagramMessage{}
	if err := e.Client.Get(ctx, key, msg); err != nil {
		if !apierrors.IsNotFound(err) {
			return time.Second
		}
		return 0
	}
	typ := outcomeType(msg)
	if typ == "" || msg.Labels[igv1.LabelDone] == "true" {
		e.forget(msg.UID)
		return 0
	}
	e.mu.Lock()
	st := e.state[msg.UID]
	if st == nil {
		st = &outcomeState{}
		e.state[msg.UID] = st
	}
	e.mu.Unlock()

	if !st.delivered {
		ch := &igv1.InstagramChannel{}
		if err := e.Client.Get(ctx, client.ObjectKey{Namespace: msg.Namespace, Name: msg.Spec.ChannelRef.Name}, ch); err != nil {
			if apierrors.IsNotFound(err) {
				st.delivered = true
			} else {
				return time.Second
			}
		} else if wait := e.deliver(ctx, ch, msg, typ, st); wait > 0 {
			return wait
		}
	}
	if err := e.finish(ctx, msg); err != nil {
		logger.Error(err, "Could not finish a message whose outcome was delivered")
		return time.Second
	}
	e.forget(msg.UID)
	return 0
}

// deliver makes one attempt; it marks st delivered, or says when to retry.
func (e *OutcomeEmitter) deliver(ctx context.Context, ch *igv1.InstagramChannel, msg *igv1.InstagramMessage, typ string, st *outcomeState) time.Duration {
	sc := sink.Channel{Namespace: ch.Namespace, Name: ch.Name}
	if ch.Spec.Sink == nil {
		st.delivered = true
		return 0
	}
	ev, err := outcomeEvent(msg, typ, e.Clock.Now())
	if err != nil {
		log.FromContext(ctx).Error(err, "Outcome cannot be encoded as a CloudEvent", "message", msg.Name)
		st.delivered = true
		sink.EventsTotal.WithLabelValues(sc.Namespace, sc.Name, sink.ResultLost).Inc()
		return 0
	}
	d := ch.Spec.Sink.Delivery
	timeout := time.Duration(0)
	if d != nil && d.Timeout != nil {
		timeout = d.Timeout.Duration
	}
	var status igv1.SinkStatus
	if ch.Status.Sink != nil {
		status = *ch.Status.Sink
	}
	err = e.Sender.Deliver(ctx, sc, sink.Target{URI: ch.Status.SinkURI, CACerts: status.CACerts}, ev, timeout)
	if err == nil {
		sink.EventsTotal.WithLabelValues(sc.Namespace, sc.Name, sink.ResultDelivered).Inc()
		st.delivered = true
		return 0
	}
	sink.EventsTotal.WithLabelValues(sc.Namespace, sc.Name, sink.ResultFailed).Inc()
	now := e.Clock.Now()
	if st.failingSince.IsZero() {
		st.failingSince = now
	}
	retry, policy, delay := deliveryPolicy(d)
	// An unresolved sink, or one whose circuit is open, was not tried: the
	// outcome waits without spending its retries.
	tried := ch.Status.SinkURI != "" && sink.ReasonOf(err) != "circuit_open"
	if tried && (sink.IsPermanent(err) || st.attempts >= retry) {
		return e.deadLetter(ctx, ch, msg, ev, timeout, status, st, err)
	}
	if tried {
		st.attempts++
		sink.EventsTotal.WithLabelValues(sc.Namespace, sc.Name, sink.ResultRetried).Inc()
	}
	if !st.warned && now.Sub(st.failingSince) >= sinkFailingEventAfter {
		st.warned = true
		e.warn(ch, igv1.ReasonSinkDeliveryFailing, "Outcomes of outgoing messages have failed to reach the sink for %s: %v", sinkFailingEventAfter, err)
	}
	return backoff(policy, delay, max(st.attempts, 1))
}

// deadLetter sends ev to the dead-letter sink. Without one the outcome is
// lost to the sink's consumers (it stays recorded on the message): counted,
// and a Warning Event on the channel. A dead-letter sink that fails too is
// retried with the channel's backoff, for as long as it takes.
func (e *OutcomeEmitter) deadLetter(ctx context.Context, ch *igv1.InstagramChannel, msg *igv1.InstagramMessage, ev cloudevents.Event, timeout time.Duration, status igv1.SinkStatus, st *outcomeState, cause error) time.Duration {
	sc := sink.Channel{Namespace: ch.Namespace, Name: ch.Name}
	if d := ch.Spec.Sink.Delivery; status.DeadLetterSinkURI == "" && d != nil && d.DeadLetterSink != nil {
		// There is one, not resolved yet (SinkProvided says why): wait.
		_, policy, delay := deliveryPolicy(d)
		st.attempts++
		return backoff(policy, delay, st.attempts)
	}
	if status.DeadLetterSinkURI == "" {
		sink.EventsTotal.WithLabelValues(sc.Namespace, sc.Name, sink.ResultLost).Inc()
		e.warn(ch, igv1.ReasonSinkEventLost, "Outcome %s of message %s not delivered and no dead-letter sink: %v", ev.Type(), msg.Name, cause)
		st.delivered = true
		return 0
	}
	// Knative's dead-letter extensions: why the event is here.
	ev.SetExtension("knativeerrordest", sink.RedactURI(status.URI))
	var se *sink.Error
	if errors.As(cause, &se) && se.StatusCode != 0 {
		ev.SetExtension("knativeerrorcode", se.StatusCode)
	}
	err := e.Sender.Deliver(ctx, sc, sink.Target{URI: status.DeadLetterSinkURI, CACerts: status.DeadLetterSinkCACerts}, ev, timeout)
	if err != nil {
		sink.EventsTotal.WithLabelValues(sc.Namespace, sc.Name, sink.ResultFailed).Inc()
		_, policy, delay := deliveryPolicy(ch.Spec.Sink.Delivery)
		st.attempts++
		return backoff(policy, delay, st.attempts)
	}
	sink.EventsTotal.WithLabelValues(sc.Namespace, sc.Name, sink.ResultDeadLettered).Inc()
	e.warn(ch, igv1.ReasonSinkDeadLettered, "Outcome %s of message %s went to the dead-letter sink: %v", ev.Type(), msg.Name, cause)
	st.delivered = true
	return 0
}

// finish writes the done label the message reconciler left to the emitter.
func (e *OutcomeEmitter) finish(ctx context.Context, msg *igv1.InstagramMessage) error {
	patch := client.MergeFrom(msg.DeepCopy())
	if msg.Labels == nil {
		msg.Labels = map[string]string{}
	}
	msg.Labels[igv1.LabelDone] = "true"
	if err := e.Client.Patch(ctx, msg, patch); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("label message done: %w", err))
	}
	return nil
}

func (e *OutcomeEmitter) forget(uid types.UID) {
	e.mu.Lock()
	delete(e.state, uid)
	e.mu.Unlock()
}

func (e *OutcomeEmitter) warn(ch *igv1.InstagramChannel, reason, note string, args ...any) {
	if e.Recorder != nil {
		e.Recorder.Eventf(ch, nil, "Warning", reason, "DeliverEvent", note, args...)
	}
}

// deliveryPolicy is spec.sink.delivery with its defaults.
func deliveryPolicy(d *igv1.SinkDelivery) (retry int32, policy igv1.BackoffPolicy, delay time.Duration) {
	retry, policy, delay = defaultSinkRetry, igv1.BackoffExponential, defaultSinkBackoffDelay
	if d == nil {
		return retry, policy, delay
	}
	if d.Retry != nil {
		retry = *d.Retry
	}
	if d.BackoffPolicy != "" {
		policy = d.BackoffPolicy
	}
	if d.BackoffDelay != nil && d.BackoffDelay.Duration > 0 {
		delay = d.BackoffDelay.Duration
	}
	return retry, policy, delay
}

// backoff is the wait before retry number attempt (1-based), as Knative
// computes it: delay*2^(attempt-1) or delay*attempt, capped.
func backoff(policy igv1.BackoffPolicy, delay time.Duration, attempt int32) time.Duration {
	var d float64
	if policy == igv1.BackoffLinear {
		d = float64(delay) * float64(attempt)
	} else {
		d = float64(delay) * math.Pow(2, float64(attempt-1))
	}
	if d > float64(maxSinkBackoff) || math.IsInf(d, 0) {
		return maxSinkBackoff
	}
	return time.Duration(d)
}

// outcomeType is the event type of a finished outgoing message, "" for
// one without an outcome (or an echo, which the receiver reports).
func outcomeType(msg *igv1.InstagramMessage) string {
	if msg.Spec.Direction != igv1.DirectionOutgoing || msg.Spec.Echo {
		return ""
	}
	switch msg.Status.Phase {
	case igv1.PhaseSent, igv1.PhaseRead:
		return sink.TypeMessageSent
	case igv1.PhaseFailed:
		return sink.TypeMessageFailed
	}
	return ""
}

// outcomeData is the data of an outcome: the message's name, spec and
// status, as kubectl shows them, without conditions.
type outcomeData struct {
	Name   string                      `json:"name"`
	Spec   igv1.InstagramMessageSpec   `json:"spec"`
	Status igv1.InstagramMessageStatus `json:"status"`
}

// outcomeEvent is the CloudEvent of msg's outcome. Its id derives from the
// message's UID and the outcome's time, which a restart does not change.
func outcomeEvent(msg *igv1.InstagramMessage, typ string, now time.Time) (cloudevents.Event, error) {
	at := outcomeTime(msg)
	st := msg.Status
	st.Conditions, st.ObservedGeneration = nil, 0
	return sink.New(sink.Spec{
		Namespace: msg.Namespace, Channel: msg.Spec.ChannelRef.Name,
		Type: typ, Key: string(msg.UID), Subject: msg.Spec.ContactID,
		Time: at, Now: now,
		Data: outcomeData{Name: msg.Name, Spec: msg.Spec, Status: st},
	})
}

// outcomeTime is when the outcome happened: sentAt, or when the message
// became Failed (its Ready condition's transition).
func outcomeTime(msg *igv1.InstagramMessage) time.Time {
	if msg.Status.Phase != igv1.PhaseFailed && msg.Status.SentAt != nil {
		return msg.Status.SentAt.Time
	}
	if c := meta.FindStatusCondition(msg.Status.Conditions, igv1.ConditionReady); c != nil {
		return c.LastTransitionTime.Time
	}
	return msg.CreationTimestamp.Time
}
