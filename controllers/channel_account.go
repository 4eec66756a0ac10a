package controllers

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/routing"
)

// reconcileAccount discovers the account behind the token (once per token)
// and makes sure no older channel already serves it.
func (r *InstagramChannelReconciler) reconcileAccount(ctx context.Context, run *channelRun) (*halt, error) {
	ch := run.ch
	if !run.accountFresh && (run.tokenChanged || accountUserID(ch) == "") {
		acc, err := run.api.Me(ctx, run.token)
		if err != nil {
			return r.instagramFailure(ctx, run, "look up the account", err, igv1.ReasonInstagramError), nil
		}
		setAccount(ch, acc, run.now)
		run.accountFresh = true
	}
	// The managed Secret carries the userID workloads route by.
	if h, err := r.ensureTokenSecret(ctx, run); h != nil || err != nil {
		return h, err
	}
	return r.checkOwnership(ctx, run)
}

// setAccount stores the account behind the token. connectedAt, which
// decides who owns an account (internal/routing), is kept while the account
// stays the same; a channel that recorded the account before connectedAt
// existed gets its creation time, the order it had; a new account is
// connected now.
func setAccount(ch *igv1.InstagramChannel, acc *instagram.Account, now time.Time) {
	prev := ch.Status.Account
	var connected *metav1.Time
	switch {
	case prev != nil && prev.UserID == acc.UserID && prev.ConnectedAt != nil:
		connected = prev.ConnectedAt
	case prev != nil && prev.UserID == acc.UserID:
		connected = ch.CreationTimestamp.DeepCopy()
	default:
		connected = &metav1.Time{Time: now.UTC().Truncate(time.Second)}
	}
	ch.Status.Account = &igv1.AccountStatus{
		UserID:            acc.UserID,
		ID:                acc.ID,
		Username:          acc.Username,
		Name:              acc.Name,
		AccountType:       acc.AccountType,
		ProfilePictureURL: acc.ProfilePictureURL,
		ConnectedAt:       connected,
	}
}

// checkOwnership halts a channel whose account another channel serves: one
// account, one channel, cluster-wide; the first admitted channel to connect
// it wins (internal/routing).
func (r *InstagramChannelReconciler) checkOwnership(ctx context.Context, run *channelRun) (*halt, error) {
	userID := accountUserID(run.ch)
	if userID == "" {
		return nil, nil
	}
	owner, err := r.accountOwner(ctx, run.ch, userID)
	if err != nil {
		return nil, err
	}
	if owner.UID == run.ch.UID {
		return nil, nil
	}
	return r.duplicate(ctx, run, owner)
}

// duplicate halts a channel whose account owner serves. A channel that
// subscribed the account before it saw the owner (the two connected at
// the same time) lets go of that subscription: it removes it when it was
// made for another Meta app than the owner's, and only forgets it when the
// app is the same (the subscription is then the owner's too). Either way
// it keeps none, so its finalizer has nothing to remove.
func (r *InstagramChannelReconciler) duplicate(ctx context.Context, run *channelRun, owner *igv1.InstagramChannel) (*halt, error) {
	ch := run.ch
	userID := accountUserID(ch)
	msg := duplicateAccountMessage(ch, owner, userID)
	if len(ch.Status.SubscribedFields) > 0 {
		ownerApp, _, err := lookupAppID(ctx, r.Client, owner)
		if err != nil {
			return nil, err
		}
		if run.app != nil && ownerApp != run.app.appID && run.api != nil && run.token != "" {
			if err := run.api.Unsubscribe(ctx, run.token, userID); err != nil && instagram.ClassOf(err) != instagram.ClassTokenInvalid {
				retry := run.now.Add(BackoffSince(r.failingSince(run), run.now))
				log.FromContext(ctx).Info("could not remove the subscription of a duplicate channel; retrying", "account", userID, "error", err.Error())
				return &halt{reason: igv1.ReasonDuplicateAccount, message: msg + "; removing the subscription it made: " + err.Error(), retryAt: retry}, nil
			}
			log.FromContext(ctx).Info("duplicate channel removed the subscription it made", "account", userID)
		}
		ch.Status.SubscribedFields = nil
	}
	r.setCondition(run, igv1.ConditionWebhookSubscribed, metav1.ConditionFalse, igv1.ReasonDuplicateAccount, msg)
	return &halt{reason: igv1.ReasonDuplicateAccount, message: msg, stalled: true}, nil
}

