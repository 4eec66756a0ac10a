package controllers

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	instagramv1alpha1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

// Token decisions are pure functions: the reconciler gathers the inputs
// (clock, status, options), runs the ordered chain of checks and acts on the
// first one that fires, as cert-manager's certificate policies do. A new rule
// is one function and one row in tokenChecks.

const (
	// LongLivedTokenLifetime is the lifetime Instagram gives a long-lived
	// token; used only when Instagram did not tell us the expiry.
	LongLivedTokenLifetime = 60 * 24 * time.Hour

	// refreshJitterFraction and refreshJitterMax bound the jitter subtracted
	// from the refresh time so that channels adopted together do not refresh
	// together.
	refreshJitterFraction = 10
	refreshJitterMax      = time.Hour

	// backoffMin and backoffMax bound the exponential backoff of failing
	// Instagram calls.
	backoffMin = 30 * time.Second
	backoffMax = 30 * time.Minute

	// resyncJitterFraction spreads periodic resyncs over +-10%.
	resyncJitterFraction = 10
)

// TokenAction is what the token step does after the policy ran.
type TokenAction string

const (
	// TokenActionUse: the token is fine, nothing to do before NextCheckAt.
	TokenActionUse TokenAction = "Use"
	// TokenActionRefresh: call Instagram's refresh endpoint now.
	TokenActionRefresh TokenAction = "Refresh"
	// TokenActionBackoff: a refresh is due but the last attempts failed; wait
	// until NextCheckAt. The token may still be used meanwhile.
	TokenActionBackoff TokenAction = "Backoff"
	// TokenActionStop: the token cannot be used; only a human (a new token or
	// a spec change) can help. No Instagram call.
	TokenActionStop TokenAction = "Stop"
)

// TokenInput is everything the token policy looks at. Times are zero when
// unknown.
type TokenInput struct {
	Now time.Time
	// HasToken is false when no managed token exists.
	HasToken bool
	// Invalid is true when Instagram answered 190 for this token and neither
	// the token nor the spec changed since.
	Invalid bool
	// InvalidMessage explains Invalid (code and subcode).
	InvalidMessage string
	ExpiresAt      time.Time
	RefreshedAt    time.Time
	// NextRefreshAt is the refresh time computed by NextRefreshAt.
	NextRefreshAt time.Time
	Failures      int32
	LastFailureAt time.Time
	// MinRefreshAge is how old a token must be before Instagram refreshes
	// it (--token-min-refresh-age).
	MinRefreshAge time.Duration
}

// TokenDecision is the outcome of the policy.
type TokenDecision struct {
	Action  TokenAction
	Reason  string
	Message string
	// NextCheckAt is when the token step needs to run again (zero: only
	// when something changes).
	NextCheckAt time.Time
}

// tokenCheck returns a decision and true when it fires.
type tokenCheck func(TokenInput) (TokenDecision, bool)

// tokenChecks is ordered: the first check that fires decides.
// A rejected token stays TokenInvalid even when the managed Secret is gone,
// so the reason does not flip to AwaitingAuthorization.
var tokenChecks = []tokenCheck{
	checkNotInvalid,
	checkHasToken,
	checkNotExpired,
	checkBackoff,
	checkExpiryKnown,
	checkRefreshDue,
}

// DecideToken runs the ordered checks; when none fires the token is used as
// is until its refresh is due.
func DecideToken(in TokenInput) TokenDecision {
	for _, check := range tokenChecks {
		if d, fired := check(in); fired {
			return d
		}
	}
	return TokenDecision{
		Action:      TokenActionUse,
		Reason:      instagramv1alpha1.ReasonSucceeded,
		Message:     fmt.Sprintf("token valid until %s, refresh at %s", formatTime(in.ExpiresAt), formatTime(in.NextRefreshAt)),
		NextCheckAt: in.NextRefreshAt,
	}
}

func checkHasToken(in TokenInput) (TokenDecision, bool) {
	if in.HasToken {
		return TokenDecision{}, false
	}
	return TokenDecision{
		Action:  TokenActionStop,
		Reason:  instagramv1alpha1.ReasonAwaitingAuthorization,
		Message: "no token: set spec.initialTokenSecretRef or complete the Instagram login",
	}, true
}

func checkNotInvalid(in TokenInput) (TokenDecision, bool) {
	if !in.Invalid {
		return TokenDecision{}, false
	}
	msg := in.InvalidMessage
	if msg == "" {
		msg = "Instagram rejected the token (code 190)"
	}
	return TokenDecision{
		Action:  TokenActionStop,
		Reason:  instagramv1alpha1.ReasonTokenInvalid,
		Message: msg + "; log in again or provide a new token",
	}, true
}

func checkNotExpired(in TokenInput) (TokenDecision, bool) {
	if in.ExpiresAt.IsZero() || in.Now.Before(in.ExpiresAt) {
		return TokenDecision{}, false
	}
	return TokenDecision{
		Action:  TokenActionStop,
		Reason:  instagramv1alpha1.ReasonTokenExpired,
		Message: fmt.Sprintf("token expired at %s and cannot be refreshed; log in again or provide a new token", formatTime(in.ExpiresAt)),
	}, true
}

