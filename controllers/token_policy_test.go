package controllers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

var policyNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestDecideToken(t *testing.T) {
	day := 24 * time.Hour
	healthy := TokenInput{
		Now:           policyNow,
		HasToken:      true,
		ExpiresAt:     policyNow.Add(50 * day),
		RefreshedAt:   policyNow.Add(-10 * day),
		NextRefreshAt: policyNow.Add(30 * day),
	}
	with := func(f func(*TokenInput)) TokenInput {
		in := healthy
		f(&in)
		return in
	}
	type want struct {
		Action      TokenAction
		Reason      string
		NextCheckAt time.Time
	}
	tests := map[string]struct {
		in   TokenInput
		want want
	}{
		"healthy token waits for its refresh": {
			in:   healthy,
			want: want{TokenActionUse, igv1.ReasonSucceeded, policyNow.Add(30 * day)},
		},
		"no token awaits authorization": {
			in:   TokenInput{Now: policyNow},
			want: want{Action: TokenActionStop, Reason: igv1.ReasonAwaitingAuthorization},
		},
		"invalid token stops before anything else": {
			in:   with(func(in *TokenInput) { in.Invalid = true; in.NextRefreshAt = policyNow.Add(-time.Hour) }),
			want: want{Action: TokenActionStop, Reason: igv1.ReasonTokenInvalid},
		},
		"invalid stays invalid without a token": {
			in:   TokenInput{Now: policyNow, Invalid: true},
			want: want{Action: TokenActionStop, Reason: igv1.ReasonTokenInvalid},
		},
		"expired token stops": {
			in:   with(func(in *TokenInput) { in.ExpiresAt = policyNow; in.NextRefreshAt = policyNow.Add(-day) }),
			want: want{Action: TokenActionStop, Reason: igv1.ReasonTokenExpired},
		},
		"refresh due exactly now": {
			in:   with(func(in *TokenInput) { in.NextRefreshAt = policyNow }),
			want: want{Action: TokenActionRefresh, Reason: igv1.ReasonProgressing},
		},
		"refresh not due a second before": {
			in:   with(func(in *TokenInput) { in.NextRefreshAt = policyNow.Add(time.Second) }),
			want: want{TokenActionUse, igv1.ReasonSucceeded, policyNow.Add(time.Second)},
		},
		"unknown expiry is used until Instagram allows the refresh that learns it": {
			in: with(func(in *TokenInput) {
				in.ExpiresAt, in.RefreshedAt, in.MinRefreshAge = time.Time{}, policyNow.Add(-time.Hour), day
				in.NextRefreshAt = policyNow.Add(23 * time.Hour)
			}),
			want: want{TokenActionUse, igv1.ReasonExpiryUnknown, policyNow.Add(23 * time.Hour)},
		},
		"unknown expiry refreshes once allowed": {
			in: with(func(in *TokenInput) {
				in.ExpiresAt, in.RefreshedAt, in.MinRefreshAge = time.Time{}, policyNow.Add(-day), day
				in.NextRefreshAt = time.Time{} // lost: the policy does not need it
			}),
			want: want{Action: TokenActionRefresh, Reason: igv1.ReasonProgressing},
		},
		"unknown expiry and age refreshes at once": {
			in: with(func(in *TokenInput) {
				in.ExpiresAt, in.RefreshedAt, in.NextRefreshAt = time.Time{}, time.Time{}, time.Time{}
			}),
			want: want{Action: TokenActionRefresh, Reason: igv1.ReasonProgressing},
		},
		"unknown expiry with a failing learning refresh backs off": {
			in: with(func(in *TokenInput) {
				in.ExpiresAt, in.RefreshedAt, in.MinRefreshAge = time.Time{}, policyNow.Add(-2*day), day
				in.Failures, in.LastFailureAt = 1, policyNow.Add(-10*time.Second)
			}),
			want: want{TokenActionBackoff, igv1.ReasonRefreshFailing, policyNow.Add(20 * time.Second)},
		},
		"failing refresh backs off": {
			in: with(func(in *TokenInput) {
				in.NextRefreshAt = policyNow.Add(-time.Hour)
				in.Failures = 3
				in.LastFailureAt = policyNow.Add(-time.Minute)
			}),
			want: want{TokenActionBackoff, igv1.ReasonRefreshFailing, policyNow.Add(time.Minute)},
		},
		"failing refresh retries once the backoff passed": {
			in: with(func(in *TokenInput) {
				in.NextRefreshAt = policyNow.Add(-time.Hour)
				in.Failures = 1
				in.LastFailureAt = policyNow.Add(-30 * time.Second)
			}),
			want: want{Action: TokenActionRefresh, Reason: igv1.ReasonProgressing},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := DecideToken(tc.in)
			got := want{d.Action, d.Reason, d.NextCheckAt}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
			if d.Message == "" {
				t.Errorf("decision without a message")
			}
		})
	}
}

