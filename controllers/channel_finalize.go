package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

// CleanupTimeout bounds how long a deleted channel keeps retrying to
// unsubscribe before it lets go: deletion never hangs.
const CleanupTimeout = 5 * time.Minute

// finalize unsubscribes the account's webhooks and removes the finalizer.
// When unsubscribing cannot succeed it records a Warning Event naming the
// account and lets go anyway.
func (r *InstagramChannelReconciler) finalize(ctx context.Context, run *channelRun) (ctrl.Result, error) {
	ch := run.ch
	if !controllerutil.ContainsFinalizer(ch, igv1.ChannelFinalizer) {
		return ctrl.Result{}, nil
	}
	retryAfter, err := r.cleanup(ctx, run)
	if err != nil {
		return ctrl.Result{}, err
	}
	if retryAfter > 0 {
		r.setCondition(run, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonDeleting, "unsubscribing the account's webhooks")
		r.setCondition(run, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonDeleting, "unsubscribing the account's webhooks")
		meta.RemoveStatusCondition(&ch.Status.Conditions, igv1.ConditionStalled)
		return ctrl.Result{RequeueAfter: retryAfter}, nil
	}
	// A login handed over but never consumed lives in the operator's
	// namespace, where no owner reference can tie it to the channel.
	if err := r.deleteLeftoverLogin(ctx, ch); err != nil {
		return ctrl.Result{}, err
	}
	patch := client.MergeFromWithOptions(ch.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(ch, igv1.ChannelFinalizer)
	if err := r.Patch(ctx, ch, patch); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("remove finalizer: %w", err))
	}
	// The object may be gone now: nothing left to patch.
	run.original = ch.DeepCopy()
	r.forgetChannel(ch)
	return ctrl.Result{}, nil
}

// cleanup removes the subscription; a positive duration asks to retry.
func (r *InstagramChannelReconciler) cleanup(ctx context.Context, run *channelRun) (time.Duration, error) {
	ch := run.ch
	logger := log.FromContext(ctx)
	userID := accountUserID(ch)
	if userID == "" || len(ch.Status.SubscribedFields) == 0 {
		return 0, nil
	}
	// A duplicate never subscribed: the subscription is the owner's.
	if c := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady); c != nil && c.Reason == igv1.ReasonDuplicateAccount {
		return 0, nil
	}
	owner, err := r.accountOwner(ctx, ch, userID)
	if err != nil {
		return 0, err
	}
	if owner.UID != ch.UID {
		// Deleted before it noticed it lost a connect race. A
		// subscription of the owner's app is the owner's: left alone. One
		// of another app is this channel's own and goes.
		ownerApp, _, err := lookupAppID(ctx, r.Client, owner)
		if err != nil {
			return 0, err
		}
		ownApp, why, err := lookupAppID(ctx, r.Client, ch)
		if err != nil {
			return 0, err
		}
		if why != "" || ownApp == ownerApp {
			return 0, nil
		}
	}

	skip := func(why string) (time.Duration, error) {
		r.event(ch, corev1.EventTypeWarning, igv1.EventSubscriptionCleanupSkipped, "Unsubscribe",
			"webhook subscription of account %s (userID %s) was not removed: %s; remove the app in the account's settings if needed",
			accountLabel(ch), userID, why)
		logger.Info("subscription cleanup skipped", "account", userID, "why", why)
		return 0, nil
	}
	if ch.Spec.Suspend {
		return skip("the channel is suspended")
	}
	// Deletion bumps the generation, so look at the reason alone.
	if c := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionAuthorized); c != nil && c.Status == metav1.ConditionFalse &&
		(c.Reason == igv1.ReasonTokenInvalid || c.Reason == igv1.ReasonTokenExpired) {
		return skip("the token is no longer valid: " + c.Message)
	}
	app, h, err := r.resolveApp(ctx, ch)
	if err != nil {
		return 0, err
	}
	if h != nil {
		return skip(h.message)
	}
	run.app = app
	run.api = r.Instagram.ForApp(app.appID)
	secret, h, err := r.readTokenSecret(ctx, run)
	if err != nil {
		return 0, err
	}
	if h != nil || secret == nil || len(secret.Data[igv1.TokenSecretKeyAccessToken]) == 0 {
		return skip("the token Secret is gone")
	}
	if exp := timeOf(tokenStatus(ch).ExpiresAt); !exp.IsZero() && !run.now.Before(exp) {
		return skip("the token expired")
	}

	err = run.api.Unsubscribe(ctx, string(secret.Data[igv1.TokenSecretKeyAccessToken]), userID)
	if err == nil {
		r.event(ch, corev1.EventTypeNormal, igv1.EventUnsubscribed, "Unsubscribe", "account %s unsubscribed", accountLabel(ch))
		logger.Info("webhooks unsubscribed", "account", userID)
		return 0, nil
	}
	switch instagram.ClassOf(err) {
	case instagram.ClassTransient, instagram.ClassRateLimited, instagram.ClassUnknown:
		deadline := ch.DeletionTimestamp.Add(CleanupTimeout)
		if !run.now.Before(deadline) {
			return skip(fmt.Sprintf("unsubscribing kept failing for %s: %v", CleanupTimeout, err))
		}
		wait := max(instagram.RetryAfterOf(err), BackoffSince(ch.DeletionTimestamp.Time, run.now))
		logger.Info("unsubscribe failed, retrying", "error", err.Error(), "retryAfter", wait)
		return min(wait, deadline.Sub(run.now)+time.Second), nil
	}
	return skip(err.Error())
}