func checkBackoff(in TokenInput) (TokenDecision, bool) {
	if in.Failures <= 0 || in.LastFailureAt.IsZero() {
		return TokenDecision{}, false
	}
	retryAt := in.LastFailureAt.Add(Backoff(in.Failures))
	if !in.Now.Before(retryAt) {
		return TokenDecision{}, false
	}
	return TokenDecision{
		Action:      TokenActionBackoff,
		Reason:      instagramv1alpha1.ReasonRefreshFailing,
		Message:     fmt.Sprintf("token refresh failed %d time(s); next attempt at %s; token valid until %s", in.Failures, formatTime(retryAt), formatTime(in.ExpiresAt)),
		NextCheckAt: retryAt,
	}, true
}

// checkExpiryKnown: a token whose expiry Instagram has not told (adopted
// as it was, and its refresh refused because it was too young) is
// refreshed as soon as Instagram allows, on every reconcile until that
// works: the refresh answer carries the expiry. Until then the channel
// says so (reason ExpiryUnknown) rather than assume a date.
func checkExpiryKnown(in TokenInput) (TokenDecision, bool) {
	if !in.ExpiresAt.IsZero() {
		return TokenDecision{}, false
	}
	learnAt := ExpiryLearnAt(in.RefreshedAt, in.MinRefreshAge)
	if !in.Now.Before(learnAt) {
		return TokenDecision{
			Action:  TokenActionRefresh,
			Reason:  instagramv1alpha1.ReasonProgressing,
			Message: "token expiry unknown: refreshing to learn it",
		}, true
	}
	return TokenDecision{
		Action:      TokenActionUse,
		Reason:      instagramv1alpha1.ReasonExpiryUnknown,
		Message:     fmt.Sprintf("token works but Instagram has not told its expiry; refreshing at %s to learn it", formatTime(learnAt)),
		NextCheckAt: learnAt,
	}, true
}

// ExpiryLearnAt is when a token of unknown expiry can be refreshed to learn
// it: once it is minAge old; at once when its age is unknown too.
func ExpiryLearnAt(refreshedAt time.Time, minAge time.Duration) time.Time {
	if refreshedAt.IsZero() {
		return time.Time{}
	}
	return refreshedAt.Add(minAge).Truncate(time.Second)
}

func checkRefreshDue(in TokenInput) (TokenDecision, bool) {
	if in.NextRefreshAt.IsZero() || in.Now.Before(in.NextRefreshAt) {
		return TokenDecision{}, false
	}
	return TokenDecision{
		Action:  TokenActionRefresh,
		Reason:  instagramv1alpha1.ReasonProgressing,
		Message: fmt.Sprintf("token refresh due since %s", formatTime(in.NextRefreshAt)),
	}, true
}

// NextRefreshAt is when a token should be refreshed: refreshBefore ahead of
// its expiry, earlier by a jitter derived from seed (stable for one channel
// and one token, so a restart computes the same time), and never before the
// token is minAge old (Instagram refuses younger tokens). Truncated to
// seconds, the precision the API server stores.
func NextRefreshAt(expiresAt, refreshedAt time.Time, refreshBefore, minAge time.Duration, seed string) time.Time {
	if expiresAt.IsZero() {
		// Unknown expiry: the next refresh is the one that learns it.
		return ExpiryLearnAt(refreshedAt, minAge)
	}
	at := expiresAt.Add(-refreshBefore).Add(-RefreshJitter(refreshBefore, seed))
	if !refreshedAt.IsZero() {
		if earliest := refreshedAt.Add(minAge); at.Before(earliest) {
			at = earliest
		}
	}
	return at.Truncate(time.Second)
}

// RefreshJitter is a deterministic fraction of up to 10% of refreshBefore,
// capped at one hour.
func RefreshJitter(refreshBefore time.Duration, seed string) time.Duration {
	maxJitter := min(refreshBefore/refreshJitterFraction, refreshJitterMax)
	if maxJitter <= 0 {
		return 0
	}
	return time.Duration(seedFraction(seed) * float64(maxJitter)).Truncate(time.Second)
}

// ResyncAfter spreads the periodic resync of a channel over interval+-10%,
// deterministically per seed, so channels do not resync in lockstep.
func ResyncAfter(interval time.Duration, seed string) time.Duration {
	if interval <= 0 {
		return 0
	}
	spread := interval / resyncJitterFraction
	return interval - spread + time.Duration(seedFraction(seed)*float64(2*spread))
}

// Backoff is the wait after the given number of consecutive failures:
// 30s, 1m, 2m, ... up to 30m.
func Backoff(failures int32) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := backoffMin
	for i := int32(1); i < failures && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// BackoffSince is an exponential backoff derived from how long a failure
// has lasted (the wait doubles the elapsed time), for steps that keep no
// failure counter but a condition's lastTransitionTime.
func BackoffSince(firstFailure, now time.Time) time.Duration {
	elapsed := now.Sub(firstFailure)
	return min(max(elapsed, backoffMin), backoffMax)
}

