package controllers

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/conditions"
)

// A send answered 190 proves the channel's token is refused: every later
// send would fail the same way. The message controller stops the channel
// at once, as the channel controller does when a refresh is answered 190,
// instead of letting each pending message burn a call until the next
// resync notices.

// tokenFingerprint identifies a token in memory without keeping it.
type tokenFingerprint [sha256.Size]byte

func fingerprint(token string) tokenFingerprint { return sha256.Sum256([]byte(token)) }

// tokenRefusedHere reports whether Instagram refused token on a send of
// this process. It covers the moment between the refusal and the cache
// showing the stopped channel, so the next message makes no call.
func (r *InstagramMessageReconciler) tokenRefusedHere(ch *igv1.InstagramChannel, token string) bool {
	v, ok := r.refusedTokens.Load(ch.UID)
	if !ok {
		return false
	}
	if v.(tokenFingerprint) != fingerprint(token) {
		// A new token since: the refusal is history.
		r.refusedTokens.Delete(ch.UID)
		return false
	}
	return true
}

// stopChannel marks ch's token refused: Authorized=False/TokenInvalid at
// the channel's generation (the gate the channel controller keeps closed
// until a new token or a spec change), Ready=False and Stalled=True, and a
// Warning ReauthorizationRequired Event. Nothing happens when the managed
// Secret already holds another token (the channel refreshed or was
// re-authorized while this send used the old one) or the channel is
// already stopped for it. Only the three conditions are written, locked
// on the resourceVersion read, so a concurrent channel reconcile loses
// nothing (and re-applies only its own changes, see patchStatus).
func (r *InstagramMessageReconciler) stopChannel(ctx context.Context, ch *igv1.InstagramChannel, token, cause string) error {
	key := types.NamespacedName{Namespace: ch.Namespace, Name: ch.TokenSecretName()}
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, key, secret); err != nil {
		return fmt.Errorf("get token Secret %s: %w", key.Name, client.IgnoreNotFound(err))
	}
	if string(secret.Data[igv1.TokenSecretKeyAccessToken]) != token {
		log.FromContext(ctx).Info("Instagram refused a token the channel no longer uses; not stopping it")
		return nil
	}
	r.refusedTokens.Store(ch.UID, fingerprint(token))

	msg := "Instagram rejected the token on a send: " + cause
	var stopped *igv1.InstagramChannel
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		fresh := &igv1.InstagramChannel{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(ch), fresh); err != nil {
			return err
		}
		if fresh.UID != ch.UID || !fresh.DeletionTimestamp.IsZero() {
			return nil
		}
		original := fresh.DeepCopy()
		markTokenRefused(fresh, msg, r.now())
		if equality.Semantic.DeepEqual(original.Status, fresh.Status) {
			return nil
		}
		if err := r.Status().Patch(ctx, fresh, client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})); err != nil {
			return err
		}
		stopped = fresh
		return nil
	})
	if err != nil {
		return fmt.Errorf("stop channel %s: %w", ch.Name, client.IgnoreNotFound(err))
	}
	if stopped != nil {
		log.FromContext(ctx).Info("Instagram refused the channel's token on a send; channel stopped until a new login")
		if r.Recorder != nil {
			r.Recorder.Eventf(stopped, nil, corev1.EventTypeWarning, igv1.EventReauthorizationRequired, "Send",
				"%s; log in again or provide a new token", msg)
		}
	}
	return nil
}

// markTokenRefused sets the conditions of a channel whose token Instagram
// refused. Authorized carries the channel's generation: the channel
// controller keeps the channel stopped, with no Instagram call, while it
// holds (tokenGated).
func markTokenRefused(ch *igv1.InstagramChannel, msg string, now time.Time) {
	if c := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionAuthorized); c != nil &&
		c.Status == metav1.ConditionFalse && c.Reason == igv1.ReasonTokenInvalid && c.ObservedGeneration == ch.Generation {
		// Already stopped for a refused token: keep its first account.
		return
	}
	full := msg + "; log in again or provide a new token"
	conds := &ch.Status.Conditions
	conditions.Set(conds, ch.Generation, igv1.ConditionAuthorized, metav1.ConditionFalse, igv1.ReasonTokenInvalid, msg, now)
	conditions.Set(conds, ch.Generation, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonTokenInvalid, full, now)
	conditions.Set(conds, ch.Generation, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonTokenInvalid, full, now)
	conditions.Remove(conds, igv1.ConditionReconciling)
}
