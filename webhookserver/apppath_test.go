package webhookserver_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
	ws "github.com/leadchat/instagram-operator/webhookserver"
)

// request sends a delivery to url signed with secret, with extra headers.
func request(url string, body []byte, secret string, header ...string) int {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set(ws.SignatureHeader, sign(secret, body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func handshake(url, token string) int {
	GinkgoHelper()
	resp, err := http.Get(url + "?hub.mode=subscribe&hub.challenge=42&hub.verify_token=" + token)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	return resp.StatusCode
}

// receiverWith is a second receiver on the suite's cache with other options.
func receiverWith(o ws.Options) string {
	GinkgoHelper()
	o.Client, o.Cache, o.APIReader = k8s, mgrCache, k8s
	o.ClusterResourceNamespace = clusterNS
	o.Clock = fakeClock
	o.Logger = logf.Log.WithName("receiver-with")
	s := httptest.NewServer(ws.New(o))
	DeferCleanup(s.Close)
	return s.URL
}

var _ = Describe("per-app webhook paths", func() {
	acmePath := names.AppWebhookPath(igv1.KindClusterInstagramApp, "", "acme")
	ownPath := names.AppWebhookPath(igv1.KindInstagramApp, ns, "own")

	It("verify a delivery against the secrets of the app the path names, and no other", func() {
		body := delivery(entry(supportAccount, fromCustomer(supportAccount, newContact(), at(0), "message", obj{"mid": newMID(), "text": "hi"})))
		Expect(request(baseURL+acmePath, body, acmeSecret)).To(Equal(http.StatusOK))
		Expect(request(baseURL+acmePath, body, acmePrevious)).To(Equal(http.StatusOK), "the previous secret while it rotates")
		Expect(request(baseURL+acmePath, body, ownSecret)).To(Equal(http.StatusUnauthorized), "another app's valid secret does not count here")
		Expect(request(baseURL+ownPath, body, acmeSecret)).To(Equal(http.StatusUnauthorized))
	})

	It("answer the handshake with that app's verify token only", func() {
		Expect(handshake(baseURL+acmePath, acmeVerify)).To(Equal(http.StatusOK))
		Expect(handshake(baseURL+acmePath, ownVerify)).To(Equal(http.StatusForbidden))
		Expect(handshake(baseURL+ownPath, ownVerify)).To(Equal(http.StatusOK))
	})

	It("refuse a path that names no app without reading the body", func() {
		body := delivery(entry(supportAccount))
		before := rejected("unknown_app")
		Expect(request(baseURL+ws.WebhookPath+"/clusterapps/nobody", body, acmeSecret)).To(Equal(http.StatusUnauthorized))
		Expect(request(baseURL+ws.WebhookPath+"/apps/"+ns+"/acme", body, acmeSecret)).To(Equal(http.StatusUnauthorized), "a cluster app is not found under the namespaced form")
		Expect(request(baseURL+ws.WebhookPath+"/apps/Not_A_Namespace/x", body, acmeSecret)).To(Equal(http.StatusNotFound))
		Expect(request(baseURL+ws.WebhookPath+"/whatever", body, acmeSecret)).To(Equal(http.StatusNotFound))
		Expect(rejected("unknown_app")).To(Equal(before + 4))
	})

	It("are what the manager publishes in status.webhookURL", func() {
		Expect(acmePath).To(Equal("/webhooks/instagram/clusterapps/acme"))
		Expect(ownPath).To(Equal("/webhooks/instagram/apps/" + ns + "/own"))
	})
})

var _ = Describe("signature failures", func() {
	It("are limited per client: 429 before the body is read, counted, and Meta's valid deliveries pass", func() {
		url := receiverWith(ws.Options{SignatureFailureBurst: 2})
		body := delivery(entry(orphanAccount))
		before := rejected("rate_limited")
		Expect(request(url+ws.WebhookPath, body, "forged")).To(Equal(http.StatusUnauthorized))
		Expect(request(url+ws.WebhookPath, body, "forged")).To(Equal(http.StatusUnauthorized))
		Expect(request(url+ws.WebhookPath, body, "forged")).To(Equal(http.StatusTooManyRequests))
		Expect(rejected("rate_limited")).To(Equal(before + 1))
		// The fake clock stands still: the budget does not refill.
		Expect(request(url+ws.WebhookPath, body, acmeSecret)).To(Equal(http.StatusTooManyRequests), "the same client stays limited")
	})

	It("are limited by the forwarded address only behind a trusted proxy", func() {
		body := delivery(entry(orphanAccount))
		behindProxy := receiverWith(ws.Options{SignatureFailureBurst: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		Expect(request(behindProxy+ws.WebhookPath, body, "forged", "X-Forwarded-For", "203.0.113.7")).To(Equal(http.StatusUnauthorized))
		Expect(request(behindProxy+ws.WebhookPath, body, "forged", "X-Forwarded-For", "203.0.113.7")).To(Equal(http.StatusTooManyRequests))
		By("another client behind the same proxy is not held back")
		Expect(request(behindProxy+ws.WebhookPath, body, acmeSecret, "X-Forwarded-For", "198.51.100.9")).To(Equal(http.StatusOK))
		By("a client cannot escape by writing its own X-Forwarded-For in front")
		Expect(request(behindProxy+ws.WebhookPath, body, acmeSecret, "X-Forwarded-For", "192.0.2.1, 203.0.113.7")).To(Equal(http.StatusTooManyRequests))

		By("without a trusted proxy the header is ignored")
		direct := receiverWith(ws.Options{SignatureFailureBurst: 1})
		Expect(request(direct+ws.WebhookPath, body, "forged", "X-Forwarded-For", "203.0.113.7")).To(Equal(http.StatusUnauthorized))
		Expect(request(direct+ws.WebhookPath, body, acmeSecret, "X-Forwarded-For", "198.51.100.9")).To(Equal(http.StatusTooManyRequests))
	})
})
