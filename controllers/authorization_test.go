package controllers

import (
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/names"
	"github.com/leadchat/instagram-operator/internal/oauthstate"
)

const testRedirectURL = "https://hooks.example.com/instagram/callback"

// withBusinessLogin wires the real Authorizer and publishes the app's
// redirect URL as the app controller does from --public-url.
func (e *channelEnv) withBusinessLogin() {
	GinkgoHelper()
	e.r.Authorizer = &BusinessLogin{Clock: e.clock}
	e.createApp()
	app := &igv1.InstagramApp{}
	Expect(k8sClient.Get(e.ctx, client.ObjectKey{Namespace: e.ns, Name: testAppName}, app)).To(Succeed())
	app.Status.RedirectURL = testRedirectURL
	Expect(k8sClient.Status().Update(e.ctx, app)).To(Succeed())
	e.ig.SetRedirectURIs(e.appID, testRedirectURL)
}

// authorizeQuery parses the published URL and verifies its state with the
// app secret, as the receiver will.
func (e *channelEnv) authorizeQuery(ch *igv1.InstagramChannel) (url.Values, oauthstate.State) {
	GinkgoHelper()
	Expect(ch.Status.AuthorizationURL).NotTo(BeEmpty())
	u, err := url.Parse(ch.Status.AuthorizationURL)
	Expect(err).NotTo(HaveOccurred())
	Expect(u.Path).To(Equal("/oauth/authorize"))
	q := u.Query()
	st, err := oauthstate.Verify(q.Get("state"), e.clock.Now(), []byte(e.appSecret))
	Expect(err).NotTo(HaveOccurred())
	return q, st
}

// completeLogin plays the person and the receiver: Instagram's authorize
// page issues a code for the account, the code is exchanged and the login
// Secret written with the state's nonce.
func (e *channelEnv) completeLogin(name, userID string) {
	GinkgoHelper()
	ch := e.channel(name)
	loc, err := e.ig.AuthorizeRedirect(ch.Status.AuthorizationURL, userID)
	Expect(err).NotTo(HaveOccurred())
	u, err := url.Parse(loc)
	Expect(err).NotTo(HaveOccurred())
	st, err := oauthstate.Verify(u.Query().Get("state"), e.clock.Now(), []byte(e.appSecret))
	Expect(err).NotTo(HaveOccurred())
	tok, err := e.r.Instagram.ForApp(e.appID).ExchangeCode(e.ctx, e.appSecret, testRedirectURL, u.Query().Get("code"))
	Expect(err).NotTo(HaveOccurred())
	e.tokens = append(e.tokens, tok.AccessToken)
	e.writeLoginSecret(name, st.Nonce, map[string]string{
		igv1.TokenSecretKeyAccessToken: tok.AccessToken,
		igv1.TokenSecretKeyUserID:      tok.UserID,
		igv1.LoginSecretKeyScopes:      strings.Join(tok.Permissions, ","),
	})
}

func (e *channelEnv) writeLoginSecret(channel, nonce string, data map[string]string) {
	GinkgoHelper()
	Expect(k8sClient.Create(e.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: e.ns, Name: names.LoginSecretName(e.ns, channel),
			Labels: map[string]string{igv1.LabelWatch: "true"},
			Annotations: map[string]string{
				igv1.AnnotationNonce:            nonce,
				igv1.AnnotationChannelNamespace: e.ns,
				igv1.AnnotationChannelName:      channel,
			},
		},
		Type:       igv1.LoginSecretType,
		StringData: data,
	})).To(Succeed())
}

