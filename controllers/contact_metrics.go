package controllers

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

var (
	// profileFetchesTotal counts profile lookups by result: success or the
	// lower-case Instagram error class (noconsent, userunavailable,
	// ratelimited...).
	profileFetchesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instagram_contact_profile_fetches_total",
		Help: "Profile lookups of contacts by result (success or the lower-case Instagram error class).",
	}, []string{"result"})
	// messagesRefusedTotal counts outgoing messages failed with
	// OutsideWindow before any call, by the window that was closed.
	messagesRefusedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instagram_messages_refused_total",
		Help: "Outgoing messages failed with OutsideWindow without calling Instagram, by closed window (standard, human_agent).",
	}, []string{"window"})
	// windowCorrectionsTotal counts the times Instagram's answer
	// contradicted the recorded window.
	windowCorrectionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instagram_contact_window_corrections_total",
		Help: "Sends whose outcome contradicted the contact's recorded reply window: refused_while_open (Instagram refused, the record is corrected) or sent_while_closed.",
	}, []string{"kind"})
	// backfilledTotal counts messages imported by the backfill.
	backfilledTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instagram_messages_backfilled_total",
		Help: "InstagramMessage objects imported from the Conversations API when a channel first connected.",
	})
	contactsRemovedTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instagram_contacts_retention_deleted_total",
		Help: "InstagramContact objects deleted because no message and no open reply window was left.",
	})
)

const (
	correctionRefusedWhileOpen = "refused_while_open"
	correctionSentWhileClosed  = "sent_while_closed"
)

func init() {
	metrics.Registry.MustRegister(profileFetchesTotal, messagesRefusedTotal, windowCorrectionsTotal, contactsRemovedTotal, backfilledTotal)
	for _, r := range []string{instagram.ResultSuccess, instagram.ResultOf(&instagram.Error{Class: instagram.ClassNoConsent}),
		instagram.ResultOf(&instagram.Error{Class: instagram.ClassUserUnavailable})} {
		profileFetchesTotal.WithLabelValues(r)
	}
	for _, w := range []string{refusedStandard, refusedHumanAgent} {
		messagesRefusedTotal.WithLabelValues(w)
	}
	for _, k := range []string{correctionRefusedWhileOpen, correctionSentWhileClosed} {
		windowCorrectionsTotal.WithLabelValues(k)
	}
}

var contactsDesc = prometheus.NewDesc("instagram_contacts",
	"InstagramContact objects per channel and reply-window state (the instagram.leadchat.io/window label).",
	[]string{"namespace", "channel", "window"}, nil)

// contactCollector counts contacts at scrape time from the metadata cache.
type contactCollector struct {
	reader client.Reader
}

// NewContactCollector returns the collector of instagram_contacts; reader
// is the manager's cached client (contacts are cached as metadata only).
func NewContactCollector(reader client.Reader) prometheus.Collector {
	return &contactCollector{reader: reader}
}

func (c *contactCollector) Describe(ch chan<- *prometheus.Desc) { ch <- contactsDesc }

func (c *contactCollector) Collect(out chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(igv1.GroupVersion.WithKind("InstagramContactList"))
	if err := c.reader.List(ctx, list); err != nil {
		log.FromContext(ctx).Error(err, "list contacts for metrics")
		return
	}
	type key struct{ ns, channel, window string }
	counts := map[key]int{}
	for i := range list.Items {
		l := list.Items[i].Labels
		w := l[igv1.LabelWindow]
		if w == "" {
			w = igv1.WindowLabelUnknown
		}
		counts[key{list.Items[i].Namespace, l[igv1.LabelChannel], w}]++
	}
	for k, n := range counts {
		out <- prometheus.MustNewConstMetric(contactsDesc, prometheus.GaugeValue, float64(n), k.ns, k.channel, k.window)
	}
}

// equalStatus reports whether two contacts have the same status.
func equalStatus(a, b *igv1.InstagramContact) bool {
	return equality.Semantic.DeepEqual(a.Status, b.Status)
}
