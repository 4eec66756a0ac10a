package webhookserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of an event, the result label of instagram_webhook_events_total.
const (
	// resultStored: the event is persisted (or already was, on a redelivery).
	resultStored = "stored"
	// resultOwnSend: an echo of a message the manager sent; the outgoing
	// object already records it.
	resultOwnSend = "own_send"
	// resultIgnored: acknowledged without a write (dashboard test, unknown
	// type, nothing left to change).
	resultIgnored = "ignored"
	// resultRejected: the entry's account has no channel of the signing app.
	resultRejected = "rejected"
	// resultInvalid: the event cannot be stored as an InstagramMessage (e.g.
	// a sender ID that is not an IGSID); retrying would not help.
	resultInvalid = "invalid"
	// resultOrphaned: a reaction or edit whose message never arrived within
	// the grace period.
	resultOrphaned = "orphaned"
	// resultRetry: the target message is not there yet; the delivery is
	// answered 503 so Meta delivers it again.
	resultRetry = "retry"
	// resultError: the API server failed; the delivery is answered 503.
	resultError = "error"
)

// Causes of a refused request or entry, the cause label of
// instagram_webhook_rejected_total.
const (
	causeSignature       = "signature"
	causeTooLarge        = "too_large"
	causeMalformed       = "malformed"
	causeWrongObject     = "wrong_object"
	causeUnknownAppEntry = "unknown_app_entry"
	causeNoChannel       = "no_channel"
	// causeNoChannelYet: no channel serves the entry's account yet, and the
	// entry is recent enough that one may (answered 503).
	causeNoChannelYet = "no_channel_yet"
	causeVerifyToken  = "verify_token"
	causeUnavailable  = "unavailable"
	// causeRateLimited: the client's signatures failed too often; refused
	// with 429 before its body was read.
	causeRateLimited = "rate_limited"
	// causeUnknownApp: the path names no app with published credentials,
	// or the shared path is off.
	causeUnknownApp = "unknown_app"
)

var (
	eventsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instagram_webhook_events_total",
		Help: "Webhook events received, by event type and result.",
	}, []string{"type", "result"})

	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "instagram_webhook_request_duration_seconds",
		Help:    "Time to answer a webhook request, by method and status code.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20},
	}, []string{"method", "code"})

	unknownFieldsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instagram_webhook_unknown_fields_total",
		Help: "Keys of webhook events this receiver does not know (named in the object's status.unknownFields), by event type.",
	}, []string{"type"})

	rejectedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instagram_webhook_rejected_total",
		Help: "Webhook requests or entries refused, by cause.",
	}, []string{"cause"})
)

func init() {
	metrics.Registry.MustRegister(eventsTotal, requestDuration, rejectedTotal, unknownFieldsTotal)
	// Every cause starts at zero: rate() works from the first scrape, and
	// a receiver always exports a series that InstagramReceiverDown looks
	// for.
	for _, cause := range []string{causeSignature, causeTooLarge, causeMalformed, causeWrongObject, causeUnknownAppEntry,
		causeNoChannel, causeNoChannelYet, causeVerifyToken, causeUnavailable, causeRateLimited, causeUnknownApp} {
		rejectedTotal.WithLabelValues(cause)
	}
}
