package sink

import (
	"context"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of instagram_sink_events_total.
const (
	ResultDelivered    = "delivered"
	ResultFailed       = "failed"
	ResultRetried      = "retried"
	ResultDeadLettered = "dead_lettered"
	// ResultLost: neither the sink nor a dead-letter sink took an outgoing
	// outcome. Alerted on.
	ResultLost = "lost"
)

// Metrics per sink. A sink is named by its channel ("<namespace>/<name>"),
// never by its URL, which may carry credentials; both binaries register
// the same names (the receiver for incoming events, the manager for
// outgoing outcomes), told apart by the scrape's job.
var (
	EventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instagram_sink_events_total",
		Help: "CloudEvents by channel and result: delivered, failed (an attempt failed; incoming: the webhook delivery is answered 5xx), retried, dead_lettered, lost.",
	}, []string{"namespace", "channel", "result"})

	FailuresTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instagram_sink_failures_total",
		Help: "Failed sink attempts by channel and reason: refused (4xx), throttled (408/429), unavailable (5xx), timeout, unreachable, busy, circuit_open, invalid, unresolved.",
	}, []string{"namespace", "channel", "reason"})

	RequestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "instagram_sink_request_duration_seconds",
		Help:    "Time of one attempt to deliver a CloudEvent, by channel.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"namespace", "channel"})
)

func init() {
	metrics.Registry.MustRegister(EventsTotal, FailuresTotal, RequestDuration)
}

// Channel names the channel whose events an attempt carries.
type Channel struct{ Namespace, Name string }

// Deliver is Send, counted and timed for ch.
func (s *Sender) Deliver(ctx context.Context, ch Channel, t Target, ev cloudevents.Event, timeout time.Duration) error {
	if t.URI == "" {
		FailuresTotal.WithLabelValues(ch.Namespace, ch.Name, "unresolved").Inc()
		return &Error{Reason: "unresolved", Err: errUnresolved}
	}
	start := s.opts.Clock.Now()
	err := s.Send(ctx, t, ev, timeout)
	if ReasonOf(err) != "circuit_open" {
		RequestDuration.WithLabelValues(ch.Namespace, ch.Name).Observe(s.opts.Clock.Since(start).Seconds())
	}
	if err != nil {
		FailuresTotal.WithLabelValues(ch.Namespace, ch.Name, ReasonOf(err)).Inc()
		return err
	}
	return nil
}

// Forget removes the series of a deleted channel.
func Forget(ch Channel) {
	l := prometheus.Labels{"namespace": ch.Namespace, "channel": ch.Name}
	EventsTotal.DeletePartialMatch(l)
	FailuresTotal.DeletePartialMatch(l)
	RequestDuration.DeletePartialMatch(l)
}
