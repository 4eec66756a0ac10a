// Package prometheus checks the alerting rules in config/prometheus against
// the metrics the operator really exports: every metric an expression names,
// every label it matches on and every label value it compares with must come
// out of the manager's and the receiver's collectors.
package prometheus

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/controllers"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/sink"
	"github.com/leadchat/instagram-operator/webhookserver"
)

const (
	rulesPath        = "../../config/prometheus/rules.yaml"
	troubleshooting  = "../../docs/troubleshooting.md"
	runbookBase      = "https://github.com/leadchat/instagram-operator/blob/main/docs/troubleshooting.md#"
	clusterNamespace = "instagram-operator-system"
)

// prometheusRule is the part of a monitoring.coreos.com/v1 PrometheusRule
// the checks read; decoding is strict, so a misspelt field fails.
type prometheusRule struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []rule `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func readRules(t *testing.T) []rule {
	t.Helper()
	data, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var pr prometheusRule
	if err := yaml.UnmarshalStrict(data, &pr); err != nil {
		t.Fatalf("decode %s: %v", rulesPath, err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Fatalf("%s is a %s %s, want a monitoring.coreos.com/v1 PrometheusRule", rulesPath, pr.APIVersion, pr.Kind)
	}
	var rules []rule
	for _, g := range pr.Spec.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatal("no rules")
	}
	return rules
}

// exported is what the collectors produce: per metric family its type, the
// label names and the values seen for each label.
type exported map[string]family

type family struct {
	typ    dto.MetricType
	labels map[string]map[string]bool
}

// exportedMetrics starts the real collectors and gathers them. Vectors show
// up only once a series exists, so the test makes each one happen the way
// production does: one channel in the cache for the scrape-time collector,
// one forged delivery through the receiver's handler.
func exportedMetrics(t *testing.T) exported {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := igv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(append(channels(), app(), appSecret(), publishedCredentials())...).
		WithIndex(&igv1.InstagramChannel{}, webhookserver.ChannelUserIDIndex, webhookserver.IndexChannelUserID).Build()

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(controllers.NewChannelCollector(c))
	clients := instagram.NewClients(instagram.Config{Registerer: reg})
	for _, ep := range instagram.Endpoints {
		clients.RequestsTotal().WithLabelValues(ep, instagram.ResultSuccess)
	}

	// The receiver registers its metrics on controller-runtime's registry,
	// which its binary serves.
	srv := webhookserver.New(webhookserver.Options{Client: c, Cache: c, APIReader: c, ClusterResourceNamespace: clusterNamespace})
	req := httptest.NewRequest(http.MethodPost, webhookserver.WebhookPath, strings.NewReader(`{"object":"instagram","entry":[]}`))
	req.Header.Set(webhookserver.SignatureHeader, "sha256="+strings.Repeat("0", 64))
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("forged delivery answered %d, want 401", rec.Code)
	}
	// A delivery the app really signed, for an account no channel serves:
	// the events counter gets its first series.
	body := `{"object":"instagram","entry":[{"id":"17841400000000009","time":1,"messaging":[{"sender":{"id":"5512340000000001"},"recipient":{"id":"17841400000000009"},"timestamp":1,"message":{"mid":"m_1","text":"hi"}}]}]}`
	mac := hmac.New(sha256.New, appSecret().Data[igv1.AppSecretKeyAppSecret])
	mac.Write([]byte(body))
	req = httptest.NewRequest(http.MethodPost, webhookserver.WebhookPath, strings.NewReader(body))
	req.Header.Set(webhookserver.SignatureHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("signed delivery answered %d, want 200: %s", rec.Code, rec.Body)
	}
	// A login callback without a state: the login outcome counter.
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, webhookserver.CallbackPath, nil))
	if rec.Code < 400 {
		t.Fatalf("callback without a state answered %d, want an error page", rec.Code)
	}

	// Sink series exist per channel once it has a sink; one channel's
	// series carry every result the receiver and the manager write (the
	// constants they count with), so an alert on a misspelt result fails.
	for _, result := range []string{sink.ResultDelivered, sink.ResultFailed, sink.ResultRetried, sink.ResultDeadLettered, sink.ResultLost} {
		sink.EventsTotal.WithLabelValues("acme", "support", result)
	}

	mfs, err := prometheus.Gatherers{reg, ctrlmetrics.Registry}.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := exported{}
	for _, mf := range mfs {
		f := family{typ: mf.GetType(), labels: map[string]map[string]bool{}}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if f.labels[lp.GetName()] == nil {
					f.labels[lp.GetName()] = map[string]bool{}
				}
				f.labels[lp.GetName()][lp.GetValue()] = true
			}
		}
		out[mf.GetName()] = f
	}
	return out
}

// lookup finds the family of a series name, also for the _bucket, _sum and
// _count series of histograms and summaries.
func (e exported) lookup(name string) (family, bool) {
	if f, ok := e[name]; ok {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := e[base]; ok && (f.typ == dto.MetricType_HISTOGRAM || f.typ == dto.MetricType_SUMMARY) {
			return f, true
		}
	}
	return family{}, false
}

func TestRulesUseExportedMetrics(t *testing.T) {
	metrics := exportedMetrics(t)
	for _, r := range readRules(t) {
		t.Run(r.Alert, func(t *testing.T) {
			checkExpr(t, metrics, r.Expr)
		})
	}
}

func TestRulesAreDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range readRules(t) {
		t.Run(r.Alert, func(t *testing.T) {
			if !regexp.MustCompile(`^Instagram[A-Za-z]+$`).MatchString(r.Alert) {
				t.Errorf("alert name %q should be Instagram<CamelCase>", r.Alert)
			}
			if seen[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("for: %v", err)
				}
			}
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("severity %q, want critical, warning or info", r.Labels["severity"])
			}
			for _, key := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[key]) == "" {
					t.Errorf("annotation %s is missing", key)
				}
			}
			if want := runbookBase + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
				t.Errorf("runbook_url %q, want %q", r.Annotations["runbook_url"], want)
			}
		})
	}
}

// TestRunbookAnchorsExist checks that docs/troubleshooting.md has a heading
// for every alert, as GitHub turns "## InstagramTokenExpiringSoon" into the
// anchor #instagramtokenexpiringsoon.
func TestRunbookAnchorsExist(t *testing.T) {
	data, err := os.ReadFile(troubleshooting)
	if os.IsNotExist(err) {
		t.Skipf("%s does not exist yet; the alerts' runbook_url point into it", troubleshooting)
	}
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if heading, ok := strings.CutPrefix(strings.TrimSpace(line), "#"); ok {
			anchors[githubAnchor(strings.TrimLeft(heading, "#"))] = true
		}
	}
	for _, r := range readRules(t) {
		if !anchors[strings.ToLower(r.Alert)] {
			t.Errorf("%s has no heading %q, which %s's runbook_url points to", troubleshooting, r.Alert, r.Alert)
		}
	}
}

// githubAnchor is GitHub's heading slug: lower case, punctuation dropped,
// spaces to hyphens.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func labelNames(f family) []string { return sortedKeys(f.labels) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// channels are two channels as the manager leaves them: one whose refresh
// is being retried (Reconciling) and one that needs a human (Stalled).
// Together they carry every condition the rules select on.
func channels() []client.Object {
	at := metav1.NewTime(time.Date(2026, time.June, 13, 8, 27, 46, 0, time.UTC))
	expires := metav1.NewTime(time.Date(2026, time.July, 3, 9, 13, 2, 0, time.UTC))
	next := metav1.NewTime(time.Date(2026, time.June, 13, 8, 27, 45, 0, time.UTC))
	cond := func(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: reason, ObservedGeneration: 1, LastTransitionTime: at}
	}
	channel := func(name string, conds ...metav1.Condition) *igv1.InstagramChannel {
		return &igv1.InstagramChannel{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "acme", Generation: 1},
			Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"}},
			Status: igv1.InstagramChannelStatus{
				ObservedGeneration: 1,
				Conditions:         conds,
				Token: &igv1.TokenStatus{
					SecretName:    name + "-instagram-token",
					ExpiresAt:     &expires,
					NextRefreshAt: &next,
					Failures:      3,
					LastFailureAt: &at,
				},
			},
		}
	}
	return []client.Object{
		channel("support",
			cond(igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonRefreshFailing),
			cond(igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonRefreshFailing),
			cond(igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonSucceeded)),
		channel("sales",
			cond(igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonTokenInvalid),
			cond(igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonTokenInvalid),
			cond(igv1.ConditionAuthorized, metav1.ConditionFalse, igv1.ReasonTokenInvalid)),
	}
}

func app() *igv1.ClusterInstagramApp {
	return &igv1.ClusterInstagramApp{
		ObjectMeta: metav1.ObjectMeta{Name: "acme", Generation: 1},
		Spec:       igv1.AppSpec{AppID: "1234567890", SecretRef: igv1.LocalObjectReference{Name: "instagram-app"}},
	}
}

// publishedCredentials is the copy of the app's credentials the manager
// publishes in the operator's namespace: all the receiver may read.
func publishedCredentials() *corev1.Secret {
	s := appSecret()
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: "published-acme", Namespace: clusterNamespace,
			Labels: map[string]string{igv1.LabelAppCredentials: "true"},
			Annotations: map[string]string{
				igv1.AnnotationAppKind: igv1.KindClusterInstagramApp,
				igv1.AnnotationAppName: "acme",
			},
		},
		Type: igv1.AppCredentialsSecretType,
		Data: s.Data,
	}
}

func appSecret() *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "instagram-app", Namespace: clusterNamespace, Labels: map[string]string{igv1.LabelWatch: "true"}},
		Data: map[string][]byte{
			igv1.AppSecretKeyAppSecret:   []byte("app-secret-for-tests"),
			igv1.AppSecretKeyVerifyToken: []byte("verify-token-for-tests"),
		},
	}
}

// TestAvailabilityAlerts checks the alerts a platform team expects of any
// operator exist, and that the series the "down" alerts test with absent()
// are exported by a binary that has done nothing yet: nothing in this test
// process refreshes a token or meets an unavailable API server, so these
// series exist only because the binaries start them at zero.
func TestAvailabilityAlerts(t *testing.T) {
	names := map[string]bool{}
	for _, r := range readRules(t) {
		names[r.Alert] = true
	}
	for _, want := range []string{
		"InstagramOperatorDown", "InstagramReceiverDown", "InstagramReceiverErrors", "InstagramOutgoingFailuresRising",
		"InstagramTokenExpiringSoon", "InstagramTokenRefreshFailing", "InstagramChannelNotReady", "InstagramWebhookSignatureFailures",
	} {
		if !names[want] {
			t.Errorf("no alert %s", want)
		}
	}
	metrics := exportedMetrics(t)
	if f, _ := metrics.lookup("instagram_channel_token_refresh_total"); !f.labels["result"]["success"] {
		t.Error(`the manager does not export instagram_channel_token_refresh_total{result="success"} before its first refresh: InstagramOperatorDown would fire`)
	}
	f, _ := metrics.lookup("instagram_webhook_rejected_total")
	for _, cause := range []string{"signature", "too_large", "malformed", "wrong_object", "unknown_app_entry", "no_channel", "verify_token", "unavailable"} {
		if !f.labels["cause"][cause] {
			t.Errorf(`the receiver does not start instagram_webhook_rejected_total{cause=%q} at zero`, cause)
		}
	}
}
