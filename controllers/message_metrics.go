package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// messagesSentTotal counts the outcomes of outgoing messages: sent,
// failed_<reason>, delivery_unknown, and retried (an attempt Instagram surely
// did not accept, tried again later).
var messagesSentTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "instagram_messages_sent_total",
	Help: "Outgoing message outcomes by result: sent, failed_<reason>, delivery_unknown, retried.",
}, []string{"result"})

// messagesRetentionDeletedTotal counts messages deleted by retention.
var messagesRetentionDeletedTotal = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "instagram_messages_retention_deleted_total",
	Help: "InstagramMessage objects deleted because they were older than their channel's spec.messageRetention.",
})

func init() {
	metrics.Registry.MustRegister(messagesSentTotal, messagesRetentionDeletedTotal)
	// Start every expected series at zero, so rate() and alerts work from the
	// first scrape rather than from the first occurrence.
	for _, result := range []string{sendResultSent, sendResultRetried, sendResultDeliveryUnknown} {
		messagesSentTotal.WithLabelValues(result)
	}
	for _, reason := range []string{
		igv1.ReasonOutsideWindow, igv1.ReasonUserUnavailable, igv1.ReasonPermissionDenied,
		igv1.ReasonBadRequest, igv1.ReasonTokenInvalid, igv1.ReasonExpired, igv1.ReasonInstagramError,
	} {
		messagesSentTotal.WithLabelValues(sendResultFailed(reason))
	}
}