func TestNextRefreshAt(t *testing.T) {
	day := 24 * time.Hour
	issued := policyNow
	expires := issued.Add(60 * day)
	tests := map[string]struct {
		expiresAt, refreshedAt time.Time
		refreshBefore, minAge  time.Duration
		seed                   string
		want                   time.Time
	}{
		"refreshBefore ahead of expiry, minus jitter": {
			expiresAt: expires, refreshedAt: issued, refreshBefore: 20 * day, minAge: day, seed: "a",
			want: expires.Add(-20 * day).Add(-RefreshJitter(20*day, "a")),
		},
		"never before the minimum age": {
			expiresAt: expires, refreshedAt: issued, refreshBefore: 1416 * time.Hour, minAge: day, seed: "a",
			want: issued.Add(day),
		},
		"unknown expiry: refresh as soon as allowed, to learn it": {
			refreshedAt: issued, refreshBefore: 20 * day, minAge: day,
			want: issued.Add(day),
		},
		"unknown expiry and age: no time, the policy refreshes at once": {
			refreshBefore: 20 * day, minAge: day,
			want: time.Time{},
		},
		"short refreshBefore gets a small jitter": {
			expiresAt: expires, refreshedAt: issued, refreshBefore: time.Minute, minAge: day, seed: "b",
			want: expires.Add(-time.Minute).Add(-RefreshJitter(time.Minute, "b")),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := NextRefreshAt(tc.expiresAt, tc.refreshedAt, tc.refreshBefore, tc.minAge, tc.seed)
			if diff := cmp.Diff(tc.want.Truncate(time.Second), got); diff != "" {
				t.Errorf("next refresh (-want +got):\n%s", diff)
			}
			if got.Nanosecond() != 0 {
				t.Errorf("not truncated to seconds: %v", got)
			}
		})
	}
}

