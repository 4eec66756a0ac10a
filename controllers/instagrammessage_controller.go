package controllers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/conditions"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/names"
)

// MessageOptions are the manager settings the message controller uses.
type MessageOptions struct {
	// MaxPendingAge bounds how long an outgoing message may wait (for its
	// channel, or between retries) before it fails with reason Expired,
	// measured from its creation. Default 24h.
	MaxPendingAge time.Duration
	// RetryBaseDelay and RetryMaxDelay bound the exponential backoff after
	// an attempt Instagram surely did not accept. Defaults 5s and 5m.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// MaxConcurrentReconciles is how many messages are sent in parallel.
	// Default 4; the per-app Instagram rate limit paces them anyway.
	MaxConcurrentReconciles int
	// SendTimeout is the longest a send can take (the Instagram client's
	// timeout). With the outcome-write timeout it sizes the send lease.
	// Default instagram.DefaultTimeout.
	SendTimeout time.Duration
	// Identity names this manager process in send leases. Default: the
	// host name (the pod name) and a random per-process suffix, so a
	// restarted pod is never taken for its previous incarnation.
	Identity string
}

// Defaults of MessageOptions.
const (
	DefaultMessageMaxPendingAge  = 24 * time.Hour
	DefaultMessageRetryBaseDelay = 5 * time.Second
	DefaultMessageRetryMaxDelay  = 5 * time.Minute
	DefaultMessageConcurrency    = 4
)

func (o MessageOptions) withDefaults() MessageOptions {
	if o.MaxPendingAge <= 0 {
		o.MaxPendingAge = DefaultMessageMaxPendingAge
	}
	if o.RetryBaseDelay <= 0 {
		o.RetryBaseDelay = DefaultMessageRetryBaseDelay
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = DefaultMessageRetryMaxDelay
	}
	o.RetryMaxDelay = max(o.RetryMaxDelay, o.RetryBaseDelay)
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = DefaultMessageConcurrency
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = instagram.DefaultTimeout
	}
	return o
}

// SendShutdownGrace is how long a stopping manager waits for its
// reconciles: the longest send (sendTimeout) plus the longest outcome
// write, with room to spare. The pod's termination grace period must be
// longer (60 s with the default 15 s send timeout).
func SendShutdownGrace(sendTimeout time.Duration) time.Duration {
	if sendTimeout <= 0 {
		sendTimeout = instagram.DefaultTimeout
	}
	return sendTimeout + outcomeWriteTimeout + 5*time.Second
}

// sendLeaseMargin is added to a send lease for clock skew between the
// managers that read it.
const sendLeaseMargin = 15 * time.Second

// leaseDuration is how long a send may be in flight, its outcome write
// included: the lease another manager respects before it declares the
// send interrupted.
func (o MessageOptions) leaseDuration() time.Duration {
	return o.SendTimeout + outcomeWriteTimeout + sendLeaseMargin
}

// holder is this process's name in send leases.
func (r *InstagramMessageReconciler) holder() string {
	r.identityOnce.Do(func() {
		r.identity = r.Options.Identity
		if r.identity == "" {
			r.identity = defaultIdentity()
		}
	})
	return r.identity
}

// defaultIdentity is the host name (the pod name) with a random suffix.
func defaultIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "manager"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "_" + hex.EncodeToString(b)
}

// conflictRequeue is the wait after an optimistic-lock conflict: someone
// else changed the message, and the cache will show it shortly.
const conflictRequeue = time.Second

// MessageCacheSelector selects the InstagramMessage objects the manager
// caches: outgoing messages it still has to act on. Messages the receiver
// writes (direction incoming) and finished outgoing ones (done=true) never
// enter the cache, so the manager's memory does not grow with the history of
// every conversation. A user-created message without labels is selected (a
// != requirement matches an absent label), and gets its labels on its first
// reconcile.
func MessageCacheSelector() labels.Selector {
	notIncoming, err := labels.NewRequirement(igv1.LabelDirection, selection.NotEquals, []string{igv1.DirectionLabelIncoming})
	if err != nil {
		panic(fmt.Sprintf("message cache selector: %v", err))
	}
	notDone, err := labels.NewRequirement(igv1.LabelDone, selection.NotEquals, []string{"true"})
	if err != nil {
		panic(fmt.Sprintf("message cache selector: %v", err))
	}
	return labels.NewSelector().Add(*notIncoming, *notDone)
}

