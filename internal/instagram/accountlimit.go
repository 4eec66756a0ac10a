package instagram

import (
	"sync"
	"time"

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
	// PrivateRepliesPerHour: private replies to comments. Default 750.
	PrivateRepliesPerHour float64
}

// Instagram's documented per-account figures.
const (
	DefaultAccountTextPerSecond         = 100
	DefaultAccountMediaPerSecond        = 10
	DefaultAccountPrivateRepliesPerHour = 750
)

func (l AccountLimits) withDefaults() AccountLimits {
	if l.TextPerSecond == 0 {
		l.TextPerSecond = DefaultAccountTextPerSecond
	}
	if l.MediaPerSecond == 0 {
		l.MediaPerSecond = DefaultAccountMediaPerSecond
	}
	if l.PrivateRepliesPerHour == 0 {
		l.PrivateRepliesPerHour = DefaultAccountPrivateRepliesPerHour
	}
	return l
}

// bucket is the rate (per second) and burst of kind; rate < 0 disables.
func (l AccountLimits) bucket(kind RateKind) (float64, int) {
	switch kind {
	case RateMedia:
		return l.MediaPerSecond, max(1, int(l.MediaPerSecond))
	case RatePrivateReply:
		// An hourly budget: the burst is a tenth of it (75 at once), then
		// one every 4.8 s at the default.
		if l.PrivateRepliesPerHour < 0 {
			return -1, 1
		}
		return l.PrivateRepliesPerHour / 3600, max(1, int(l.PrivateRepliesPerHour/10))
	}
	return l.TextPerSecond, max(1, int(l.TextPerSecond))
}

type accountKey struct {
	account string
	kind    RateKind
}

// accountLimiters holds one token bucket per (account, kind), shared by
// every app's client: the limit is the account's, whichever app calls.
// A per-second bucket's burst is one second's worth, so a burst never
// exceeds what Instagram allows in a second.
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
		per, burst := a.limits.bucket(kind)
		if per < 0 {
			lim = rate.NewLimiter(rate.Inf, 1)
		} else {
			lim = rate.NewLimiter(rate.Limit(per), burst)
		}
		a.by[k] = lim
	}
	return lim
}

// AccountWait is how long a send of kind for account would wait now for
// the account's bucket (0: a turn is free). It takes no turn: a caller that
// must not hold a send in flight while it waits (the message controller,
// before it marks a message Sending) asks first and comes back later.
func (c *client) AccountWait(account string, kind RateKind) time.Duration {
	if account == "" {
		return 0
	}
	lim := c.accountLimits.forAccount(account, kind)
	if lim.Limit() == rate.Inf {
		return 0
	}
	missing := 1 - lim.Tokens()
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / float64(lim.Limit()) * float64(time.Second))
}
