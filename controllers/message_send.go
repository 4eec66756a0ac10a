package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

// outcomeWriteTimeout bounds the retries of writing a send's outcome. The
// write runs detached from the reconcile's context: once Instagram answered,
// the answer must be recorded even while the manager shuts down.
const outcomeWriteTimeout = 30 * time.Second

// outcomeWriteBackoff paces those retries (about 6s in all before the
// timeout), for an API server that is briefly unavailable.
var outcomeWriteBackoff = wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 7, Cap: 2 * time.Second}

// sendTarget is what a send needs from the channel. token is a credential:
// it goes to Instagram and nowhere else.
type sendTarget struct {
	api   instagram.API
	token string
	// account is the channel's status.account.userID (per-account limits).
	account string
}

// sendTarget resolves the channel's app and reads its managed token Secret.
// why explains, for the ChannelNotReady message, what is missing.
func (r *InstagramMessageReconciler) sendTarget(ctx context.Context, ch *igv1.InstagramChannel) (target *sendTarget, why string, err error) {
	appID, why, err := r.appIDOf(ctx, ch)
	if why != "" || err != nil {
		return nil, why, err
	}
	key := types.NamespacedName{Namespace: ch.Namespace, Name: ch.TokenSecretName()}
	secret, err := GetWatchedSecret(ctx, r.Client, r.APIReader, key)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Sprintf("token Secret %s of channel %q not found", key.Name, ch.Name), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("get token Secret %s: %w", key.Name, err)
	}
	token := string(secret.Data[igv1.TokenSecretKeyAccessToken])
	if token == "" {
		return nil, fmt.Sprintf("token Secret %s of channel %q lacks key %s", key.Name, ch.Name, igv1.TokenSecretKeyAccessToken), nil
	}
	return &sendTarget{api: r.Instagram.ForApp(appID), token: token, account: ch.Status.Account.UserID}, "", nil
}

// appIDOf returns the Meta app ID of the channel's spec.appRef. The channel
// controller has checked the app thoroughly before it marked the channel
// Ready; this only looks the ID up.
func (r *InstagramMessageReconciler) appIDOf(ctx context.Context, ch *igv1.InstagramChannel) (appID, why string, err error) {
	return lookupAppID(ctx, r.Client, ch)
}

// lookupAppID returns the Meta app ID that ch's spec.appRef names; why
// says, in words for a person, what is missing when there is none.
func lookupAppID(ctx context.Context, reader client.Reader, ch *igv1.InstagramChannel) (appID, why string, err error) {
	kind, name := appKind(ch), ch.Spec.AppRef.Name
	var (
		obj AppObject
		key = types.NamespacedName{Name: name}
	)
	if kind == igv1.KindClusterInstagramApp {
		obj = &igv1.ClusterInstagramApp{}
	} else {
		obj = &igv1.InstagramApp{}
		key.Namespace = ch.Namespace
	}
	if err := reader.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Sprintf("%s %q of channel %q not found", kind, name, ch.Name), nil
		}
		return "", "", fmt.Errorf("get %s %s: %w", kind, name, err)
	}
	if obj.AppSpec().AppID == "" {
		return "", fmt.Sprintf("%s %q of channel %q has no spec.appID", kind, name, ch.Name), nil
	}
	return obj.AppSpec().AppID, "", nil
}

// ensureMetadata adds the labels the manager owns on an outgoing message
// (workloads select by them; the channel watch and retention list by them)
// and makes the channel an owner, so the channel's deletion takes its
// messages along. One metadata patch, only when something is missing.
func (r *InstagramMessageReconciler) ensureMetadata(ctx context.Context, msg *igv1.InstagramMessage, ch *igv1.InstagramChannel) error {
	// Locked: the answer replaces msg, status included, so an unlocked
	// patch from a stale copy would hand the send path a newer status
	// (Sending, even Sent) under a fresh resourceVersion, and its own
	// locked Sending write would then pass.
	patch := client.MergeFromWithOptions(msg.DeepCopy(), client.MergeFromWithOptimisticLock{})
	changed := false
	want := map[string]string{
		igv1.LabelChannel:   msg.Spec.ChannelRef.Name,
		igv1.LabelContact:   msg.Spec.ContactID,
		igv1.LabelDirection: igv1.DirectionLabelOutgoing,
	}
	for k, v := range want {
		// A value a label cannot hold (a channel name longer than 63
		// characters) is left out rather than failing every patch.
		if len(validation.IsValidLabelValue(v)) > 0 || msg.Labels[k] == v {
			continue
		}
		if msg.Labels == nil {
			msg.Labels = map[string]string{}
		}
		msg.Labels[k] = v
		changed = true
	}
	if ch != nil && !ownedBy(msg, ch.UID) {
		msg.OwnerReferences = append(msg.OwnerReferences, metav1.OwnerReference{
			APIVersion: igv1.GroupVersion.String(),
			Kind:       "InstagramChannel",
			Name:       ch.Name,
			UID:        ch.UID,
		})
		changed = true
	}
	if !changed {
		return nil
	}
	// The answer carries the stored object, so the status write that
	// follows is locked on the newest resourceVersion.
	if err := r.Patch(ctx, msg, patch); err != nil {
		return fmt.Errorf("label message: %w", err)
	}
	return nil
}

