package webhookserver

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of the signature-failure limit. Meta signs every delivery right,
// so it never spends from this budget; a client whose forged POSTs fail
// more than this gets 429 before its body is read or any HMAC computed.
const (
	DefaultSignatureFailureRate  = rate.Limit(1) // one a second
	DefaultSignatureFailureBurst = 20
)

// ParseTrustedProxies parses a comma-separated list of CIDRs or addresses
// (--trusted-proxies).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", f, err)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", f, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// clientAddr decides which address a request came from: the peer, unless
// the peer is a trusted proxy, in which case X-Forwarded-For is read from
// the right (the part the trusted proxies appended) and the first address
// that is not a trusted proxy is the client. Anything a client wrote into
// the header itself lies left of that and is never believed.
type clientAddr struct {
	trusted []netip.Prefix
}

func (c clientAddr) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// of is the client address of r, as a string fit for a limiter key.
func (c clientAddr) of(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || len(c.trusted) == 0 || !c.isTrusted(peer) {
		return host
	}
	client := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				// Garbage where a trusted proxy writes: stop at the last
				// address we could read.
				return client.Unmap().String()
			}
			client = a
			if !c.isTrusted(a) {
				return a.Unmap().String()
			}
		}
	}
	return client.Unmap().String()
}

// failureLimiter limits, per client, how many requests may fail their
// signature check: allow costs nothing, fail spends one token. A client
// that only sends valid deliveries (Meta) is never limited.
type failureLimiter struct {
	mu        sync.Mutex
	perClient map[string]*rate.Limiter
	limit     rate.Limit
	burst     int
}

func newFailureLimiter(limit rate.Limit, burst int) *failureLimiter {
	return &failureLimiter{perClient: map[string]*rate.Limiter{}, limit: limit, burst: burst}
}

// allow reports whether client may try a signature now.
func (l *failureLimiter) allow(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.perClient[client]
	return !ok || lim.TokensAt(now) >= 1
}

// fail records a failed signature check of client.
func (l *failureLimiter) fail(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.perClient[client]
	if !ok {
		if len(l.perClient) >= maxTrackedClients {
			// Forgetting everyone bounds memory; a flood from many
			// addresses still pays for each HMAC, bounded per request by
			// the per-app path.
			clear(l.perClient)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.perClient[client] = lim
	}
	lim.AllowN(now, 1)
}