// InstagramMessageReconciler sends outgoing InstagramMessages exactly once:
// Pending -> Sending (persisted with an optimistic lock before Instagram is
// called) -> Sent, or Failed with a reason. An outcome it cannot know
// (the request may have reached Instagram) is reported as DeliveryUnknown,
// never retried. Retention is RetentionRunner's job.
type InstagramMessageReconciler struct {
	// Client reads messages, channels, apps and Secrets from the cache and
	// writes to the API server.
	client.Client
	// APIReader reads without the cache: a message whose outcome write hit a
	// conflict, and Secrets not yet labelled for the cache.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Clock     clock.Clock
	Instagram InstagramClients
	// Recorder is mgr.GetEventRecorder("instagrammessage-controller"); nil
	// records nothing.
	Recorder events.EventRecorder
	Options  MessageOptions
	// Outcomes delivers outcomes to channels' sinks; nil ignores sinks.
	Outcomes *OutcomeEmitter

	// unpersisted holds, by message UID, the outcome of a send that this
	// process knows but could not write (the API server was unreachable for
	// longer than the write retries). The next reconcile writes it instead
	// of reporting DeliveryUnknown.
	unpersisted sync.Map

	// refusedTokens holds, by channel UID, the fingerprint of a token
	// Instagram refused on a send of this process (see stopChannel).
	refusedTokens sync.Map

	identityOnce sync.Once
	identity     string
}

// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagrammessages,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagrammessages/status,verbs=get;patch
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramchannels,verbs=get;list;watch
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramchannels/status,verbs=get;patch
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramapps;clusterinstagramapps,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile dispatches on the phase. Sent, Read and Failed messages only get
// their finishing labels; a message found in Sending was interrupted; a
// Pending one is sent when its channel is Ready.
func (r *InstagramMessageReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	msg := &igv1.InstagramMessage{}
	if err := r.Get(ctx, req.NamespacedName, msg); err != nil {
		// NotFound also when the message got the done label and so left the
		// cache: there is nothing left to do for it.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// An echo is the business's message sent from another client: the
	// receiver records it already Sent, and nothing here may send or finish
	// it (finishing would delete it as the echo of an own send).
	if msg.Spec.Direction != igv1.DirectionOutgoing || msg.Spec.Echo || !msg.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	logger := log.FromContext(ctx).WithValues("channel", msg.Spec.ChannelRef.Name, "namespace", msg.Namespace)
	ctx = log.IntoContext(ctx, logger)

	switch msg.Status.Phase {
	case igv1.PhaseSent, igv1.PhaseRead, igv1.PhaseFailed:
		return ctrl.Result{}, r.finish(ctx, msg)
	case igv1.PhaseSending:
		return r.resolveInterrupted(ctx, msg)
	case "", igv1.PhasePending:
		return r.reconcilePending(ctx, msg)
	default:
		// Received or Deleted on an outgoing message: phases the receiver
		// owns; nothing to send.
		return ctrl.Result{}, nil
	}
}

// reconcilePending sends a Pending message, or records why it waits.
func (r *InstagramMessageReconciler) reconcilePending(ctx context.Context, msg *igv1.InstagramMessage) (ctrl.Result, error) {
	opts := r.Options.withDefaults()
	now := r.now()
	channelName := msg.Spec.ChannelRef.Name

	ch := &igv1.InstagramChannel{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: msg.Namespace, Name: channelName}, ch); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("get channel %s: %w", channelName, err)
		}
		ch = nil
	}
	if err := r.ensureMetadata(ctx, msg, ch); err != nil {
		if apierrors.IsConflict(err) {
			// Decided on a stale copy: look again with the newer one.
			return ctrl.Result{RequeueAfter: conflictRequeue}, nil
		}
		return ctrl.Result{}, err
	}

	deadline := pendingDeadline(msg, opts.MaxPendingAge)
	if !now.Before(deadline) {
		why := fmt.Sprintf("not sent within %s of its creation", opts.MaxPendingAge)
		if msg.Status.Message != "" {
			why += " (last: " + msg.Status.Message + ")"
		}
		return r.writeLocked(ctx, msg, failedStatus(sendOutcome{reason: igv1.ReasonExpired, message: why}, now))
	}
	if ready, why := channelReadiness(ch, channelName); !ready {
		return r.wait(ctx, msg, why, deadline, now)
	}
	if next := msg.Status.NextAttemptAt; next != nil && now.Before(next.Time) {
		// A backoff is under way; the persisted time survives restarts and
		// unrelated events.
		return ctrl.Result{RequeueAfter: min(next.Sub(now), deadline.Sub(now))}, nil
	}
	if res, done, err := r.checkReplyWindow(ctx, msg, now); done {
		return res, err
	}
	target, why, err := r.sendTarget(ctx, ch)
	if err != nil {
		return ctrl.Result{}, err
	}
	if why != "" {
		return r.wait(ctx, msg, why, deadline, now)
	}
	if r.tokenRefusedHere(ch, target.token) {
		why := fmt.Sprintf("channel %q is not Ready (%s): Instagram refused its token on a send; waiting for a new login", channelName, igv1.ReasonTokenInvalid)
		return r.wait(ctx, msg, why, deadline, now)
	}
	return r.send(ctx, msg, ch, target, deadline)
}

