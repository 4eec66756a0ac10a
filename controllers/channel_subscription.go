package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/sink"
)

// defaultSubscribedFields mirrors the CRD default, for objects that predate
// it.
var defaultSubscribedFields = []string{"messages", "messaging_seen", "message_reactions", "messaging_postbacks"}

// desiredFields is spec.subscribedFields, sorted and without duplicates.
func desiredFields(ch *igv1.InstagramChannel) []string {
	fields := make([]string, 0, len(ch.Spec.SubscribedFields))
	for _, f := range ch.Spec.SubscribedFields {
		fields = append(fields, string(f))
	}
	if len(fields) == 0 {
		fields = slices.Clone(defaultSubscribedFields)
	}
	return normalizeFields(fields)
}

func normalizeFields(fields []string) []string {
	out := slices.Clone(fields)
	slices.Sort(out)
	return slices.Compact(out)
}

// reconcileSubscription keeps the account's webhooks subscribed to
// spec.subscribedFields. It subscribes when the fields or the token changed,
// and otherwise compares with Instagram's view at most every resync interval
// (or when the requestedAt annotation asks), repairing drift.
func (r *InstagramChannelReconciler) reconcileSubscription(ctx context.Context, run *channelRun) (*halt, error) {
	ch := run.ch
	logger := log.FromContext(ctx)
	desired := desiredFields(ch)
	userID := accountUserID(ch)
	cond := meta.FindStatusCondition(run.original.Status.Conditions, igv1.ConditionWebhookSubscribed)

	subscribe := run.tokenChanged || cond == nil || cond.Status != metav1.ConditionTrue ||
		!slices.Equal(ch.Status.SubscribedFields, desired)
	resync := ResyncAfter(r.opts().ResyncInterval, string(ch.UID))
	if !subscribe {
		checked := r.lastChecked(ch)
		if checked.IsZero() {
			// Not checked by this process yet (it just started, or took
			// over leadership): spread the first checks over one interval
			// instead of checking every channel at once.
			checked = run.now.Add(-time.Duration(seedFraction(string(ch.UID)+"/first-check") * float64(resync)))
			r.checkedAt.Store(ch.UID, checked)
		}
		if !run.forceCheck && run.now.Before(checked.Add(resync)) {
			run.wake(checked.Add(resync))
			return nil, nil
		}
		got, err := run.api.Subscriptions(ctx, run.token, userID)
		if err != nil {
			return r.subscriptionCheckFailed(ctx, run, err), nil
		}
		r.checkedAt.Store(ch.UID, run.now)
		r.checkFailures.Delete(ch.UID)
		if slices.Equal(normalizeFields(got), desired) {
			run.wake(run.now.Add(resync))
			return nil, nil
		}
		logger.Info("webhook subscription drifted, subscribing again", "account", userID,
			"want", strings.Join(desired, ","), "have", strings.Join(normalizeFields(got), ","))
	}

	// The receiver routes deliveries by status.account.userID. Store it
	// before Meta starts delivering, or the first events would find no
	// channel. Only on a new account, so at most one extra write.
	if accountUserID(run.original) != userID {
		if err := r.patchStatus(ctx, run.original, ch); err != nil {
			return nil, err
		}
		run.original = ch.DeepCopy()
		// Two channels may connect one account at once, each before the
		// other's status is in the cache. Both have stored the account
		// now; whichever looks second sees the other here and does not
		// subscribe. One that looked first and subscribed anyway lets go
		// once it sees the owner (duplicate).
		owner, err := r.liveAccountOwner(ctx, ch, userID)
		if err != nil {
			return nil, err
		}
		if owner.UID != ch.UID {
			return r.duplicate(ctx, run, owner)
		}
	}
	if err := run.api.Subscribe(ctx, run.token, userID, desired); err != nil {
		return r.subscriptionFailed(ctx, run, "subscribe the account's webhooks", err), nil
	}
	ch.Status.SubscribedFields = desired
	setTime(&ch.Status.SubscribedAt, run.now)
	r.checkedAt.Store(ch.UID, run.now)
	msg := fmt.Sprintf("account %s subscribed to %s", accountLabel(ch), strings.Join(desired, ", "))
	r.setCondition(run, igv1.ConditionWebhookSubscribed, metav1.ConditionTrue, igv1.ReasonSubscribed, msg)
	r.event(ch, corev1.EventTypeNormal, igv1.EventSubscribed, "Subscribe", "%s", msg)
	logger.Info("webhooks subscribed", "account", userID, "fields", strings.Join(desired, ","))
	run.wake(run.now.Add(resync))
	return nil, nil
}

// lastChecked is when this process last compared the channel's
// subscription with Instagram, or when the channel last subscribed.
func (r *InstagramChannelReconciler) lastChecked(ch *igv1.InstagramChannel) time.Time {
	if t, ok := r.checkedAt.Load(ch.UID); ok {
		return t.(time.Time)
	}
	return time.Time{}
}

// subscriptionCheckFailed handles a failed read of the subscription. The
// check only looks for drift: a temporary failure or a rate limit says
// nothing about the subscription, so the channel stays Ready and the check
// is tried again later. A rejected token still counts.
func (r *InstagramChannelReconciler) subscriptionCheckFailed(ctx context.Context, run *channelRun, err error) *halt {
	switch instagram.ClassOf(err) {
	case instagram.ClassTokenInvalid, instagram.ClassPermissionDenied:
		return r.subscriptionFailed(ctx, run, "check the webhook subscription", err)
	}
	// Consecutive failures stretch the wait (30s up to 30m), kept in
	// memory like the check time itself.
	failures := int32(1)
	if n, ok := r.checkFailures.Load(run.ch.UID); ok {
		failures = n.(int32) + 1
	}
	r.checkFailures.Store(run.ch.UID, failures)
	retry := max(instagram.RetryAfterOf(err), Backoff(failures))
	log.FromContext(ctx).Info("webhook subscription check failed; keeping the channel as it is", "account", accountUserID(run.ch),
		"failures", failures, "retryIn", retry.String(), "error", err.Error())
	// The next check is due after the backoff, also for a reconcile that
	// some watch event triggers earlier.
	resync := ResyncAfter(r.opts().ResyncInterval, string(run.ch.UID))
	r.checkedAt.Store(run.ch.UID, run.now.Add(retry-resync))
	run.wake(run.now.Add(retry))
	return nil
}

// forgetChannel drops what this process remembers of a channel.
func (r *InstagramChannelReconciler) forgetChannel(ch *igv1.InstagramChannel) {
	r.checkedAt.Delete(ch.UID)
	sink.Forget(sink.Channel{Namespace: ch.Namespace, Name: ch.Name})
	r.checkFailures.Delete(ch.UID)
	r.profileCheckedAt.Delete(ch.UID)
}

func (r *InstagramChannelReconciler) subscriptionFailed(ctx context.Context, run *channelRun, what string, err error) *halt {
	h := r.instagramFailure(ctx, run, what, err, igv1.ReasonSubscribeFailed)
	if h.reason != igv1.ReasonTokenInvalid {
		r.setCondition(run, igv1.ConditionWebhookSubscribed, metav1.ConditionFalse, igv1.ReasonSubscribeFailed, h.message)
	}
	return h
}