func ownedBy(o metav1.Object, uid types.UID) bool {
	for _, ref := range o.GetOwnerReferences() {
		if ref.UID == uid {
			return true
		}
	}
	return false
}

// send takes the app's rate-limit turn, persists Sending with this
// process's send lease under an optimistic lock, calls Instagram once, and
// records the outcome. The lock is the guard against sending twice: of two
// reconcilers (two managers, or a retry reading a stale cache) that both saw
// Pending, only one can move the message to Sending, and only that one
// calls Instagram. The lease tells every other manager how long the send
// may still be in flight (resolveInterrupted).
func (r *InstagramMessageReconciler) send(ctx context.Context, msg *igv1.InstagramMessage, ch *igv1.InstagramChannel, target *sendTarget, deadline time.Time) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	opts := r.Options.withDefaults()
	req, bad, err := r.sendRequest(ctx, msg, target)
	if err != nil || bad != nil {
		if bad != nil {
			return r.notSending(ctx, msg, *bad)
		}
		return ctrl.Result{}, err
	}

	// The rate-limit turn is taken before Sending is persisted: a wait
	// after it would eat into the lease, and a shutdown during the wait
	// would leave an ambiguous Sending for a request never made.
	reserved, err := target.api.Reserve(ctx)
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: the message stays Pending for the next leader.
			logger.V(1).Info("stopped while waiting for the rate limit; message stays Pending", "message", msg.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{RequeueAfter: max(instagram.RetryAfterOf(err), time.Second)}, nil
	}

	now := r.now()
	lease := igv1.SendLease{Holder: r.holder(), ExpiresAt: metav1.NewTime(now.Add(opts.leaseDuration()))}
	changed, err := r.patchStatusLocked(ctx, msg, sendingStatus(lease, now))
	if err != nil {
		if apierrors.IsConflict(err) {
			logger.V(1).Info("message changed meanwhile; not sending now", "message", msg.Name)
			return ctrl.Result{RequeueAfter: conflictRequeue}, nil
		}
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("mark message Sending: %w", err))
	}
	if !changed {
		// The copy already says Sending: this process did not win the
		// move to Sending, so it must not call Instagram.
		logger.V(1).Info("message already Sending; not sending again", "message", msg.Name)
		return ctrl.Result{RequeueAfter: conflictRequeue}, nil
	}

	// Detached from the reconcile's context: a shutdown must not turn a send
	// in flight into an ambiguous one. The client's timeout bounds the call.
	result, err := target.api.SendMessage(context.WithoutCancel(reserved), target.token, req)
	r.observeReplyWindow(ctx, msg, err)
	now = r.now()
	if err == nil {
		messagesSentTotal.WithLabelValues(sendResultSent).Inc()
		logger.V(1).Info("message sent", "message", msg.Name, "mid", result.MessageID)
		return r.record(ctx, msg, withMoreMIDs(sentStatus(result.MessageID, now), result.MoreMessageIDs))
	}

	out := classifySend(err, &msg.Spec)
	if out.tokenRefused {
		// Before the message's own record: by the time a watcher sees
		// the message wait, the channel already says why.
		if stopErr := r.stopChannel(context.WithoutCancel(ctx), ch, target.token, err.Error()); stopErr != nil {
			logger.Error(stopErr, "could not stop the channel after Instagram refused its token")
		}
	}
	if out.retry {
		messagesSentTotal.WithLabelValues(sendResultRetried).Inc()
		attempts := msg.Status.Attempts + 1
		next := now.Add(retryDelay(attempts, out.retryAfter, opts.RetryBaseDelay, opts.RetryMaxDelay))
		logger.Info("send not accepted by Instagram; retrying later", "message", msg.Name,
			"attempt", attempts, "nextAttemptAt", next, "error", err.Error())
		res, err := r.record(ctx, msg, retryStatus(out, attempts, next, now))
		if err == nil && res.RequeueAfter > 0 {
			res.RequeueAfter = max(min(res.RequeueAfter, deadline.Sub(now)), time.Second)
		}
		return res, err
	}
	messagesSentTotal.WithLabelValues(sendResultFailed(out.reason)).Inc()
	logger.Info("send failed", "message", msg.Name, "reason", out.reason, "error", err.Error())
	return r.record(ctx, msg, failedStatus(out, now))
}

