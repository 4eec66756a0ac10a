package controllers

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// The managed token Secret: read it, refuse one this channel does not
// control (SecretConflict), and write it only when its content changes.

// secretConflictRetry is how often a SecretConflict looks again.
const secretConflictRetry = 5 * time.Minute

// readTokenSecret reads the managed Secret. A Secret of that name that this
// channel does not control is a conflict: never overwritten.
func (r *InstagramChannelReconciler) readTokenSecret(ctx context.Context, run *channelRun) (*corev1.Secret, *halt, error) {
	ch := run.ch
	key := types.NamespacedName{Namespace: ch.Namespace, Name: ch.TokenSecretName()}
	secret := &corev1.Secret{}
	err := r.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) {
		// The cache only holds labelled Secrets; someone else's Secret of
		// that name is only visible to the API server.
		err = r.APIReader.Get(ctx, key, secret)
	}
	if apierrors.IsNotFound(err) {
		return r.readRenamedTokenSecret(ctx, run)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("get token Secret: %w", err)
	}
	if !metav1.IsControlledBy(secret, ch) {
		return nil, r.secretConflict(run, key.Name), nil
	}
	return secret, nil, nil
}

// readRenamedTokenSecret finds the token under the previous
// spec.tokenSecretName, so renaming the Secret moves the token.
func (r *InstagramChannelReconciler) readRenamedTokenSecret(ctx context.Context, run *channelRun) (*corev1.Secret, *halt, error) {
	st := tokenStatus(run.ch)
	old := run.original.Status.Token
	if old == nil || old.SecretName == "" || old.SecretName == st.SecretName {
		return nil, nil, nil
	}
	secret := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: run.ch.Namespace, Name: old.SecretName}, secret); err != nil {
		return nil, nil, client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(secret, run.ch) {
		return nil, nil, nil
	}
	return secret, nil, nil
}

func (r *InstagramChannelReconciler) secretConflict(run *channelRun, name string) *halt {
	msg := fmt.Sprintf("Secret %s/%s exists and is not managed by this channel; delete it or set spec.tokenSecretName", run.ch.Namespace, name)
	r.eventOnTransition(run, corev1.EventTypeWarning, igv1.EventSecretConflict, "WriteToken", igv1.ReasonSecretConflict, "%s", msg)
	// The conflicting Secret is not in the cache, so its removal makes no
	// event: look again now and then.
	return &halt{reason: igv1.ReasonSecretConflict, message: msg, stalled: true, retryAt: run.now.Add(secretConflictRetry)}
}

// ensureTokenSecret makes the managed Secret hold the current token, the
// account's userID and the expiry. It writes only when something differs.
func (r *InstagramChannelReconciler) ensureTokenSecret(ctx context.Context, run *channelRun) (*halt, error) {
	ch := run.ch
	st := tokenStatus(ch)
	if run.token == "" {
		return nil, nil
	}
	data := map[string][]byte{
		igv1.TokenSecretKeyAccessToken: []byte(run.token),
		igv1.TokenSecretKeyUserID:      []byte(accountUserID(ch)),
		igv1.TokenSecretKeyExpiresAt:   []byte(formatTime(timeOf(st.ExpiresAt))),
	}
	if st.ExpiresAt == nil {
		delete(data, igv1.TokenSecretKeyExpiresAt)
	}
	name := ch.TokenSecretName()
	existing := run.tokenSecret
	if existing != nil && existing.Name == name {
		if maps.EqualFunc(existing.Data, data, func(a, b []byte) bool { return string(a) == string(b) }) &&
			existing.Labels[igv1.LabelChannel] == ch.Name && existing.Labels[igv1.LabelWatch] == "true" {
			return nil, nil
		}
		// Optimistic lock: never write over a token stored after our read.
		patch := client.MergeFromWithOptions(existing.DeepCopy(), client.MergeFromWithOptimisticLock{})
		existing.Data = data
		setTokenSecretLabels(existing, ch.Name)
		if err := r.Patch(ctx, existing, patch); err != nil {
			return nil, fmt.Errorf("update token Secret: %w", err)
		}
		return nil, nil
	}

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ch.Namespace, Name: name},
		Type:       igv1.TokenSecretType,
		Data:       data,
	}
	setTokenSecretLabels(secret, ch.Name)
	if err := controllerutil.SetControllerReference(ch, secret, r.Scheme); err != nil {
		return nil, fmt.Errorf("own token Secret: %w", err)
	}
	if err := r.Create(ctx, secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return r.secretConflict(run, name), nil
		}
		return nil, fmt.Errorf("create token Secret: %w", err)
	}
	if existing != nil {
		// Renamed: the token moved, the old Secret goes.
		if err := r.Delete(ctx, existing, client.Preconditions{UID: &existing.UID}); client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("delete previous token Secret: %w", err)
		}
	}
	run.tokenSecret = secret
	return nil, nil
}

func setTokenSecretLabels(s *corev1.Secret, channel string) {
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels[igv1.LabelChannel] = channel
	s.Labels[igv1.LabelWatch] = "true"
}
