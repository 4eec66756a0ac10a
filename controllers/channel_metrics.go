package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// tokenRefreshTotal counts refresh attempts by result ("success" or the
// failure class). Exported through the channel collector.
var tokenRefreshTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "instagram_channel_token_refresh_total",
	Help: "Token refresh attempts by result (success or the Instagram error class).",
}, []string{"result"})

// The success series starts at zero, so rate() and dashboards work from
// the first scrape instead of from the first refresh (days after start).
func init() { tokenRefreshTotal.WithLabelValues("success") }

var (
	tokenExpirationDesc = prometheus.NewDesc("instagram_channel_token_expiration_timestamp_seconds",
		"When the channel's access token expires (Unix seconds).", []string{"namespace", "channel"}, nil)
	expiryKnownDesc = prometheus.NewDesc("instagram_channel_token_expiry_known",
		"1 when the expiry of the channel's token is known, 0 while Instagram has not told it (the expiration metric is then absent).",
		[]string{"namespace", "channel"}, nil)
	nextRefreshDesc = prometheus.NewDesc("instagram_channel_next_refresh_timestamp_seconds",
		"When the channel's access token is refreshed next (Unix seconds).", []string{"namespace", "channel"}, nil)
	conditionDesc = prometheus.NewDesc("instagram_channel_condition",
		"Status of each channel condition: 1 for the current status, 0 for the others.",
		[]string{"namespace", "channel", "condition", "status"}, nil)
)

// collectTimeout bounds one scrape's read of the cache.
const collectTimeout = 10 * time.Second

// channelCollector reads channels at scrape time, so a deleted channel
// leaves no stale series behind.
type channelCollector struct {
	reader client.Reader
}

// NewChannelCollector returns the collector of the channel metrics; reader
// is the manager's cached client. Register it once on the controller-runtime
// metrics registry.
func NewChannelCollector(reader client.Reader) prometheus.Collector {
	return &channelCollector{reader: reader}
}

func (c *channelCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tokenExpirationDesc
	ch <- expiryKnownDesc
	ch <- nextRefreshDesc
	ch <- conditionDesc
	tokenRefreshTotal.Describe(ch)
}

func (c *channelCollector) Collect(out chan<- prometheus.Metric) {
	tokenRefreshTotal.Collect(out)
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	var list igv1.InstagramChannelList
	if err := c.reader.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "list channels for metrics")
		return
	}
	for i := range list.Items {
		ch := &list.Items[i]
		if tok := ch.Status.Token; tok != nil {
			if tok.ExpiresAt != nil {
				out <- prometheus.MustNewConstMetric(tokenExpirationDesc, prometheus.GaugeValue,
					float64(tok.ExpiresAt.Unix()), ch.Namespace, ch.Name)
			}
			// A channel holds a token once it was obtained (refreshedAt);
			// one still awaiting authorization has no expiry to know.
			if tok.ExpiresAt != nil || tok.RefreshedAt != nil {
				known := 0.0
				if tok.ExpiresAt != nil {
					known = 1
				}
				out <- prometheus.MustNewConstMetric(expiryKnownDesc, prometheus.GaugeValue, known, ch.Namespace, ch.Name)
			}
			if tok.NextRefreshAt != nil {
				out <- prometheus.MustNewConstMetric(nextRefreshDesc, prometheus.GaugeValue,
					float64(tok.NextRefreshAt.Unix()), ch.Namespace, ch.Name)
			}
		}
		for _, cond := range ch.Status.Conditions {
			for _, s := range []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown} {
				v := 0.0
				if cond.Status == s {
					v = 1
				}
				out <- prometheus.MustNewConstMetric(conditionDesc, prometheus.GaugeValue, v,
					ch.Namespace, ch.Name, cond.Type, string(s))
			}
		}
	}
}