// wait keeps a message Pending with reason ChannelNotReady until the
// channel recovers (its watch wakes the message) or the deadline passes.
func (r *InstagramMessageReconciler) wait(ctx context.Context, msg *igv1.InstagramMessage, why string, deadline, now time.Time) (ctrl.Result, error) {
	res, err := r.writeLocked(ctx, msg, func(m *igv1.InstagramMessage) {
		s := &m.Status
		s.Phase = igv1.PhasePending
		s.Reason = igv1.ReasonChannelNotReady
		s.Message = why
		s.ObservedGeneration = m.Generation
		setMessageCondition(m, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonChannelNotReady, why, now)
		setMessageCondition(m, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonChannelNotReady, why, now)
		meta.RemoveStatusCondition(&s.Conditions, igv1.ConditionStalled)
	})
	if err != nil || res.RequeueAfter > 0 {
		return res, err
	}
	return ctrl.Result{RequeueAfter: deadline.Sub(now)}, nil
}

// writeLocked applies mutate to msg and writes the status, only when it
// changed, with an optimistic lock: msg may come from a cache that lags, and
// a status computed from a stale Pending must never overwrite a newer Sent.
// A conflict is no error: the message is looked at again shortly.
func (r *InstagramMessageReconciler) writeLocked(ctx context.Context, msg *igv1.InstagramMessage, mutate func(*igv1.InstagramMessage)) (ctrl.Result, error) {
	changed, err := r.patchStatusLocked(ctx, msg, mutate)
	switch {
	case apierrors.IsConflict(err):
		log.FromContext(ctx).V(1).Info("message changed meanwhile; looking again", "message", msg.Name)
		return ctrl.Result{RequeueAfter: conflictRequeue}, nil
	case apierrors.IsNotFound(err):
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("patch message status: %w", err)
	}
	if msg.Status.Phase == igv1.PhaseFailed {
		if changed {
			// Counted once the failure is stored, so a conflict and the
			// retry that follows do not count it twice.
			messagesSentTotal.WithLabelValues(sendResultFailed(msg.Status.Reason)).Inc()
			r.warn(msg, msg.Status.Reason, msg.Status.Message)
		}
		return ctrl.Result{}, r.finish(ctx, msg)
	}
	return ctrl.Result{}, nil
}

