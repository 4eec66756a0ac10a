package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/localenv"
	"github.com/leadchat/instagram-operator/internal/names"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

const timeout = 60 * time.Second

func isReady(obj interface{ GetConditions() []metav1.Condition }) bool {
	return meta.IsStatusConditionTrue(obj.GetConditions(), igv1.ConditionReady)
}

// newAccount returns a fresh professional account for one spec.
func newAccount() fake.Account {
	id := fmt.Sprintf("178414%011d", rand.Int63nRange(1, 99999999999))
	return fake.Account{UserID: id, ID: "app-scoped-" + id, Username: "shop_" + rand.String(5), Name: "Shop", AccountType: "BUSINESS"}
}

var _ = Describe("the operator, end to end", Ordered, func() {
	ctx := context.Background()
	ns := "shop-" + rand.String(5)
	app := localenv.App{ID: "1000000000000001", Secret: "e2e-app-secret-" + rand.String(8), VerifyToken: "e2e-verify", Name: "acme"}
	account := newAccount()
	customer := "5512340000000001"
	var channel *igv1.InstagramChannel

	It("makes the app Ready and publishes its URLs", func() {
		Expect(env.CreateApp(ctx, app)).To(Succeed())
		got := &igv1.ClusterInstagramApp{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: app.Name}, got)).To(Succeed())
			g.Expect(isReady(got)).To(BeTrue())
		}, timeout).Should(Succeed())
		Expect(got.Status.WebhookURL).To(Equal(env.PublicURL + "/webhooks/instagram/clusterapps/" + app.Name))
		Expect(got.Status.RedirectURL).To(Equal(env.PublicURL + "/instagram/callback"))
	})

	It("answers Meta's webhook handshake only with the verify token, on the app's path and the shared one", func() {
		get := func(path, token string) int {
			resp, err := http.Get(env.PublicURL + path + "?hub.mode=subscribe&hub.challenge=42&hub.verify_token=" + token)
			Expect(err).NotTo(HaveOccurred())
			_ = resp.Body.Close()
			return resp.StatusCode
		}
		for _, path := range []string{"/webhooks/instagram/clusterapps/" + app.Name, "/webhooks/instagram"} {
			Eventually(func() int { return get(path, app.VerifyToken) }, timeout).Should(Equal(http.StatusOK), path)
			Expect(get(path, "wrong")).To(Equal(http.StatusForbidden), path)
		}
	})

	It("connects a channel from a short-lived token: exchange, Secret, account, subscription", func() {
		var err error
		channel, err = env.CreateTokenChannel(ctx, app, ns, "support", account, false)
		Expect(err).NotTo(HaveOccurred())

		out, err := env.Kubectl("-n", ns, "wait", "--for=condition=Ready", "instagramchannel/support", "--timeout=60s")
		Expect(err).NotTo(HaveOccurred(), out)

		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(channel), channel)).To(Succeed())
		Expect(channel.Status.Account).NotTo(BeNil())
		Expect(channel.Status.Account.UserID).To(Equal(account.UserID))
		Expect(channel.Status.Account.Username).To(Equal(account.Username))
		Expect(channel.Status.Token.ExpiresAt).NotTo(BeNil())
		Expect(channel.Status.Token.NextRefreshAt.Time).To(BeTemporally("<", channel.Status.Token.ExpiresAt.Time.Add(-479*time.Hour)))
		Expect(channel.Status.ObservedGeneration).To(Equal(channel.Generation))

		secret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "support-instagram-token"}, secret)).To(Succeed())
		Expect(string(secret.Type)).To(Equal(igv1.TokenSecretType))
		Expect(secret.Labels).To(HaveKeyWithValue(igv1.LabelChannel, "support"))
		Expect(string(secret.Data[igv1.TokenSecretKeyUserID])).To(Equal(account.UserID))
		info, ok := env.Fake.Token(string(secret.Data[igv1.TokenSecretKeyAccessToken]))
		Expect(ok).To(BeTrue())
		Expect(info.LongLived).To(BeTrue(), "the managed Secret holds the long-lived token")
		Expect(metav1.IsControlledBy(secret, channel)).To(BeTrue())

		Expect(env.Fake.Subscriptions(account.UserID)).To(ConsistOf("messages", "messaging_seen", "message_reactions", "messaging_postbacks"))
	})

	It("keeps the token out of status, Events and logs", func() {
		secret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "support-instagram-token"}, secret)).To(Succeed())
		token := string(secret.Data[igv1.TokenSecretKeyAccessToken])
		Expect(token).NotTo(BeEmpty())

		statusYAML, err := yaml.Marshal(channel.Status)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(statusYAML)).NotTo(ContainSubstring(token))
		events, err := env.Kubectl("get", "events", "-A", "-o", "yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(events).NotTo(ContainSubstring(token))
		Expect(env.Manager.Log()).NotTo(ContainSubstring(token))
		Expect(env.Receiver.Log()).NotTo(ContainSubstring(token))
		Expect(env.Manager.Log()).NotTo(ContainSubstring(app.Secret))
	})

	var customerMID string
	It("records a customer DM and a reaction as InstagramMessage objects", func() {
		env.Fake.AddCustomer(fake.Customer{IGSID: customer, Name: "Ann Customer", Username: "ann.customer",
			ProfilePic: "https://scontent.cdninstagram.com/v/ann.jpg", FollowerCount: 120, IsUserFollowBusiness: true})
		var err error
		customerMID, err = env.Fake.DeliverMessage(ctx, fake.CustomerMessage{AccountUserID: account.UserID, CustomerID: customer, Text: "Is this in stock?"})
		Expect(err).NotTo(HaveOccurred())

		var incoming igv1.InstagramMessage
		Eventually(func(g Gomega) {
			var list igv1.InstagramMessageList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{igv1.LabelDirection: igv1.DirectionLabelIncoming})).To(Succeed())
			g.Expect(list.Items).To(HaveLen(1))
			incoming = list.Items[0]
			g.Expect(incoming.Status.Phase).To(Equal(igv1.PhaseReceived))
		}, timeout).Should(Succeed())
		Expect(incoming.Spec.Text).To(Equal("Is this in stock?"))
		Expect(incoming.Spec.ContactID).To(Equal(customer))
		Expect(incoming.Status.MessageID).To(Equal(customerMID))
		Expect(incoming.Labels).To(HaveKeyWithValue(igv1.LabelChannel, "support"))

		Expect(env.Fake.DeliverReaction(ctx, fake.Reaction{MID: customerMID, Reaction: "love", Emoji: "❤️"})).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(&incoming), &incoming)).To(Succeed())
			g.Expect(incoming.Status.Reactions).To(HaveLen(1))
		}, timeout).Should(Succeed())
	})

	It("records the customer as an InstagramContact with their profile and reply window", func() {
		var incoming igv1.InstagramMessageList
		Expect(k8sClient.List(ctx, &incoming, client.InNamespace(ns), client.MatchingLabels{igv1.LabelEvent: igv1.EventLabelMessage})).To(Succeed())
		Expect(incoming.Items).To(HaveLen(1))
		sentAt := incoming.Items[0].Status.EventTime.Time

		contact := &igv1.InstagramContact{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: names.ContactName("support", customer)}, contact)).To(Succeed())
			g.Expect(contact.Status.Profile.Username).To(Equal("ann.customer"))
		}, timeout).Should(Succeed())
		Expect(contact.Status.Profile.Name).To(Equal("Ann Customer"))
		Expect(contact.Status.Profile.FollowsBusiness).To(Equal(ptr.To(true)))
		Expect(isReady(contact)).To(BeTrue())
		Expect(contact.Status.Window.State).To(Equal(igv1.WindowOpen))
		Expect(contact.Status.Window.StandardClosesAt.Time).To(BeTemporally("==", sentAt.Add(24*time.Hour)))
		Expect(contact.Status.Window.HumanAgentClosesAt.Time).To(BeTemporally("==", sentAt.Add(7*24*time.Hour)))
		Expect(contact.Labels).To(HaveKeyWithValue(igv1.LabelWindow, igv1.WindowLabelOpen))
		// One lookup, however many writes the receiver and the manager made.
		lookups := 0
		for _, c := range env.Fake.Calls() {
			// Other specs' channels may look the same customer up too.
			if c.Endpoint == fake.EndpointProfile && strings.HasSuffix(c.Path, "/"+customer) && c.AccountUserID == account.UserID {
				lookups++
			}
		}
		Expect(lookups).To(Equal(1))
	})

	It("refuses a forged delivery and stores nothing from it", func() {
		body := []byte(fmt.Sprintf(`{"object":"instagram","entry":[{"id":%q,"time":1,"messaging":[{"sender":{"id":"1"},"recipient":{"id":%q},"timestamp":1,"message":{"mid":"forged-1","text":"pay here"}}]}]}`, account.UserID, account.UserID))
		for _, path := range []string{"/webhooks/instagram", "/webhooks/instagram/clusterapps/" + app.Name} {
			for _, sig := range []string{"", fake.SignatureHeader("not-the-app-secret", body)} {
				req, _ := http.NewRequest(http.MethodPost, env.PublicURL+path, bytes.NewReader(body))
				if sig != "" {
					req.Header.Set("X-Hub-Signature-256", sig)
				}
				resp, err := http.DefaultClient.Do(req)
				Expect(err).NotTo(HaveOccurred())
				_ = resp.Body.Close()
				Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized), path)
			}
		}
		var list igv1.InstagramMessageList
		Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		for _, m := range list.Items {
			Expect(m.Spec.Text).NotTo(Equal("pay here"))
		}
	})

	It("sends a reply once, converges its echo, and marks it Read", func() {
		reply := &igv1.InstagramMessage{
			ObjectMeta: metav1.ObjectMeta{Name: "reply-1", Namespace: ns},
			Spec: igv1.InstagramMessageSpec{
				ChannelRef: igv1.ChannelReference{Name: "support"},
				Direction:  igv1.DirectionOutgoing,
				ContactID:  customer,
				Text:       "Yes! Want me to reserve one?",
			},
		}
		Expect(k8sClient.Create(ctx, reply)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(reply), reply)).To(Succeed())
			g.Expect(reply.Status.Phase).To(Equal(igv1.PhaseSent))
		}, timeout).Should(Succeed())
		mid := reply.Status.MessageID
		Expect(mid).NotTo(BeEmpty())
		Expect(sentTexts()).To(HaveKeyWithValue("Yes! Want me to reserve one?", 1))

		// The fake delivered the echo of the send: exactly one object holds the mid.
		env.Fake.Flush()
		Consistently(func() int { return objectsWithMID(ctx, ns, mid) }, 3*time.Second).Should(Equal(1))

		Expect(env.Fake.DeliverRead(ctx, mid)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(reply), reply)).To(Succeed())
			g.Expect(reply.Status.Phase).To(Equal(igv1.PhaseRead))
		}, timeout).Should(Succeed())
	})

	It("records the business's message from another app as sent, and comments", func() {
		echoMID := "e2e-echo-" + rand.String(6)
		Expect(env.Fake.DeliverItem(ctx, account.UserID, customer, map[string]any{
			"message": map[string]any{"mid": echoMID, "text": "Sent from the Instagram app", "is_echo": true},
		}, false)).To(Succeed())
		var echo igv1.InstagramMessage
		Eventually(func(g Gomega) {
			var list igv1.InstagramMessageList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{igv1.LabelEvent: igv1.EventLabelEcho})).To(Succeed())
			g.Expect(list.Items).To(HaveLen(1))
			echo = list.Items[0]
		}, timeout).Should(Succeed())
		Expect(echo.Spec.Direction).To(Equal(igv1.DirectionOutgoing))
		Expect(echo.Spec.Echo).To(BeTrue())
		Expect(echo.Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(echo.Status.MessageID).To(Equal(echoMID))
		// The manager never sends the business's own message again.
		Consistently(sentTexts, 2*time.Second).ShouldNot(HaveKey("Sent from the Instagram app"))
		var incoming igv1.InstagramMessageList
		Expect(k8sClient.List(ctx, &incoming, client.InNamespace(ns), client.MatchingLabels{igv1.LabelDirection: igv1.DirectionLabelIncoming})).To(Succeed())
		for _, m := range incoming.Items {
			Expect(m.Spec.Echo).To(BeFalse())
			Expect(m.Status.IsEcho).To(BeFalse(), "direction=incoming selects only the customer's messages")
		}

		// A comment and a reply to it, as Meta sends them (changes, time in seconds).
		now := time.Now()
		body := []byte(fmt.Sprintf(`{"object":"instagram","entry":[{"id":%q,"time":%d,"changes":[`+
			`{"field":"comments","value":{"id":"17865799348089039","from":{"id":"1784140000000555","username":"jane.doe"},"media":{"id":"17887498072083520","media_product_type":"FEED"},"text":"How much?"}},`+
			`{"field":"comments","value":{"id":"17865799348089040","parent_id":"17865799348089039","from":{"id":"1784140000000556","username":"acme.fan"},"media":{"id":"17887498072083520","media_product_type":"FEED"},"text":"Same question"}}]}]}`,
			account.UserID, now.Unix()))
		_, err := env.Fake.Deliver(ctx, app.ID, body)
		Expect(err).NotTo(HaveOccurred())
		var comments igv1.InstagramCommentList
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.List(ctx, &comments, client.InNamespace(ns), client.MatchingLabels{igv1.LabelMedia: "17887498072083520"})).To(Succeed())
			g.Expect(comments.Items).To(HaveLen(2))
		}, timeout).Should(Succeed())
		out, err := env.Kubectl("-n", ns, "get", "igcomment", "-o", "wide")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("jane.doe"))
		Expect(out).To(ContainSubstring("Same question"))
	})

	It("never sends twice when the manager dies mid-send", func() {
		env.Fake.FailNext(fake.EndpointSend, 1, fake.Fault{Hang: true})
		msg := &igv1.InstagramMessage{
			ObjectMeta: metav1.ObjectMeta{Name: "reply-crash", Namespace: ns},
			Spec: igv1.InstagramMessageSpec{
				ChannelRef: igv1.ChannelReference{Name: "support"},
				Direction:  igv1.DirectionOutgoing,
				ContactID:  customer,
				Text:       "sent while the manager crashes",
			},
		}
		Expect(k8sClient.Create(ctx, msg)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(msg), msg)).To(Succeed())
			g.Expect(msg.Status.Phase).To(Equal(igv1.PhaseSending))
		}, timeout).Should(Succeed())
		Eventually(func() int { return env.Fake.CallCount(fake.EndpointSend) }, timeout).Should(BeNumerically(">", 0))

		Expect(msg.Status.SendLease).NotTo(BeNil())
		leaseExpiry := msg.Status.SendLease.ExpiresAt.Time

		env.Manager.Kill()
		Expect(env.Manager.Start(ctx)).To(Succeed())

		By("the new manager leaves the message alone while the dead one's lease runs")
		Consistently(func() igv1.Phase {
			_ = k8sClient.Get(ctx, client.ObjectKeyFromObject(msg), msg)
			return msg.Status.Phase
		}, time.Until(leaseExpiry)-2*time.Second).Should(Equal(igv1.PhaseSending))
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(msg), msg)).To(Succeed())
			g.Expect(msg.Status.Phase).To(Equal(igv1.PhaseFailed))
			g.Expect(msg.Status.Reason).To(Equal(igv1.ReasonDeliveryUnknown))
		}, timeout).Should(Succeed())
		Consistently(func() int { return sentTexts()["sent while the manager crashes"] }, 3*time.Second).Should(BeNumerically("<=", 1))
	})

	It("refuses a send outside the recorded window without calling Instagram", func() {
		// As if the customer's last message (and their reaction, which may
		// have opened the window too) were 8 days old.
		contact := &igv1.InstagramContact{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: names.ContactName("support", customer)}, contact)).To(Succeed())
		Expect(contact.Status.Window.UnconfirmedBy).To(Equal(igv1.OpenerReaction))
		patch := client.MergeFrom(contact.DeepCopy())
		old := metav1.NewMicroTime(time.Now().Add(-8 * 24 * time.Hour))
		contact.Status.Window.OpenedAt = &old
		contact.Status.Window.UnconfirmedAt = &old
		Expect(k8sClient.Status().Patch(ctx, contact, patch)).To(Succeed())

		sends := env.Fake.CallCount(fake.EndpointSend)
		msg := &igv1.InstagramMessage{
			ObjectMeta: metav1.ObjectMeta{Name: "reply-late", Namespace: ns},
			Spec: igv1.InstagramMessageSpec{
				ChannelRef: igv1.ChannelReference{Name: "support"},
				Direction:  igv1.DirectionOutgoing,
				ContactID:  customer,
				Text:       "sorry for the wait",
				Tag:        igv1.TagHumanAgent,
			},
		}
		Expect(k8sClient.Create(ctx, msg)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(msg), msg)).To(Succeed())
			g.Expect(msg.Status.Phase).To(Equal(igv1.PhaseFailed))
		}, timeout).Should(Succeed())
		Expect(msg.Status.Reason).To(Equal(igv1.ReasonOutsideWindow))
		Expect(msg.Status.Message).To(ContainSubstring("the 7-day HUMAN_AGENT window closed at"))
		Expect(env.Fake.CallCount(fake.EndpointSend)).To(Equal(sends))
	})

	It("exports every metric the shipped alerts use", func() {
		managerMetrics, err := env.Manager.Scrape()
		Expect(err).NotTo(HaveOccurred())
		receiverMetrics, err := env.Receiver.Scrape()
		Expect(err).NotTo(HaveOccurred())
		exported := managerMetrics + receiverMetrics
		Expect(managerMetrics).To(ContainSubstring(fmt.Sprintf(`instagram_channel_token_expiration_timestamp_seconds{channel="support",namespace=%q}`, ns)))

		for _, name := range alertMetricNames() {
			Expect(exported).To(MatchRegexp(`(?m)^`+regexp.QuoteMeta(name)+`[{ ]`), "metric %s used by an alert is not exported", name)
		}
	})

	It("reads healthy to Argo CD and kstatus, with the shipped Lua, on the live objects", func() {
		type want struct {
			kind   string
			key    client.ObjectKey
			health string
			kstat  status.Status
		}
		for _, w := range []want{
			{"ClusterInstagramApp", client.ObjectKey{Name: app.Name}, "Healthy", status.CurrentStatus},
			{"InstagramChannel", client.ObjectKey{Namespace: ns, Name: "support"}, "Healthy", status.CurrentStatus},
			{"InstagramMessage", client.ObjectKey{Namespace: ns, Name: "reply-1"}, "Healthy", status.CurrentStatus},
			{"InstagramMessage", client.ObjectKey{Namespace: ns, Name: "reply-crash"}, "Degraded", status.FailedStatus},
			{"InstagramContact", client.ObjectKey{Namespace: ns, Name: names.ContactName("support", customer)}, "Healthy", status.CurrentStatus},
		} {
			health, kstat := liveHealth(ctx, w.kind, w.key)
			Expect(health.Status).To(Equal(w.health), "%s %s: %s", w.kind, w.key, health.Message)
			Expect(kstat).To(Equal(w.kstat), "%s %s", w.kind, w.key)
		}
	})

	It("unsubscribes the account when the channel is deleted", func() {
		Expect(k8sClient.Delete(ctx, channel)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(channel), &igv1.InstagramChannel{}))
		}, timeout).Should(BeTrue())
		Expect(env.Fake.Subscriptions(account.UserID)).To(BeEmpty())
	})
})