// record writes the outcome of a send and, for a final one, finishes the
// message. When the write fails for good, the outcome is kept in memory:
// the next reconcile finds the message in Sending and writes it then.
func (r *InstagramMessageReconciler) record(ctx context.Context, msg *igv1.InstagramMessage, apply func(*igv1.InstagramMessage)) (ctrl.Result, error) {
	if err := r.persistOutcome(ctx, msg, apply); err != nil {
		if apierrors.IsNotFound(err) {
			// Deleted while it was being sent: nothing left to record on.
			r.unpersisted.Delete(msg.UID)
			return ctrl.Result{}, nil
		}
		if errors.Is(err, errLeaseLost) {
			// Another manager declared the send interrupted after the
			// lease ran out; its record stands. What this process
			// learnt goes to the log and an Event, for a person.
			r.unpersisted.Delete(msg.UID)
			probe := msg.DeepCopy()
			apply(probe)
			note := fmt.Sprintf("the send's lease ran out before its outcome was stored; Instagram's answer was: phase %s", probe.Status.Phase)
			if probe.Status.MessageID != "" {
				note += ", mid " + probe.Status.MessageID
			}
			if probe.Status.Message != "" {
				note += ": " + probe.Status.Message
			}
			log.FromContext(ctx).Info("send outcome not recorded: lease lost", "message", msg.Name, "phase", probe.Status.Phase, "mid", probe.Status.MessageID)
			r.warn(msg, igv1.ReasonSendLeaseLost, note)
			return ctrl.Result{}, nil
		}
		r.unpersisted.Store(msg.UID, apply)
		return ctrl.Result{}, fmt.Errorf("record send outcome: %w", err)
	}
	r.unpersisted.Delete(msg.UID)
	switch msg.Status.Phase {
	case igv1.PhaseFailed:
		r.warn(msg, msg.Status.Reason, msg.Status.Message)
		return ctrl.Result{}, r.finish(ctx, msg)
	case igv1.PhaseSent, igv1.PhaseRead:
		return ctrl.Result{}, r.finish(ctx, msg)
	}
	if next := msg.Status.NextAttemptAt; next != nil {
		return ctrl.Result{RequeueAfter: max(next.Sub(r.now()), time.Second)}, nil
	}
	return ctrl.Result{}, nil
}

// errLeaseLost: the message no longer carries this process's send lease,
// so the outcome it holds must not overwrite what is stored.
var errLeaseLost = errors.New("send lease held by another manager or released")

// persistOutcome writes what Instagram answered. Unlike writeLocked it must
// win over any other writer (the receiver marking the message Read), as
// long as this process still holds the send lease: the answer is the truth
// about the message. Each write is locked on a resourceVersion so that the
// merge patch is computed against what is stored; on a conflict the message
// is read again without the cache and the outcome applied to that. Once
// the lease is gone (another manager declared the send interrupted after
// it expired) the stored record stands: errLeaseLost.
func (r *InstagramMessageReconciler) persistOutcome(ctx context.Context, msg *igv1.InstagramMessage, apply func(*igv1.InstagramMessage)) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeWriteTimeout)
	defer cancel()
	current := msg.DeepCopy()
	retriable := func(err error) bool {
		return !apierrors.IsNotFound(err) && !errors.Is(err, errLeaseLost) && ctx.Err() == nil
	}
	return retry.OnError(outcomeWriteBackoff, retriable, func() error {
		if !holdsLease(current, r.holder()) {
			return errLeaseLost
		}
		next := current.DeepCopy()
		_, err := r.patchStatusLocked(ctx, next, apply)
		if err == nil {
			next.DeepCopyInto(msg)
			return nil
		}
		if apierrors.IsConflict(err) {
			fresh := &igv1.InstagramMessage{}
			if getErr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(msg), fresh); getErr != nil {
				return getErr
			}
			current = fresh
		}
		return err
	})
}