// resolveInterrupted handles a message found in phase Sending: a previous
// attempt persisted Sending and then stopped before recording its outcome
// (the manager crashed or lost the API server). The request may have
// reached Instagram, so it is never sent again.
func (r *InstagramMessageReconciler) resolveInterrupted(ctx context.Context, msg *igv1.InstagramMessage) (ctrl.Result, error) {
	if v, ok := r.unpersisted.Load(msg.UID); ok {
		// This process knows the outcome; only its write failed.
		return r.record(ctx, msg, v.(func(*igv1.InstagramMessage)))
	}
	now := r.now()
	if expiry := sendLeaseExpiry(msg, r.Options.withDefaults().leaseDuration()); now.Before(expiry) {
		// Another manager (a previous leader shutting down) may still be
		// sending it or writing its outcome: leave it alone until then.
		log.FromContext(ctx).V(1).Info("message is being sent elsewhere; waiting for its lease", "message", msg.Name,
			"holder", leaseHolder(msg), "leaseExpiresAt", expiry)
		return ctrl.Result{RequeueAfter: max(expiry.Sub(now), time.Second)}, nil
	}
	log.FromContext(ctx).Info("found a send interrupted before its outcome was recorded; not sending again", "message", msg.Name,
		"holder", leaseHolder(msg))
	out := sendOutcome{
		reason:  igv1.ReasonDeliveryUnknown,
		message: deliveryUnknownMessage("the send was interrupted before its outcome was recorded"),
	}
	return r.writeLocked(ctx, msg, failedStatus(out, now))
}

// finish gives a message that the manager no longer acts on its final
// labels, in the order the echo protocol needs: the mid label first (the
// receiver looks for it after writing an echo), then the deletion of an
// echo the receiver may already have written, and last done=true, which
// drops the message out of the cache. Each step is idempotent, so a failure
// anywhere is repaired by the next reconcile while the message is still
// cached.
func (r *InstagramMessageReconciler) finish(ctx context.Context, msg *igv1.InstagramMessage) error {
	if err := r.finishMoreMIDs(ctx, msg); err != nil {
		return err
	}
	mid := msg.Status.MessageID
	if mid != "" && msg.Labels[igv1.LabelMID] != names.MIDHash(mid) {
		if err := r.patchLabels(ctx, msg, map[string]string{igv1.LabelMID: names.MIDHash(mid)}); err != nil {
			return err
		}
	}
	if mid != "" && msg.Labels[igv1.LabelDone] != "true" {
		echo := &igv1.InstagramMessage{ObjectMeta: metav1.ObjectMeta{
			Namespace: msg.Namespace,
			Name:      names.IncomingMessageName(msg.Spec.ChannelRef.Name, mid),
		}}
		if err := r.Delete(ctx, echo); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete echo of own send: %w", err)
		}
	}
	if msg.Labels[igv1.LabelDone] != "true" {
		if r.Outcomes.Pending(ctx, msg) {
			return nil // the emitter labels it done once the outcome is delivered
		}
		if err := r.patchLabels(ctx, msg, map[string]string{igv1.LabelDone: "true"}); err != nil {
			return err
		}
	}
	return nil
}

// patchLabels adds labels with a merge patch of the metadata only.
func (r *InstagramMessageReconciler) patchLabels(ctx context.Context, msg *igv1.InstagramMessage, add map[string]string) error {
	patch := client.MergeFrom(msg.DeepCopy())
	if msg.Labels == nil {
		msg.Labels = map[string]string{}
	}
	for k, v := range add {
		msg.Labels[k] = v
	}
	if err := r.Patch(ctx, msg, patch); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("label message: %w", err))
	}
	return nil
}

