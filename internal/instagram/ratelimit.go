package instagram

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// limiters holds one token bucket per Meta app: Meta's application-level
// limits are counted per app, so every API value of an app draws from the
// same bucket.
type limiters struct {
	limit rate.Limit
	burst int

	mu    sync.Mutex
	byApp map[string]*rate.Limiter
}

func newLimiters(perSecond float64, burst int) *limiters {
	l := rate.Limit(perSecond)
	if perSecond < 0 {
		l = rate.Inf
	}
	return &limiters{limit: l, burst: burst, byApp: map[string]*rate.Limiter{}}
}

func (l *limiters) forApp(appID string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.byApp[appID]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.byApp[appID] = lim
	}
	return lim
}

// wait blocks until lim allows one call. It refuses at once, with a
// RateLimited error, when the wait would outlast ctx's deadline, and stops
// when ctx ends. Either way the request was never sent.
func wait(ctx context.Context, lim *rate.Limiter, endpoint string) error {
	// The limiter runs on wall time: it paces real network calls.
	now := time.Now()
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return &Error{Class: ClassRateLimited, Endpoint: endpoint, NotDelivered: true,
			Message: "client-side rate limit: burst is zero"}
	}
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && deadline.Sub(now) < delay {
		r.CancelAt(now)
		return &Error{Class: ClassRateLimited, Endpoint: endpoint, NotDelivered: true, RetryAfter: delay,
			Message: "client-side rate limit: no call allowed before the deadline"}
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		err := ctx.Err()
		return &Error{Class: ClassTransient, Endpoint: endpoint, NotDelivered: true, IsTransient: true,
			Message: "waiting for the client-side rate limit: " + err.Error(), cause: err}
	}
}

// reservation is one call the limiter already allowed, carried by a
// context from Reserve to the request that uses it.
type reservation struct {
	limiter *rate.Limiter
	used    atomic.Bool
}

type reservationKey struct{}

// takeReservation reports whether ctx carries an unused reservation of
// lim, and uses it up. A reservation of another app's limiter does not
// count: it was not taken from this bucket.
func takeReservation(ctx context.Context, lim *rate.Limiter) bool {
	r, ok := ctx.Value(reservationKey{}).(*reservation)
	return ok && r.limiter == lim && r.used.CompareAndSwap(false, true)
}

// Reserve waits for the app's rate limit; see API.Reserve.
func (c *client) Reserve(ctx context.Context) (context.Context, error) {
	if err := wait(ctx, c.limiter, EndpointSend); err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, reservationKey{}, &reservation{limiter: c.limiter}), nil
}
