package controllers

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	instagramv1alpha1 "github.com/leadchat/instagram-operator/api/v1alpha1"
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