// duplicateAccountMessage says which channel serves the account only when
// it is in the same namespace: whoever reads this channel may not know of
// another tenant's namespace and channel, and must not learn them here.
func duplicateAccountMessage(ch, owner *igv1.InstagramChannel, userID string) string {
	if owner.Namespace == ch.Namespace {
		return fmt.Sprintf("account %s (userID %s) is already served by channel %s of this namespace; only one channel of an account is active",
			accountLabel(ch), userID, owner.Name)
	}
	return fmt.Sprintf("account %s (userID %s) is already served by a channel in another namespace; only one channel of an account is active (ask your platform team)",
		accountLabel(ch), userID)
}

// liveAccountOwner is accountOwner read from the API server rather than the
// cache: the check made right before a channel subscribes a new account,
// when another channel may have connected it a moment ago.
func (r *InstagramChannelReconciler) liveAccountOwner(ctx context.Context, ch *igv1.InstagramChannel, userID string) (*igv1.InstagramChannel, error) {
	var list igv1.InstagramChannelList
	if err := r.APIReader.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	owner := ch
	for i := range list.Items {
		other := &list.Items[i]
		if other.UID != ch.UID && accountUserID(other) == userID && routing.Admitted(other) && olderChannel(other, owner) {
			owner = other
		}
	}
	return owner, nil
}

// accountOwner is the oldest channel (creation time, then namespace/name)
// whose account is userID, ch included.
func (r *InstagramChannelReconciler) accountOwner(ctx context.Context, ch *igv1.InstagramChannel, userID string) (*igv1.InstagramChannel, error) {
	var list igv1.InstagramChannelList
	if err := r.List(ctx, &list, client.MatchingFields{ChannelUserIDIndex: userID}); err != nil {
		return nil, fmt.Errorf("list channels of account: %w", err)
	}
	owner := ch
	for i := range list.Items {
		other := &list.Items[i]
		if other.UID != ch.UID && routing.Admitted(other) && olderChannel(other, owner) {
			owner = other
		}
	}
	return owner, nil
}

// olderChannel is the receiver's routing order (internal/routing), so the
// channel the manager lets send is the one the receiver writes events to.
func olderChannel(a, b *igv1.InstagramChannel) bool {
	return routing.Older(a, b)
}

// accountLabel names the account for people: @username when known.
func accountLabel(ch *igv1.InstagramChannel) string {
	if ch.Status.Account == nil {
		return "(unknown account)"
	}
	if ch.Status.Account.Username != "" {
		return "@" + ch.Status.Account.Username
	}
	return ch.Status.Account.UserID
}

// instagramFailure turns a classified Instagram error of a step into a halt.
func (r *InstagramChannelReconciler) instagramFailure(ctx context.Context, run *channelRun, what string, err error, reason string) *halt {
	msg := fmt.Sprintf("%s: %v", what, err)
	switch instagram.ClassOf(err) {
	case instagram.ClassTokenInvalid:
		return r.markTokenInvalid(ctx, run, err)
	case instagram.ClassPermissionDenied:
		return &halt{reason: igv1.ReasonPermissionDenied, message: msg, stalled: true}
	case instagram.ClassRateLimited:
		return &halt{reason: igv1.ReasonRateLimited, message: msg, retryAt: run.now.Add(max(instagram.RetryAfterOf(err), backoffMin))}
	case instagram.ClassBadRequest:
		return &halt{reason: reason, message: msg, stalled: true}
	}
	return &halt{reason: reason, message: msg, retryAt: run.now.Add(BackoffSince(r.failingSince(run), run.now))}
}

// failingSince is when the channel started retrying, from its Reconciling
// condition; it stretches the backoff of steps that keep no counter.
func (r *InstagramChannelReconciler) failingSince(run *channelRun) time.Time {
	for _, c := range run.original.Status.Conditions {
		if c.Type == igv1.ConditionReconciling && c.Status == metav1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return run.now
}
