package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/localenv"
)

// Business Login through the real binaries: the manager publishes the
// authorization URL, the fake Instagram plays the person approving, the
// browser's redirect lands on the real receiver's callback, and the manager
// connects the channel. Then Instagram rejects the token (190): the channel
// asks for a new login with force_reauth while webhooks keep flowing, and
// the second login makes it Ready again.
var _ = Describe("Business Login, end to end", Ordered, func() {
	ctx := context.Background()
	ns := "login-" + rand.String(5)
	app := localenv.App{ID: "1000000000000077", Secret: "e2e-login-secret-" + rand.String(8), VerifyToken: "e2e-login-verify", Name: "login-e2e"}
	account := newAccount()
	key := client.ObjectKey{Namespace: ns, Name: "sales"}

	// waitForURL returns the channel's authorization URL once it is
	// published with the given Ready reason and differs from previous.
	waitForURL := func(reason, previous string) string {
		GinkgoHelper()
		var link string
		Eventually(func(g Gomega) {
			ch := &igv1.InstagramChannel{}
			g.Expect(k8sClient.Get(ctx, key, ch)).To(Succeed())
			ready := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal(reason))
			g.Expect(meta.IsStatusConditionTrue(ch.Status.Conditions, igv1.ConditionStalled)).To(BeTrue())
			g.Expect(ch.Status.AuthorizationURL).To(HavePrefix(env.FakeURL + "/oauth/authorize?"))
			g.Expect(ch.Status.AuthorizationURL).NotTo(Equal(previous))
			link = ch.Status.AuthorizationURL
		}, timeout).Should(Succeed())
		return link
	}

	// login plays the person approving and the browser following the
	// redirect to the receiver; it returns the page the person sees.
	login := func(link string) (int, string) {
		GinkgoHelper()
		loc, err := env.Fake.AuthorizeRedirect(link, account.UserID)
		Expect(err).NotTo(HaveOccurred())
		Expect(loc).To(HavePrefix(env.PublicURL + "/instagram/callback?"))
		resp, err := http.Get(loc)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		return resp.StatusCode, string(body)
	}

	waitReady := func() *igv1.InstagramChannel {
		GinkgoHelper()
		out, err := env.Kubectl("-n", ns, "wait", "--for=condition=Ready", "instagramchannel/sales", "--timeout=60s")
		Expect(err).NotTo(HaveOccurred(), out)
		ch := &igv1.InstagramChannel{}
		Expect(k8sClient.Get(ctx, key, ch)).To(Succeed())
		return ch
	}

	It("publishes an authorization URL for a channel without a token", func() {
		Expect(env.CreateApp(ctx, app)).To(Succeed())
		env.Fake.AddAccount(account)
		_, err := env.CreateLoginChannel(ctx, app, ns, "sales")
		Expect(err).NotTo(HaveOccurred())

		link := waitForURL(igv1.ReasonAwaitingAuthorization, "")
		u, err := url.Parse(link)
		Expect(err).NotTo(HaveOccurred())
		Expect(u.Query().Get("client_id")).To(Equal(app.ID))
		Expect(u.Query().Get("redirect_uri")).To(Equal(env.PublicURL + "/instagram/callback"))
		Expect(u.Query().Has("force_reauth")).To(BeFalse())
	})

	It("connects the account when the person approves", func() {
		ch := &igv1.InstagramChannel{}
		Expect(k8sClient.Get(ctx, key, ch)).To(Succeed())
		link := ch.Status.AuthorizationURL
		code, page := login(link)
		Expect(code).To(Equal(http.StatusOK), page)
		// The page waited for the manager's verdict.
		Expect(page).To(ContainSubstring("Connected. You can close this tab."))
		Expect(page).To(ContainSubstring("@" + account.Username))
		Expect(page).To(ContainSubstring(ns + "/sales"))

		ch = waitReady()
		Expect(ch.Status.Account.UserID).To(Equal(account.UserID))
		Expect(ch.Status.AuthorizationURL).To(BeEmpty())
		Expect(ch.Status.Authorization).To(BeNil())
		Expect(env.Fake.Subscriptions(account.UserID)).NotTo(BeEmpty())

		By("the same link again is refused: its state was used")
		code, page = login(link)
		Expect(code).To(Equal(http.StatusGone), page)
		Expect(page).To(ContainSubstring("already used"))
	})

	It("asks for a new login after Instagram rejects the token, and keeps recording webhooks", func() {
		env.Fake.InvalidateAccountTokens(account.UserID, 460)
		ch := &igv1.InstagramChannel{}
		Expect(k8sClient.Get(ctx, key, ch)).To(Succeed())
		patch := client.MergeFrom(ch.DeepCopy())
		metav1.SetMetaDataAnnotation(&ch.ObjectMeta, igv1.AnnotationRequestedAt, "check-token")
		Expect(k8sClient.Patch(ctx, ch, patch)).To(Succeed())

		link := waitForURL(igv1.ReasonTokenInvalid, "")
		Expect(link).To(ContainSubstring("force_reauth=true"))

		By("a DM sent meanwhile is recorded")
		_, err := env.Fake.DeliverMessage(ctx, fake.CustomerMessage{AccountUserID: account.UserID, CustomerID: "5512340000000777", Text: "still there?"})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			var list igv1.InstagramMessageList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{igv1.LabelChannel: "sales"})).To(Succeed())
			g.Expect(list.Items).To(HaveLen(1))
			g.Expect(list.Items[0].Spec.Text).To(Equal("still there?"))
		}, timeout).Should(Succeed())

		By("the person logs in again")
		code, page := login(link)
		Expect(code).To(Equal(http.StatusOK), page)
		ch = waitReady()
		Expect(ch.Status.Account.UserID).To(Equal(account.UserID))
		Expect(strings.Contains(env.Receiver.Log(), app.Secret)).To(BeFalse(), "no app secret in the receiver's log")
	})
})
