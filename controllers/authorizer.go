package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/oauthstate"
)

// BusinessLogin is the Authorizer of Instagram Business Login. It publishes
// status.authorizationURL: Instagram's authorize page for the channel's
// app, with the channel's redirect URI, the scopes of spec.scopes and a
// signed state naming the channel and carrying the single-use nonce of
// status.authorization. The webhook receiver's callback verifies that state
// and hands the login to the channel through the login Secret.
//
// The URL is written only when it changes: a new nonce, a changed redirect
// URI, scopes or app, or a state that is about to expire
// (AuthorizationRenewAfter after status.authorization.issuedAt). Between
// those, reconciles rebuild the same URL from the published state and write
// nothing.
type BusinessLogin struct {
	// Clock stamps status.authorization.issuedAt and the state's expiry;
	// the real clock when nil.
	Clock clock.PassiveClock
}

var _ Authorizer = (*BusinessLogin)(nil)

// Authorize publishes the authorization URL of ch.
func (b *BusinessLogin) Authorize(_ context.Context, ch *igv1.InstagramChannel, req AuthorizationRequest) (string, error) {
	redirectURI := ch.Spec.RedirectURL
	if redirectURI == "" {
		redirectURI = req.AppRedirectURL
	}
	if redirectURI == "" {
		// A URL without a redirect URI would only show Instagram's error.
		ch.Status.AuthorizationURL = ""
		return "no login link: set spec.redirectURL, or --public-url on the manager so the app publishes status.redirectURL", nil
	}
	if req.API == nil || req.SignState == nil {
		return "", errors.New("authorization request lacks the Instagram API or the state signer")
	}
	now := b.now()
	a := ch.Status.Authorization
	if a == nil {
		a = &igv1.AuthorizationStatus{}
	}
	if a.Nonce == "" {
		nonce, err := oauthstate.NewNonce()
		if err != nil {
			return "", err
		}
		a.Nonce = nonce
		a.IssuedAt = nil
	}
	params := instagram.AuthorizeParams{
		AppID:       req.AppID,
		RedirectURI: redirectURI,
		Scopes:      requestedScopes(ch),
		ForceReauth: reauthorizing(ch),
	}
	ch.Status.Authorization = a
	if b.stillValid(ch, req.API, params, now) {
		return loginHint(ch), nil
	}

	state, err := req.SignState(oauthstate.State{
		Namespace: ch.Namespace,
		Name:      ch.Name,
		Nonce:     a.Nonce,
		ExpiresAt: now.Add(oauthstate.TTL).Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("sign OAuth state: %w", err)
	}
	params.State = state
	ch.Status.AuthorizationURL = req.API.AuthorizeURL(params)
	a.IssuedAt = &metav1.Time{Time: now}
	return loginHint(ch), nil
}

// stillValid tells whether the published URL can stay: issued recently
// enough, for this channel and nonce, and asking for exactly what params
// ask for (rebuilding it around its own state gives the same URL).
func (b *BusinessLogin) stillValid(ch *igv1.InstagramChannel, api instagram.API, params instagram.AuthorizeParams, now time.Time) bool {
	current, a := ch.Status.AuthorizationURL, ch.Status.Authorization
	if current == "" || a.IssuedAt == nil || !now.Before(a.IssuedAt.Add(AuthorizationRenewAfter)) {
		return false
	}
	u, err := url.Parse(current)
	if err != nil {
		return false
	}
	state := u.Query().Get("state")
	s, err := oauthstate.Peek(state)
	if err != nil || s.Namespace != ch.Namespace || s.Name != ch.Name || s.Nonce != a.Nonce {
		return false
	}
	params.State = state
	return api.AuthorizeURL(params) == current
}

func (b *BusinessLogin) now() time.Time {
	c := b.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	// Seconds, as the API server stores issuedAt.
	return c.Now().UTC().Truncate(time.Second)
}

// reauthorizing is true when the channel had a token before: Instagram
// then asks the person to log in again (force_reauth) instead of silently
// reusing a session that may belong to another account.
func reauthorizing(ch *igv1.InstagramChannel) bool {
	return (ch.Status.Account != nil && ch.Status.Account.UserID != "") ||
		(ch.Status.Token != nil && ch.Status.Token.ExpiresAt != nil)
}

// loginHint is the sentence the Ready message ends with.
func loginHint(ch *igv1.InstagramChannel) string {
	return fmt.Sprintf("open status.authorizationURL to log in with Instagram (kubectl -n %s get instagramchannel %s -o jsonpath='{.status.authorizationURL}')",
		ch.Namespace, ch.Name)
}
