package instagram

import (
	"sync"

	"golang.org/x/time/rate"
)

// AccountLimits are Instagram's send limits per professional account
// (INSTAGRAM-API.md "Rate limits per account"): Meta counts them per
// account and kind of call, on top of the app-wide limit, so one busy
// account cannot use up another's turn. A negative value disables a limit.
type AccountLimits struct {
	// TextPerSecond: text, links, reactions, stickers, templates, images
	// and sender actions. Default 100.
	TextPerSecond float64
	// MediaPerSecond: audio and video. Default 10.
	MediaPerSecond float64
}

// Instagram's documented per-account figures.
const (
	DefaultAccountTextPerSecond  = 100
	DefaultAccountMediaPerSecond = 10
)

func (l AccountLimits) withDefaults() AccountLimits {
	if l.TextPerSecond == 0 {
		l.TextPerSecond = DefaultAccountTextPerSecond
	}
	if l.MediaPerSecond == 0 {
		l.MediaPerSecond = DefaultAccountMediaPerSecond
	}
	return l
}

func (l AccountLimits) perSecond(kind RateKind) float64 {
	if kind == RateMedia {
		return l.MediaPerSecond
	}
	return l.TextPerSecond
}

type accountKey struct {
	account string
	kind    RateKind
}

// accountLimiters holds one token bucket per (account, kind), shared by
// every app's client: the limit is the account's, whichever app calls.
// A bucket's burst is one second's worth, so a burst never exceeds what
// Instagram allows in a second.
type accountLimiters struct {
	limits AccountLimits

	mu sync.Mutex
	by map[accountKey]*rate.Limiter
}

func newAccountLimiters(l AccountLimits) *accountLimiters {
	return &accountLimiters{limits: l, by: map[accountKey]*rate.Limiter{}}
}

func (a *accountLimiters) forAccount(account string, kind RateKind) *rate.Limiter {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := accountKey{account, kind}
	lim, ok := a.by[k]
	if !ok {
		per := a.limits.perSecond(kind)
		if per < 0 {
			lim = rate.NewLimiter(rate.Inf, 1)
		} else {
			lim = rate.NewLimiter(rate.Limit(per), max(1, int(per)))
		}
		a.by[k] = lim
	}
	return lim
}
