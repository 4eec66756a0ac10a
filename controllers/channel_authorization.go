package controllers

import (
	"context"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/oauthstate"
)

// AuthorizationRequest is what an Authorizer needs to start a Business
// Login for a channel. It carries no secret: SignState signs with the app
// secret, which stays with the controller.
type AuthorizationRequest struct {
	// AppID and AppRedirectURL come from the channel's app (the redirect URL
	// as the app publishes it; spec.redirectURL overrides it).
	AppID          string
	AppRedirectURL string
	// API builds the authorize URL (no HTTP call).
	API instagram.API
	// SignState signs an OAuth state with the app's secret, so the receiver
	// can verify it with the same app's credentials.
	SignState func(oauthstate.State) (string, error)
}

// Authorizer lets a person connect a channel that has no usable token
// (none yet, rejected, expired, or lacking requested scopes). It may set
// status.authorizationURL and status.authorization on ch and returns a
// short sentence for the Ready message ("open status.authorizationURL to
// log in"). The login's outcome comes back through the login Secret
// (LoginSecretName): the OAuth callback writes the short-lived token there,
// labelled for the channel, and the controller exchanges it, stores the
// long-lived token and deletes the login Secret.
//
// An Authorizer that publishes a URL together with
// status.authorization.issuedAt gets the channel reconciled again
// AuthorizationRenewAfter later, to replace the URL before its state
// expires.
type Authorizer interface {
	Authorize(ctx context.Context, ch *igv1.InstagramChannel, req AuthorizationRequest) (hint string, err error)
}

// AuthorizationRenewAfter is how long after status.authorization.issuedAt
// the published authorization URL is replaced: a minute before its state
// expires, so the URL in status always works for a person who opens it.
const AuthorizationRenewAfter = oauthstate.TTL - time.Minute

// authorizationStep asks the Authorizer, if any, to publish how to log in.
// It returns the hint for the Ready message and when the published URL must
// be renewed (zero: never). A failure to publish never hides the reason the
// channel needs a login.
func (r *InstagramChannelReconciler) authorizationStep(ctx context.Context, run *channelRun) (string, time.Time) {
	if r.Authorizer == nil || run.app == nil {
		return "", time.Time{}
	}
	appSecret := []byte(run.app.appSecret)
	hint, err := r.Authorizer.Authorize(ctx, run.ch, AuthorizationRequest{
		AppID:          run.app.appID,
		AppRedirectURL: run.app.redirectURL,
		API:            run.api,
		SignState:      func(s oauthstate.State) (string, error) { return oauthstate.Sign(appSecret, s) },
	})
	if err != nil {
		log.FromContext(ctx).Error(err, "prepare authorization")
		return "", time.Time{}
	}
	return hint, authorizationRenewAt(run.ch)
}

// authorizationRenewAt is when the published authorization URL expires for
// practical purposes; zero when none is published.
func authorizationRenewAt(ch *igv1.InstagramChannel) time.Time {
	a := ch.Status.Authorization
	if ch.Status.AuthorizationURL == "" || a == nil || a.IssuedAt == nil {
		return time.Time{}
	}
	return a.IssuedAt.Add(AuthorizationRenewAfter)
}

// checkLoginNonce tells whether a login Secret belongs to the login the
// channel currently offers. The receiver checks the nonce too, but from a
// cache: this check, on the stored status, is the one that makes a state
// single-use. A login Secret without the annotation was handed in by
// someone allowed to create Secrets in the namespace, and is accepted.
func checkLoginNonce(run *channelRun, s *corev1.Secret) bool {
	nonce, ok := s.Annotations[igv1.AnnotationNonce]
	if !ok {
		return true
	}
	a := run.original.Status.Authorization
	return a != nil && a.Nonce != "" && subtle.ConstantTimeCompare([]byte(a.Nonce), []byte(nonce)) == 1
}

// consumeLoginDenial records a login the person declined: the login Secret
// goes, the nonce is rotated so the declined state can never complete, and
// a fresh URL is published by the Authorizer later in this reconcile.
func (r *InstagramChannelReconciler) consumeLoginDenial(ctx context.Context, run *channelRun, src tokenSource) error {
	if err := r.deleteLoginSecret(ctx, src.secret); err != nil {
		return err
	}
	nonce, err := oauthstate.NewNonce()
	if err != nil {
		return err
	}
	desc := src.denial
	a := &igv1.AuthorizationStatus{Nonce: nonce, Message: "the Instagram login was declined: " + desc}
	setTime(&a.DeniedAt, run.now)
	run.ch.Status.Authorization = a
	run.ch.Status.AuthorizationURL = ""
	r.event(run.ch, corev1.EventTypeWarning, igv1.EventAuthorizationDenied, "Authorize",
		"the Instagram login was declined (%s); a new login link is in status.authorizationURL", desc)
	log.FromContext(ctx).Info("Instagram login declined", "description", desc)
	return nil
}

// deniedDecision turns "awaiting authorization" into "authorization
// denied" while the last login attempt was declined, so the channel says
// what happened instead of just waiting.
func deniedDecision(ch *igv1.InstagramChannel, d TokenDecision) TokenDecision {
	a := ch.Status.Authorization
	if d.Reason != igv1.ReasonAwaitingAuthorization || a == nil || a.DeniedAt == nil {
		return d
	}
	d.Reason = igv1.ReasonAuthorizationDenied
	d.Message = fmt.Sprintf("%s at %s; log in again to connect the channel", a.Message, formatTime(a.DeniedAt.Time))
	return d
}

// reconcileScopes halts a channel whose token lacks scopes spec.scopes
// asks for: only a new login grants them. A token whose scopes are unknown
// (brought by the user) is taken as sufficient. Once the token is usable
// and sufficient, no login is offered any more.
func (r *InstagramChannelReconciler) reconcileScopes(ctx context.Context, run *channelRun) (*halt, error) {
	ch := run.ch
	missing := missingScopes(ch)
	if len(missing) == 0 {
		ch.Status.AuthorizationURL = ""
		ch.Status.Authorization = nil
		return nil, nil
	}
	msg := fmt.Sprintf("the token was granted without %s, which spec.scopes requests; log in again to grant it", strings.Join(missing, ", "))
	hint, renewAt := r.authorizationStep(ctx, run)
	if hint != "" {
		msg += "; " + hint
	}
	// The token still works: its refresh stays scheduled.
	retryAt := renewAt
	for _, t := range run.wakeAt {
		if retryAt.IsZero() || t.Before(retryAt) {
			retryAt = t
		}
	}
	return &halt{reason: igv1.ReasonScopesChanged, message: msg, stalled: true, retryAt: retryAt}, nil
}

// requestedScopes is spec.scopes, or the API default when empty.
func requestedScopes(ch *igv1.InstagramChannel) []string {
	if len(ch.Spec.Scopes) == 0 {
		return []string{"instagram_business_basic", "instagram_business_manage_messages"}
	}
	out := make([]string, 0, len(ch.Spec.Scopes))
	for _, s := range ch.Spec.Scopes {
		out = append(out, string(s))
	}
	return out
}

// missingScopes are the requested scopes the current token was not granted;
// none when the granted scopes are unknown.
func missingScopes(ch *igv1.InstagramChannel) []string {
	if ch.Status.Token == nil || len(ch.Status.Token.Scopes) == 0 {
		return nil
	}
	var missing []string
	for _, s := range requestedScopes(ch) {
		if !slices.Contains(ch.Status.Token.Scopes, s) {
			missing = append(missing, s)
		}
	}
	return missing
}

// parseScopes reads the comma-separated scopes of a login Secret.
func parseScopes(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}