func TestRefreshJitterBounds(t *testing.T) {
	tests := map[string]struct {
		refreshBefore, max time.Duration
	}{
		"10% of a short window": {refreshBefore: time.Hour, max: 6 * time.Minute},
		"capped at one hour":    {refreshBefore: 480 * time.Hour, max: time.Hour},
		"tiny window":           {refreshBefore: time.Minute, max: 6 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for _, seed := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
				j := RefreshJitter(tc.refreshBefore, seed)
				if j < 0 || j > tc.max {
					t.Fatalf("jitter %v outside [0, %v]", j, tc.max)
				}
				if j != RefreshJitter(tc.refreshBefore, seed) {
					t.Fatalf("jitter not deterministic for seed %q", seed)
				}
				seen[j] = true
			}
			if len(seen) < 2 {
				t.Errorf("jitter does not vary between channels: %v", seen)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := map[string]struct {
		failures int32
		want     time.Duration
	}{
		"none":         {0, 0},
		"first":        {1, 30 * time.Second},
		"second":       {2, time.Minute},
		"fifth":        {5, 8 * time.Minute},
		"capped":       {7, 30 * time.Minute},
		"huge count":   {1 << 20, 30 * time.Minute},
		"negative off": {-1, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Backoff(tc.failures)); diff != "" {
				t.Errorf("backoff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoffSince(t *testing.T) {
	tests := map[string]struct {
		elapsed time.Duration
		want    time.Duration
	}{
		"just failed":  {0, 30 * time.Second},
		"doubles":      {2 * time.Minute, 2 * time.Minute},
		"bounded":      {5 * time.Hour, 30 * time.Minute},
		"clock skewed": {-time.Minute, 30 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := BackoffSince(policyNow.Add(-tc.elapsed), policyNow)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("backoff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResyncAfter(t *testing.T) {
	for _, seed := range []string{"a", "b", "c"} {
		got := ResyncAfter(10*time.Minute, seed)
		if got < 9*time.Minute || got > 11*time.Minute {
			t.Errorf("resync %v for %q outside 10m+-10%%", got, seed)
		}
	}
	if ResyncAfter(0, "a") != 0 {
		t.Errorf("zero interval should disable resync")
	}
}

func TestDecideTokenSource(t *testing.T) {
	type want struct {
		Login  LoginAction
		Source TokenSource
	}
	tests := map[string]struct {
		in   TokenSourceInput
		want want
	}{
		"nothing handed in: keep the managed token": {
			in:   TokenSourceInput{HasManagedToken: true},
			want: want{LoginNone, SourceManaged},
		},
		"no token at all: wait": {
			in:   TokenSourceInput{},
			want: want{LoginNone, SourceManaged},
		},
		"a completed login wins over everything": {
			in:   TokenSourceInput{HasLogin: true, LoginStateOffered: true, HasInitial: true, InitialChanged: true, HasManagedToken: true, Gated: true},
			want: want{LoginAdopt, SourceLogin},
		},
		"a login for a state no longer offered is discarded; the initial Secret still counts": {
			in:   TokenSourceInput{HasLogin: true, HasInitial: true, InitialChanged: true},
			want: want{LoginDiscard, SourceInitial},
		},
		"a declined login is consumed; the managed token stays": {
			in:   TokenSourceInput{HasLogin: true, LoginStateOffered: true, LoginDenied: true, HasManagedToken: true},
			want: want{LoginConsumeDenial, SourceManaged},
		},
		"a changed initial Secret is adopted": {
			in:   TokenSourceInput{HasInitial: true, InitialChanged: true, HasManagedToken: true},
			want: want{LoginNone, SourceInitial},
		},
		"a changed initial Secret reopens a gated channel": {
			in:   TokenSourceInput{HasInitial: true, InitialChanged: true, HasManagedToken: true, Gated: true},
			want: want{LoginNone, SourceInitial},
		},
		"an unchanged initial Secret is not adopted again while a managed token exists": {
			in:   TokenSourceInput{HasInitial: true, HasManagedToken: true},
			want: want{LoginNone, SourceManaged},
		},
		"fallback: the managed Secret is gone, the initial token is adopted again": {
			in:   TokenSourceInput{HasInitial: true},
			want: want{LoginNone, SourceInitial},
		},
		"no fallback to an initial token Instagram refused": {
			in:   TokenSourceInput{HasInitial: true, Gated: true},
			want: want{LoginNone, SourceManaged},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := want{DecideLogin(tc.in), DecideTokenSource(tc.in)}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideExchangeFallback(t *testing.T) {
	tests := map[string]struct {
		class          instagram.Class
		secretRejected bool
		want           ExchangeFallback
	}{
		"app secret refused (code 101)":         {instagram.ClassBadRequest, true, FallbackAppCredentials},
		"already long-lived (bad request)":      {instagram.ClassBadRequest, false, FallbackAsLongLived},
		"already long-lived (token refused)":    {instagram.ClassTokenInvalid, false, FallbackAsLongLived},
		"already long-lived (unknown answer)":   {instagram.ClassUnknown, false, FallbackAsLongLived},
		"temporary failure backs off":           {instagram.ClassTransient, false, FallbackBackoff},
		"rate limited backs off":                {instagram.ClassRateLimited, false, FallbackBackoff},
		"permission denied backs off (Stalled)": {instagram.ClassPermissionDenied, false, FallbackBackoff},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := DecideExchangeFallback(tc.class, tc.secretRejected); got != tc.want {
				t.Errorf("DecideExchangeFallback = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSetAccountConnectedAt(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := created.Add(72 * time.Hour)
	earlier := metav1.NewTime(created.Add(time.Hour))
	acc := &instagram.Account{UserID: "17841400000000001", Username: "acme"}
	tests := map[string]struct {
		prev *igv1.AccountStatus
		want time.Time
	}{
		"a first connect is now":                    {prev: nil, want: now},
		"the same account keeps its time":           {prev: &igv1.AccountStatus{UserID: acc.UserID, ConnectedAt: &earlier}, want: earlier.Time},
		"recorded before connectedAt: its creation": {prev: &igv1.AccountStatus{UserID: acc.UserID}, want: created},
		"another account behind a new token: now":   {prev: &igv1.AccountStatus{UserID: "17841400000000002", ConnectedAt: &earlier}, want: now},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ch := &igv1.InstagramChannel{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}}
			ch.Status.Account = tc.prev
			setAccount(ch, acc, now)
			if got := ch.Status.Account.ConnectedAt; got == nil || !got.Time.Equal(tc.want) {
				t.Fatalf("connectedAt = %v, want %v", got, tc.want)
			}
		})
	}
}