// seedFraction maps seed to [0, 1).
func seedFraction(seed string) float64 {
	// SHA-256 mixes short, similar seeds (UIDs differ in few places) well.
	sum := sha256.Sum256([]byte(seed))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / float64(1<<53)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

// Token sources. Which token the channel takes is decided the same way as
// the refresh: inputs gathered by the reconciler, then pure ordered checks.

// LoginAction is what the token step does with a login Secret.
type LoginAction string

const (
	// LoginNone: no login Secret for the channel.
	LoginNone LoginAction = "None"
	// LoginDiscard: the login is for a state the channel no longer offers
	// (a replay); the Secret is deleted unused.
	LoginDiscard LoginAction = "Discard"
	// LoginConsumeDenial: the person declined; the denial is recorded and
	// the Secret deleted.
	LoginConsumeDenial LoginAction = "ConsumeDenial"
	// LoginAdopt: a completed login, the most recent intent: its token
	// wins over every other source.
	LoginAdopt LoginAction = "Adopt"
)

// TokenSource is the token the channel adopts in this reconcile.
type TokenSource string

const (
	// SourceManaged: keep the managed token (or, without one, wait).
	SourceManaged TokenSource = "managed"
	// SourceLogin: adopt the token of a completed login.
	SourceLogin TokenSource = sourceLogin
	// SourceInitial: adopt spec.initialTokenSecretRef's token.
	SourceInitial TokenSource = sourceInitial
)

// TokenSourceInput is what the source decision looks at.
type TokenSourceInput struct {
	// HasLogin: a login Secret labelled for the channel exists.
	HasLogin bool
	// LoginStateOffered: its state is one the channel currently offers.
	LoginStateOffered bool
	// LoginDenied: it records a declined login, not a token.
	LoginDenied bool
	// HasInitial: spec.initialTokenSecretRef names a Secret with a token.
	HasInitial bool
	// InitialChanged: its content differs from the one last adopted (or
	// rejected).
	InitialChanged bool
	// HasManagedToken: the managed Secret holds a token.
	HasManagedToken bool
	// Gated: Instagram refused the current token (TokenInvalid at this
	// generation); only a new token reopens the channel.
	Gated bool
}

// loginChecks is ordered: the first that fires decides.
var loginChecks = []func(TokenSourceInput) (LoginAction, bool){
	func(in TokenSourceInput) (LoginAction, bool) { return LoginNone, !in.HasLogin },
	func(in TokenSourceInput) (LoginAction, bool) { return LoginDiscard, !in.LoginStateOffered },
	func(in TokenSourceInput) (LoginAction, bool) { return LoginConsumeDenial, in.LoginDenied },
}

// DecideLogin says what to do with the channel's login Secret.
func DecideLogin(in TokenSourceInput) LoginAction {
	for _, check := range loginChecks {
		if a, fired := check(in); fired {
			return a
		}
	}
	return LoginAdopt
}

// sourceChecks is ordered: the first that fires decides.
var sourceChecks = []func(TokenSourceInput) (TokenSource, bool){
	// A completed login is the most recent intent.
	func(in TokenSourceInput) (TokenSource, bool) { return SourceLogin, DecideLogin(in) == LoginAdopt },
	// A changed initial Secret is a new intent too, also for a gated
	// channel: a new token is what reopens it.
	func(in TokenSourceInput) (TokenSource, bool) {
		return SourceInitial, in.HasInitial && in.InitialChanged
	},
	// Adoption fallback: the managed Secret is gone (deleted, or never
	// written), so the initial token is adopted again, unless Instagram
	// refused the token: the same content is not tried twice.
	func(in TokenSourceInput) (TokenSource, bool) {
		return SourceInitial, in.HasInitial && !in.HasManagedToken && !in.Gated
	},
}

// DecideTokenSource says which token the channel adopts now.
func DecideTokenSource(in TokenSourceInput) TokenSource {
	for _, check := range sourceChecks {
		if s, fired := check(in); fired {
			return s
		}
	}
	return SourceManaged
}

// ExchangeFallback is what adoption does when the long-lived exchange of a
// handed-in token failed.
type ExchangeFallback string

const (
	// FallbackAppCredentials: Instagram refused the app secret; a person
	// must fix the app (Stalled, AppCredentialsInvalid).
	FallbackAppCredentials ExchangeFallback = "AppCredentialsInvalid"
	// FallbackAsLongLived: Instagram refuses to exchange a token that is
	// long-lived already; whether it works as it is, /me tells.
	FallbackAsLongLived ExchangeFallback = "AsLongLived"
	// FallbackBackoff: the exchange failed for another reason; counted and
	// retried with backoff.
	FallbackBackoff ExchangeFallback = "Backoff"
)

// DecideExchangeFallback maps the class of a failed exchange (and whether
// Instagram named the app secret, Graph code 101) to what happens next.
func DecideExchangeFallback(class instagram.Class, appSecretRejected bool) ExchangeFallback {
	switch {
	case appSecretRejected:
		return FallbackAppCredentials
	case class == instagram.ClassBadRequest, class == instagram.ClassTokenInvalid, class == instagram.ClassUnknown:
		return FallbackAsLongLived
	}
	return FallbackBackoff
}
