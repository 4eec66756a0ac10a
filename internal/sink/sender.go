// Package sink delivers CloudEvents to the event sink of a channel (a
// Knative Broker, a KafkaSink, any HTTP service that speaks CloudEvents) in
// HTTP binary mode, and holds the rules the receiver and the manager must
// agree on: event types, source, id and partition key (events.go), and
// which failures are permanent (Classify).
//
// A Sender bounds what one sink can cost: each attempt has a timeout, each
// sink a limit of requests in flight, and a circuit breaker stops calling a
// sink that keeps failing, so one dead sink does not slow the channels of
// other sinks or queue work in memory.
package sink

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"k8s.io/utils/clock"
)

// Target is one resolved sink.
type Target struct {
	// URI is the sink's http(s) URL.
	URI string
	// CACerts are extra PEM roots for the sink's TLS certificate.
	CACerts string
}

// Options bound a Sender. Zero values take the defaults.
type Options struct {
	// MaxInFlight bounds the requests in flight to one sink; an attempt
	// that cannot get a slot before its deadline fails as transient.
	MaxInFlight int
	// BreakerFailures consecutive transient failures open a sink's circuit.
	BreakerFailures int
	// BreakerCooldown is how long an open circuit refuses attempts before
	// one probe is let through.
	BreakerCooldown time.Duration
	// IdleTimeout: a sink not used for this long is forgotten (its
	// connections closed).
	IdleTimeout time.Duration
	Clock       clock.PassiveClock
}

// Defaults of Options.
const (
	DefaultMaxInFlight     = 32
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 10 * time.Second
	DefaultIdleTimeout     = time.Hour
	// DefaultTimeout bounds an attempt when the channel sets none.
	DefaultTimeout = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = DefaultBreakerCooldown
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// Sender sends events to sinks. It is safe for concurrent use.
type Sender struct {
	opts Options

	mu        sync.Mutex
	endpoints map[string]*endpoint
}

// NewSender returns a Sender bounded by opts.
func NewSender(opts Options) *Sender {
	return &Sender{opts: opts.withDefaults(), endpoints: map[string]*endpoint{}}
}

// endpoint is one sink: its client, its in-flight slots and its breaker.
type endpoint struct {
	client cloudevents.Client
	http   *http.Client
	slots  chan struct{}

	mu       sync.Mutex
	failures int
	// openUntil: while in the future, the circuit is open.
	openUntil time.Time
	// probing: the circuit is half-open and one probe is under way.
	probing  bool
	lastUsed time.Time
}

// Error is a failed attempt.
type Error struct {
	// StatusCode is the sink's HTTP status; 0 when there was no answer.
	StatusCode int
	// Permanent: retrying the same event cannot help (4xx other than
	// 408 and 429); it belongs in the dead-letter sink.
	Permanent bool
	// Reason is a short machine-readable cause, used as a metric label:
	// refused, unavailable, timeout, unreachable, busy, circuit_open,
	// invalid.
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("sink answered %d: %v", e.StatusCode, e.Err)
	}
	return fmt.Sprintf("sink %s: %v", e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrCircuitOpen: the sink failed too often lately; no attempt was made.
var ErrCircuitOpen = errors.New("circuit open after repeated failures")

// IsPermanent reports whether err is a failure that retrying cannot cure.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// ReasonOf is the metric reason of a failed attempt.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "error"
}

// Classify says whether an HTTP status from a sink is permanent. 408 and
// 429 ask to come back later, 5xx are the sink's trouble: transient. Any
// other 4xx refuses this event for good (malformed, unauthorized, too
// large): the same request would be refused again. Knative's dispatcher
// draws the line the same way.
func Classify(status int) (permanent bool, reason string) {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return false, "throttled"
	case status >= 400 && status < 500:
		return true, "refused"
	default:
		return false, "unavailable"
	}
}

// Send delivers ev to t within timeout (DefaultTimeout when zero). nil
// means the sink acknowledged it (2xx).
func (s *Sender) Send(ctx context.Context, t Target, ev cloudevents.Event, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ep, err := s.endpoint(t)
	if err != nil {
		return &Error{Permanent: true, Reason: "invalid", Err: err}
	}
	if !ep.allow(s.opts.Clock.Now()) {
		return &Error{Reason: "circuit_open", Err: ErrCircuitOpen}
	}
	select {
	case ep.slots <- struct{}{}:
	case <-ctx.Done():
		// Not the sink's fault: do not count it against the breaker, but
		// let a half-open probe go.
		ep.release()
		return &Error{Reason: "busy", Err: fmt.Errorf("no free slot of %d: %w", cap(ep.slots), ctx.Err())}
	}
	defer func() { <-ep.slots }()

	res := ep.client.Send(cloudevents.WithEncodingBinary(ctx), ev)
	err = result(ctx, res)
	ep.record(s.opts.Clock.Now(), err, s.opts)
	return err
}