// patchStatusLocked applies mutate to msg and, when the status changed,
// writes it as a merge patch carrying msg's resourceVersion. API errors are
// returned as they are.
func (r *InstagramMessageReconciler) patchStatusLocked(ctx context.Context, msg *igv1.InstagramMessage, mutate func(*igv1.InstagramMessage)) (changed bool, err error) {
	original := msg.DeepCopy()
	mutate(msg)
	if equality.Semantic.DeepEqual(original.Status, msg.Status) {
		return false, nil
	}
	if err := r.Status().Patch(ctx, msg, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); err != nil {
		return false, err
	}
	return true, nil
}

// sendingStatus is the status persisted before Instagram is called, with
// the lease that tells other managers how long to leave it alone.
func sendingStatus(lease igv1.SendLease, now time.Time) func(*igv1.InstagramMessage) {
	return func(m *igv1.InstagramMessage) {
		s := &m.Status
		s.Phase = igv1.PhaseSending
		s.Reason = ""
		s.Message = "sending to Instagram"
		s.NextAttemptAt = nil
		s.SendLease = &lease
		s.ObservedGeneration = m.Generation
		setMessageCondition(m, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonProgressing, s.Message, now)
		setMessageCondition(m, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonProgressing, s.Message, now)
		meta.RemoveStatusCondition(&s.Conditions, igv1.ConditionStalled)
	}
}

// sentStatus records Instagram's acceptance with the message's mid.
func sentStatus(mid string, now time.Time) func(*igv1.InstagramMessage) {
	return func(m *igv1.InstagramMessage) {
		s := &m.Status
		// The receiver may already have marked it Read; never go back.
		if s.Phase != igv1.PhaseRead {
			s.Phase = igv1.PhaseSent
		}
		s.MessageID = mid
		s.SendLease = nil
		if s.SentAt == nil {
			s.SentAt = &metav1.Time{Time: now}
		}
		s.Reason = ""
		s.Message = ""
		s.Error = nil
		s.NextAttemptAt = nil
		s.ObservedGeneration = m.Generation
		setMessageCondition(m, igv1.ConditionReady, metav1.ConditionTrue, string(s.Phase), "Instagram accepted the message", now)
		meta.RemoveStatusCondition(&s.Conditions, igv1.ConditionReconciling)
		meta.RemoveStatusCondition(&s.Conditions, igv1.ConditionStalled)
	}
}

// retryStatus puts a message that Instagram surely did not accept back to
// Pending until next.
func retryStatus(out sendOutcome, attempts int32, next, now time.Time) func(*igv1.InstagramMessage) {
	return func(m *igv1.InstagramMessage) {
		s := &m.Status
		s.Phase = igv1.PhasePending
		s.SendLease = nil
		s.Attempts = attempts
		s.NextAttemptAt = &metav1.Time{Time: next}
		s.Reason = out.reason
		s.Message = fmt.Sprintf("attempt %d was not accepted by Instagram (%s); next attempt at %s",
			attempts, out.message, next.UTC().Format(time.RFC3339))
		s.Error = out.apiError
		s.ObservedGeneration = m.Generation
		setMessageCondition(m, igv1.ConditionReady, metav1.ConditionFalse, out.reason, s.Message, now)
		setMessageCondition(m, igv1.ConditionReconciling, metav1.ConditionTrue, out.reason, s.Message, now)
		meta.RemoveStatusCondition(&s.Conditions, igv1.ConditionStalled)
	}
}

// failedStatus is a final failure: Stalled, since only a person (or a new
// message) can change anything. An ambiguous outcome never overrides proof
// of delivery: a message the receiver already marked Sent (its echo) or
// Read keeps that phase; only the lease goes.
func failedStatus(out sendOutcome, now time.Time) func(*igv1.InstagramMessage) {
	return func(m *igv1.InstagramMessage) {
		s := &m.Status
		if out.reason == igv1.ReasonDeliveryUnknown && (s.Phase == igv1.PhaseSent || s.Phase == igv1.PhaseRead) {
			s.SendLease = nil
			return
		}
		s.Phase = igv1.PhaseFailed
		s.SendLease = nil
		s.Reason = out.reason
		s.Message = out.message
		s.Error = out.apiError
		s.NextAttemptAt = nil
		s.ObservedGeneration = m.Generation
		setMessageCondition(m, igv1.ConditionReady, metav1.ConditionFalse, out.reason, out.message, now)
		setMessageCondition(m, igv1.ConditionStalled, metav1.ConditionTrue, out.reason, out.message, now)
		meta.RemoveStatusCondition(&s.Conditions, igv1.ConditionReconciling)
	}
}