var _ = Describe("Business Login authorization", func() {
	It("publishes a signed authorization URL, stays quiet, and renews it before the state expires", func() {
		e := newChannelEnv()
		e.withBusinessLogin()
		e.newChannel("support")
		start := e.clock.Now()

		res := e.reconcile("support")
		ch := e.channel("support")
		ready := expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization)
		Expect(ready.Message).To(ContainSubstring("open status.authorizationURL"))
		Expect(ready.Message).To(ContainSubstring("kubectl -n " + e.ns + " get instagramchannel support"))
		expectCondition(ch, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonAwaitingAuthorization)

		q, st := e.authorizeQuery(ch)
		Expect(q.Get("client_id")).To(Equal(e.appID))
		Expect(q.Get("redirect_uri")).To(Equal(testRedirectURL))
		Expect(q.Get("response_type")).To(Equal("code"))
		Expect(q.Get("scope")).To(Equal("instagram_business_basic,instagram_business_manage_messages"))
		Expect(q.Has("force_reauth")).To(BeFalse(), "a first login is not a re-authorization")
		Expect(st.Namespace).To(Equal(e.ns))
		Expect(st.Name).To(Equal("support"))
		Expect(ch.Status.Authorization).NotTo(BeNil())
		Expect(st.Nonce).To(Equal(ch.Status.Authorization.Nonce))
		Expect(st.ExpiresAt).To(Equal(start.Add(oauthstate.TTL).Unix()))
		Expect(ch.Status.Authorization.IssuedAt.Time).To(BeTemporally("==", start))
		Expect(res.RequeueAfter).To(Equal(AuthorizationRenewAfter), "back before the state expires")

		_, err := oauthstate.Verify(q.Get("state"), e.clock.Now(), []byte("another app's secret"))
		Expect(err).To(MatchError(oauthstate.ErrSignature))

		By("a reconcile before the renewal writes nothing")
		firstURL, nonce := ch.Status.AuthorizationURL, ch.Status.Authorization.Nonce
		e.clock.Step(5 * time.Minute)
		writes := e.writes.Load()
		res = e.reconcile("support")
		Expect(e.writes.Load()).To(Equal(writes), "quiet steady state")
		Expect(e.channel("support").Status.AuthorizationURL).To(Equal(firstURL))
		Expect(res.RequeueAfter).To(Equal(AuthorizationRenewAfter - 5*time.Minute))

		By("at issuedAt+9m a new state with the same nonce replaces the URL")
		e.clock.Step(4 * time.Minute)
		res = e.reconcile("support")
		ch = e.channel("support")
		Expect(ch.Status.AuthorizationURL).NotTo(Equal(firstURL))
		_, st = e.authorizeQuery(ch)
		Expect(st.Nonce).To(Equal(nonce), "the nonce changes only when a login used it")
		Expect(ch.Status.Authorization.Nonce).To(Equal(nonce))
		Expect(st.ExpiresAt).To(Equal(e.clock.Now().Add(oauthstate.TTL).Unix()))
		Expect(res.RequeueAfter).To(Equal(AuthorizationRenewAfter))

		By("spec.redirectURL and spec.scopes change the URL at once")
		ch = e.channel("support")
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.RedirectURL = "https://login.example.com/instagram/callback"
		ch.Spec.Scopes = []igv1.Scope{"instagram_business_basic", "instagram_business_manage_messages", "instagram_business_manage_comments"}
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
		e.reconcile("support")
		q, _ = e.authorizeQuery(e.channel("support"))
		Expect(q.Get("redirect_uri")).To(Equal("https://login.example.com/instagram/callback"))
		Expect(q.Get("scope")).To(Equal("instagram_business_basic,instagram_business_manage_messages,instagram_business_manage_comments"))
	})

	It("consumes a completed login only for the current nonce, then rotates it", func() {
		e := newChannelEnv()
		e.withBusinessLogin()
		acc := e.newAccount("login")
		e.newChannel("support")
		e.reconcile("support")
		nonce := e.channel("support").Status.Authorization.Nonce

		By("a login Secret carrying another nonce is a replay: discarded")
		stale := e.shortLived(acc.UserID)
		e.writeLoginSecret("support", "not-the-nonce", map[string]string{igv1.TokenSecretKeyAccessToken: stale})
		e.reconcile("support")
		Expect(e.secretGone(names.LoginSecretName(e.ns, "support"))).To(BeTrue())
		ch := e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization)
		Expect(ch.Status.Authorization.Nonce).To(Equal(nonce))
		Expect(e.secretGone(ch.TokenSecretName())).To(BeTrue())

		By("the login of the published URL connects the channel")
		e.completeLogin("support", acc.UserID)
		e.reconcile("support")
		ch = e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(ch.Status.AuthorizationURL).To(BeEmpty())
		Expect(ch.Status.Authorization).To(BeNil(), "the used nonce is gone")
		Expect(ch.Status.Token.Scopes).To(ConsistOf("instagram_business_basic", "instagram_business_manage_messages"))
		Expect(e.secretGone(names.LoginSecretName(e.ns, "support"))).To(BeTrue())
		Expect(e.ig.Subscriptions(acc.UserID)).To(Equal(defaultFields()))
	})

	It("records a declined login, rotates the nonce and publishes a new URL", func() {
		e := newChannelEnv()
		e.withBusinessLogin()
		e.newChannel("support")
		e.reconcile("support")
		before := e.channel("support")
		_, oldState := e.authorizeQuery(before)

		e.writeLoginSecret("support", oldState.Nonce, map[string]string{
			igv1.LoginSecretKeyError:            "access_denied",
			igv1.LoginSecretKeyErrorDescription: "Permissions error",
		})
		res := e.reconcile("support")
		ch := e.channel("support")
		ready := expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAuthorizationDenied)
		Expect(ready.Message).To(ContainSubstring("declined"))
		Expect(ready.Message).To(ContainSubstring("Permissions error"))
		expectCondition(ch, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonAuthorizationDenied)
		Expect(e.secretGone(names.LoginSecretName(e.ns, "support"))).To(BeTrue())
		Expect(ch.Status.Authorization.Nonce).NotTo(Equal(oldState.Nonce))
		Expect(ch.Status.Authorization.DeniedAt).NotTo(BeNil())
		Expect(ch.Status.AuthorizationURL).NotTo(Equal(before.Status.AuthorizationURL))
		_, st := e.authorizeQuery(ch)
		Expect(st.Nonce).To(Equal(ch.Status.Authorization.Nonce))
		Expect(res.RequeueAfter).To(Equal(AuthorizationRenewAfter))
		Expect(e.eventsWith("Warning " + igv1.EventAuthorizationDenied)).To(HaveLen(1))

		By("the declined state can no longer complete a login")
		e.writeLoginSecret("support", oldState.Nonce, map[string]string{igv1.TokenSecretKeyAccessToken: e.shortLived(e.newAccount("late").UserID)})
		e.reconcile("support")
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAuthorizationDenied)
		Expect(e.secretGone(names.LoginSecretName(e.ns, "support"))).To(BeTrue())
	})

	It("re-authorizes a channel whose token Instagram rejected (190) with force_reauth", func() {
		e := newChannelEnv()
		acc := e.adopt("support")
		e.r.Authorizer = &BusinessLogin{Clock: e.clock}
		app := &igv1.InstagramApp{}
		Expect(k8sClient.Get(e.ctx, client.ObjectKey{Namespace: e.ns, Name: testAppName}, app)).To(Succeed())
		app.Status.RedirectURL = testRedirectURL
		Expect(k8sClient.Status().Update(e.ctx, app)).To(Succeed())
		e.ig.SetRedirectURIs(e.appID, testRedirectURL)

		e.ig.InvalidateAccountTokens(acc.UserID, 460)
		e.annotate("support", "check")
		res := e.reconcile("support")
		ch := e.channel("support")
		ready := expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonTokenInvalid)
		Expect(ready.Message).To(ContainSubstring("open status.authorizationURL"))
		expectCondition(ch, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonTokenInvalid)
		q, _ := e.authorizeQuery(ch)
		Expect(q.Get("force_reauth")).To(Equal("true"))
		Expect(res.RequeueAfter).To(Equal(AuthorizationRenewAfter))

		By("while gated, reconciles make no Instagram call and no write")
		calls, writes := len(e.ig.Calls()), e.writes.Load()
		e.clock.Step(time.Minute)
		e.reconcile("support")
		Expect(e.ig.Calls()).To(HaveLen(calls))
		Expect(e.writes.Load()).To(Equal(writes))

		By("the person logs in again: Ready, same account, webhooks subscribed")
		e.completeLogin("support", acc.UserID)
		e.reconcile("support")
		ch = e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonSucceeded)
		Expect(ch.Status.AuthorizationURL).To(BeEmpty())
		Expect(ch.Status.Account.UserID).To(Equal(acc.UserID))
		Expect(e.ig.Subscriptions(acc.UserID)).To(Equal(defaultFields()))
	})

	It("asks for a new login when spec.scopes asks for more than the token was granted", func() {
		e := newChannelEnv()
		e.withBusinessLogin()
		acc := e.newAccount("scopes")
		e.newChannel("support")
		e.reconcile("support")
		e.completeLogin("support", acc.UserID)
		e.reconcile("support")
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)

		ch := e.channel("support")
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.Scopes = []igv1.Scope{"instagram_business_basic", "instagram_business_manage_messages", "instagram_business_manage_comments"}
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
		res := e.reconcile("support")
		ch = e.channel("support")
		ready := expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonScopesChanged)
		Expect(ready.Message).To(ContainSubstring("instagram_business_manage_comments"))
		expectCondition(ch, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonScopesChanged)
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonSucceeded)
		q, _ := e.authorizeQuery(ch)
		Expect(q.Get("scope")).To(ContainSubstring("instagram_business_manage_comments"))
		Expect(q.Get("force_reauth")).To(Equal("true"))
		Expect(res.RequeueAfter).To(Equal(AuthorizationRenewAfter))

		By("going back to the granted scopes withdraws the login link")
		ch = e.channel("support")
		patch = client.MergeFrom(ch.DeepCopy())
		ch.Spec.Scopes = []igv1.Scope{"instagram_business_basic", "instagram_business_manage_messages"}
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
		e.reconcile("support")
		ch = e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(ch.Status.AuthorizationURL).To(BeEmpty())
		Expect(ch.Status.Authorization).To(BeNil())
	})

	It("publishes no URL when there is no redirect URI, and says why", func() {
		e := newChannelEnv()
		e.r.Authorizer = &BusinessLogin{Clock: e.clock}
		e.createApp()
		e.newChannel("support")
		e.reconcile("support")
		ch := e.channel("support")
		ready := expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization)
		Expect(ready.Message).To(ContainSubstring("--public-url"))
		Expect(ch.Status.AuthorizationURL).To(BeEmpty())
	})
})

var _ = Describe("BusinessLogin", func() {
	It("builds the URL with the client's AuthorizeURL and never exposes the app secret", func() {
		api := instagram.NewClients(instagram.Config{OAuthURL: "https://www.instagram.com", RatePerSecond: -1}).ForApp("42")
		ch := &igv1.InstagramChannel{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "support"}}
		secret := []byte("s3cr3t-app-secret")
		hint, err := (&BusinessLogin{}).Authorize(suiteCtx, ch, AuthorizationRequest{
			AppID: "42", AppRedirectURL: testRedirectURL, API: api,
			SignState: func(s oauthstate.State) (string, error) { return oauthstate.Sign(secret, s) },
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(hint).To(ContainSubstring("status.authorizationURL"))
		Expect(ch.Status.AuthorizationURL).To(HavePrefix("https://www.instagram.com/oauth/authorize?"))
		Expect(ch.Status.AuthorizationURL).NotTo(ContainSubstring(string(secret)))
		Expect(ch.Status.AuthorizationURL).To(ContainSubstring("enable_fb_login=0"))
	})
})