// result turns the SDK's protocol result into nil or an *Error.
func result(ctx context.Context, res error) error {
	if cloudevents.IsACK(res) {
		return nil
	}
	var hr *cehttp.Result
	if cloudevents.ResultAs(res, &hr) && hr.StatusCode != 0 {
		if hr.StatusCode >= 200 && hr.StatusCode < 300 {
			return nil
		}
		permanent, reason := Classify(hr.StatusCode)
		return &Error{StatusCode: hr.StatusCode, Permanent: permanent, Reason: reason, Err: errors.New(http.StatusText(hr.StatusCode))}
	}
	// A transport error names the URL, which may carry credentials.
	var uerr *url.Error
	if errors.As(res, &uerr) {
		res = fmt.Errorf("%s %s: %w", uerr.Op, RedactURI(uerr.URL), uerr.Err)
	}
	var nerr net.Error
	switch {
	case ctx.Err() != nil || errors.As(res, &nerr) && nerr.Timeout():
		return &Error{Reason: "timeout", Err: res}
	}
	return &Error{Reason: "unreachable", Err: res}
}

// allow reports whether an attempt may go: the circuit is closed, or it is
// half-open and no probe is under way.
func (ep *endpoint) allow(now time.Time) bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.lastUsed = now
	if ep.openUntil.IsZero() {
		return true
	}
	if now.Before(ep.openUntil) || ep.probing {
		return false
	}
	ep.probing = true
	return true
}

// release ends a probe that made no attempt.
func (ep *endpoint) release() {
	ep.mu.Lock()
	ep.probing = false
	ep.mu.Unlock()
}

// record updates the breaker with an attempt's outcome. A permanent refusal
// is an answer from a working sink: it does not open the circuit.
func (ep *endpoint) record(now time.Time, err error, o Options) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.probing = false
	if err == nil || IsPermanent(err) {
		ep.failures = 0
		ep.openUntil = time.Time{}
		return
	}
	ep.failures++
	if ep.failures >= o.BreakerFailures {
		ep.openUntil = now.Add(o.BreakerCooldown)
	}
}

// Open reports whether the circuit of t is open now, for metrics.
func (s *Sender) Open(t Target) bool {
	s.mu.Lock()
	ep := s.endpoints[key(t)]
	s.mu.Unlock()
	if ep == nil {
		return false
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return !ep.openUntil.IsZero() && s.opts.Clock.Now().Before(ep.openUntil)
}

func key(t Target) string {
	sum := sha256.Sum256([]byte(t.CACerts))
	return t.URI + "#" + hex.EncodeToString(sum[:8])
}

// endpoint returns the endpoint of t, creating it on first use, and
// forgets those idle past IdleTimeout.
func (s *Sender) endpoint(t Target) (*endpoint, error) {
	k := key(t)
	now := s.opts.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if ep := s.endpoints[k]; ep != nil {
		return ep, nil
	}
	for other, ep := range s.endpoints {
		ep.mu.Lock()
		idle := now.Sub(ep.lastUsed) > s.opts.IdleTimeout && len(ep.slots) == 0
		ep.mu.Unlock()
		if idle {
			ep.http.CloseIdleConnections()
			delete(s.endpoints, other)
		}
	}
	ep, err := newEndpoint(t, s.opts)
	if err != nil {
		return nil, err
	}
	ep.lastUsed = now
	s.endpoints[k] = ep
	return ep, nil
}

func newEndpoint(t Target, o Options) (*endpoint, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = o.MaxInFlight
	tr.MaxConnsPerHost = o.MaxInFlight
	if t.CACerts != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(t.CACerts)) {
			return nil, errors.New("caCerts hold no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	hc := &http.Client{Transport: tr}
	p, err := cehttp.New(cehttp.WithTarget(t.URI), cehttp.WithClient(*hc))
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", RedactURI(t.URI), err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		return nil, fmt.Errorf("sink client: %w", err)
	}
	return &endpoint{client: c, http: hc, slots: make(chan struct{}, o.MaxInFlight)}, nil
}

// errUnresolved: the channel has a sink that does not resolve to a URL
// (status.sinkURI is empty; see its SinkProvided condition).
var errUnresolved = errors.New("the channel's sink does not resolve (see its SinkProvided condition)")
