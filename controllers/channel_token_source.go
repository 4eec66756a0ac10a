package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// Token sources: where a token handed in from outside comes from (the
// user's initial token Secret, the login Secret of a completed Business
// Login) and how it is read. Which source wins is decided in
// token_policy.go (DecideLogin, DecideTokenSource).

// Where the token comes from. The managed Secret is the only place the
// token is kept: the controller holds it in memory for one reconcile only.
// When the managed Secret is deleted the controller adopts the initial token
// Secret again if there is one; otherwise the channel awaits authorization.
const (
	sourceInitial = "initial"
	sourceLogin   = "login"
)

// initialSecretRetry is how often a missing initial token Secret is looked
// for: a Secret without the watch label is invisible to the cache, so its
// creation produces no event.
const initialSecretRetry = time.Minute

// tokenSource is a token handed in from outside: the user's initial token
// Secret or the login Secret of a completed Business Login.
type tokenSource struct {
	kind  string
	token string
	// expiresAt is the optional expiresAt key of the initial Secret.
	expiresAt time.Time
	// hash identifies an initial Secret's content without the token.
	hash string
	// secret is the login Secret, deleted once consumed.
	secret *corev1.Secret
	// scopes granted with a login's token (unknown for an initial token).
	scopes []string
	// denial is set when the person declined the login: Instagram's
	// description of it. Such a login Secret carries no token.
	denial string
}

// readInitialToken reads spec.initialTokenSecretRef. A missing Secret only
// matters while the channel has no token of its own.
func (r *InstagramChannelReconciler) readInitialToken(ctx context.Context, run *channelRun) (*tokenSource, *halt, error) {
	ch := run.ch
	ref := ch.Spec.InitialTokenSecretRef
	keyName := ref.Key
	if keyName == "" {
		keyName = igv1.TokenSecretKeyAccessToken
	}
	key := types.NamespacedName{Namespace: ch.Namespace, Name: ref.Name}
	secret, err := GetWatchedSecret(ctx, r.Client, r.APIReader, key)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, nil, fmt.Errorf("get initial token Secret: %w", err)
	}
	var token string
	if err == nil {
		token = string(secret.Data[keyName])
	}
	if token == "" {
		if run.token != "" {
			return nil, nil, nil
		}
		msg := fmt.Sprintf("initial token Secret %s not found", key)
		if err == nil {
			msg = fmt.Sprintf("initial token Secret %s has no key %s", key, keyName)
		}
		return nil, &halt{reason: igv1.ReasonTokenSecretNotFound, message: msg, retryAt: run.now.Add(initialSecretRetry)}, nil
	}
	src := &tokenSource{kind: sourceInitial, token: token}
	rawExpiry := string(secret.Data[igv1.TokenSecretKeyExpiresAt])
	if rawExpiry != "" {
		t, perr := time.Parse(time.RFC3339, rawExpiry)
		if perr != nil {
			return nil, &halt{
				reason:  igv1.ReasonTokenSecretNotFound,
				message: fmt.Sprintf("initial token Secret %s: key %s is not an RFC 3339 time", key, igv1.TokenSecretKeyExpiresAt),
				stalled: true,
			}, nil
		}
		src.expiresAt = t.UTC().Truncate(time.Second)
	}
	src.hash = r.initialSecretHash(ch, keyName, token, rawExpiry)
	return src, nil, nil
}

// readLoginSecret returns the token of a completed Business Login, or the
// denial of a declined one, if any. The receiver writes it into the
// operator's namespace (it has no access to the channel's), under
// names.LoginSecretName; only a Secret of the login type whose annotations
// name this very channel counts.
func (r *InstagramChannelReconciler) readLoginSecret(ctx context.Context, ch *igv1.InstagramChannel) (*tokenSource, error) {
	secret := &corev1.Secret{}
	err := r.Get(ctx, r.loginSecretKey(ch), secret)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get login Secret: %w", err)
	}
	if !loginSecretFor(secret, ch) {
		log.FromContext(ctx).Info("ignoring login Secret that is not for this channel", "secret", secret.Name)
		return nil, nil
	}
	token := string(secret.Data[igv1.TokenSecretKeyAccessToken])
	denial := string(secret.Data[igv1.LoginSecretKeyError])
	if (token == "" && denial == "") || !secret.DeletionTimestamp.IsZero() {
		log.FromContext(ctx).Info("ignoring login Secret without token", "secret", secret.Name)
		return nil, nil
	}
	if token == "" {
		if d := string(secret.Data[igv1.LoginSecretKeyErrorDescription]); d != "" {
			denial += ": " + d
		}
		return &tokenSource{kind: sourceLogin, secret: secret, denial: denial}, nil
	}
	return &tokenSource{
		kind: sourceLogin, token: token, secret: secret,
		scopes: parseScopes(string(secret.Data[igv1.LoginSecretKeyScopes])),
	}, nil
}

func (r *InstagramChannelReconciler) deleteLoginSecret(ctx context.Context, s *corev1.Secret) error {
	if err := r.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete login Secret: %w", err)
	}
	return nil
}