// warn records a Warning Event on a message that failed. Notes carry
// Instagram's error text, never a token.
func (r *InstagramMessageReconciler) warn(msg *igv1.InstagramMessage, reason, note string) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(msg, nil, "Warning", reason, "Send", "%s", note)
}

func (r *InstagramMessageReconciler) now() time.Time {
	c := r.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	// The API server stores seconds; computing in seconds keeps the status
	// stable between reconciles.
	return c.Now().UTC().Truncate(time.Second)
}

// setMessageCondition sets a condition with the message's generation and a
// transition time from the injected clock.
func setMessageCondition(m *igv1.InstagramMessage, condType string, status metav1.ConditionStatus, reason, message string, now time.Time) {
	conditions.Set(&m.Status.Conditions, m.Generation, condType, status, reason, message, now)
}

// SetupWithManager registers the controller. Messages are watched for
// creation and spec changes only: the controller's own status writes need no
// reconcile (it requeues itself), and a message leaving the cache needs
// none either. Channels are watched so that waiting messages are sent as
// soon as their channel becomes Ready.
func (r *InstagramMessageReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	opts := r.Options.withDefaults()
	return ctrl.NewControllerManagedBy(mgr).
		Named("instagrammessage").
		For(&igv1.InstagramMessage{}, builder.WithPredicates(messageChangedPredicate())).
		Watches(&igv1.InstagramChannel{}, handler.EnqueueRequestsFromMapFunc(r.messagesForChannel),
			builder.WithPredicates(channelReadinessChangedPredicate())).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).
		Complete(r)
}

// messageChangedPredicate passes outgoing messages when they appear (also
// at startup), when their spec changes, and when they leave Sending: a
// manager that waits for another's send lease finishes the message as soon
// as the holder recorded the outcome, instead of at the lease's expiry.
func messageChangedPredicate() predicate.Predicate {
	outgoing := func(o client.Object) bool {
		m, ok := o.(*igv1.InstagramMessage)
		return ok && m.Spec.Direction == igv1.DirectionOutgoing
	}
	leftSending := func(e event.UpdateEvent) bool {
		oldMsg, ok1 := e.ObjectOld.(*igv1.InstagramMessage)
		newMsg, ok2 := e.ObjectNew.(*igv1.InstagramMessage)
		return ok1 && ok2 && oldMsg.Status.Phase == igv1.PhaseSending && newMsg.Status.Phase != igv1.PhaseSending
	}
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return outgoing(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return outgoing(e.ObjectNew) && (e.ObjectNew.GetGeneration() != e.ObjectOld.GetGeneration() || leftSending(e))
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(e event.GenericEvent) bool { return outgoing(e.Object) },
	}
}

// channelReadinessChangedPredicate passes a channel update when whether
// messages can be sent through it, or the reason why not, changed.
func channelReadinessChangedPredicate() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldCh, ok1 := e.ObjectOld.(*igv1.InstagramChannel)
			newCh, ok2 := e.ObjectNew.(*igv1.InstagramChannel)
			if !ok1 || !ok2 {
				return false
			}
			oldReady, oldWhy := channelReadiness(oldCh, oldCh.Name)
			newReady, newWhy := channelReadiness(newCh, newCh.Name)
			return oldReady != newReady || oldWhy != newWhy
		},
	}
}

// messagesForChannel maps a channel to its messages that still wait to be
// sent, listed by label from the cache (which holds only unfinished
// outgoing messages).
func (r *InstagramMessageReconciler) messagesForChannel(ctx context.Context, o client.Object) []reconcile.Request {
	var list igv1.InstagramMessageList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()),
		client.MatchingLabels{igv1.LabelChannel: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "list messages of channel", "channel", o.GetName(), "namespace", o.GetNamespace())
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		m := &list.Items[i]
		if m.Spec.Direction != igv1.DirectionOutgoing {
			continue
		}
		if m.Status.Phase == "" || m.Status.Phase == igv1.PhasePending {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(m)})
		}
	}
	return reqs
}