// sentTexts counts the fake's sends by text.
func sentTexts() map[string]int {
	counts := map[string]int{}
	for _, s := range env.Fake.Sent() {
		counts[s.Text]++
	}
	return counts
}

// objectsWithMID counts the messages in ns whose status holds mid.
func objectsWithMID(ctx context.Context, ns, mid string) int {
	var list igv1.InstagramMessageList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	n := 0
	for _, m := range list.Items {
		if m.Status.MessageID == mid {
			n++
		}
	}
	return n
}

// alertMetricNames lists the metric names the PrometheusRule's alert
// expressions use.
func alertMetricNames() []string {
	raw, err := readRepoFile("config/prometheus/rules.yaml")
	Expect(err).NotTo(HaveOccurred())
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert string `json:"alert"`
					Expr  string `json:"expr"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	Expect(yaml.Unmarshal([]byte(raw), &rule)).To(Succeed())
	var exprs strings.Builder
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			exprs.WriteString(r.Expr + "\n")
		}
	}
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`instagram_[a-z0-9_]+`).FindAllString(exprs.String(), -1) {
		if strings.HasSuffix(m, "_bucket") || strings.HasSuffix(m, "_count") || strings.HasSuffix(m, "_sum") {
			continue
		}
		seen[m] = true
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	Expect(names).NotTo(BeEmpty())
	return names
}

func readRepoFile(rel string) (string, error) {
	b, err := readFile(testenv.RepoRoot() + "/" + rel)
	return string(b), err
}
