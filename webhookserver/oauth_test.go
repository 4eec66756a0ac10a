package webhookserver_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
	"github.com/leadchat/instagram-operator/internal/oauthstate"
	ws "github.com/leadchat/instagram-operator/webhookserver"
)

// The Business Login callback, driven the way a browser drives it: the
// fake Instagram's authorize page issues a code and redirects to the
// app's redirect URI; the test sends that redirect's query to a receiver
// that exchanges codes with the fake. The receiver's cache is the suite's.
const (
	loginNS       = "team-login"
	loginAppID    = "3003"
	loginSecret   = "login-app-secret"
	loginPrevious = "login-previous-secret"
	loginRedirect = "https://hooks.example.com/instagram/callback"
)

type loginWorld struct {
	igURL    string
	clock    *clocktesting.FakeClock
	ig       *fake.Server
	api      instagram.API
	receiver *httptest.Server
	shopper  fake.Account
	tester   fake.Account
}

var lw *loginWorld

func newLoginReceiver(w *loginWorld, igURL string, o ws.LoginOptions) *httptest.Server {
	o.Instagram = instagram.NewClients(instagram.Config{GraphURL: igURL, APIURL: igURL, OAuthURL: igURL, RatePerSecond: -1, Clock: w.clock})
	srv := ws.New(ws.Options{
		Client:                   k8s,
		Cache:                    mgrCache,
		APIReader:                k8s,
		ClusterResourceNamespace: clusterNS,
		Clock:                    w.clock,
		Logger:                   logf.Log.WithName("login"),
		Login:                    o,
	})
	return httptest.NewServer(srv)
}

var _ = Describe("Business Login callback", Ordered, func() {
	BeforeAll(func() {
		ctx := context.Background()
		w := &loginWorld{clock: clocktesting.NewFakeClock(time.Now().UTC().Truncate(time.Second))}
		w.ig = fake.New(fake.Options{Clock: w.clock})
		igSrv := httptest.NewServer(w.ig)
		DeferCleanup(igSrv.Close)
		w.igURL = igSrv.URL
		w.ig.AddApp(loginAppID, loginSecret)
		w.ig.SetRedirectURIs(loginAppID, loginRedirect, loginRedirect+"/")
		w.shopper = fake.Account{UserID: "17841400000000101", ID: "26001", Username: "corner.shop", AccountType: "BUSINESS"}
		w.tester = fake.Account{UserID: "17841400000000102", ID: "26002", Username: "no.role", InsufficientDeveloperRole: true}
		w.ig.AddAccount(w.shopper)
		w.ig.AddAccount(w.tester)
		w.api = instagram.NewClients(instagram.Config{GraphURL: igSrv.URL, APIURL: igSrv.URL, OAuthURL: igSrv.URL, RatePerSecond: -1}).ForApp(loginAppID)
		// Without a manager (most specs) the success page says "checking"
		// after OutcomeWait.
		w.receiver = newLoginReceiver(w, igSrv.URL, ws.LoginOptions{BurstPerIP: 1000, Burst: 1000, OutcomeWait: 1500 * time.Millisecond, OutcomePoll: 20 * time.Millisecond})
		DeferCleanup(w.receiver.Close)
		lw = w

		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: loginNS}})).To(Succeed())
		publishApp(ctx, igv1.KindInstagramApp, loginNS, "login", map[string]string{
			igv1.AppSecretKeyAppSecret:         loginSecret,
			igv1.AppSecretKeyPreviousAppSecret: loginPrevious,
			igv1.AppSecretKeyVerifyToken:       "login-verify",
		})
		app := &igv1.InstagramApp{
			ObjectMeta: metav1.ObjectMeta{Name: "login", Namespace: loginNS},
			Spec:       igv1.AppSpec{AppID: loginAppID, SecretRef: igv1.LocalObjectReference{Name: "login-app"}},
		}
		Expect(k8s.Create(ctx, app)).To(Succeed())
		app.Status.RedirectURL = loginRedirect
		Expect(k8s.Status().Update(ctx, app)).To(Succeed())
		for _, name := range []string{"shop", "other", "mismatch"} {
			ch := &igv1.InstagramChannel{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: loginNS},
				Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindInstagramApp, Name: "login"}},
			}
			if name == "mismatch" {
				// Registered in the dashboard without the trailing slash.
				ch.Spec.RedirectURL = "https://hooks.example.com/instagram/callback/"
			}
			Expect(k8s.Create(ctx, ch)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			var a igv1.InstagramApp
			g.Expect(mgrCache.Get(ctx, client.ObjectKeyFromObject(app), &a)).To(Succeed())
			g.Expect(a.Status.RedirectURL).To(Equal(loginRedirect))
			var s corev1.Secret
			g.Expect(mgrCache.Get(ctx, publishedKey(igv1.KindInstagramApp, loginNS, "login"), &s)).To(Succeed())
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	BeforeEach(func() {
		for _, name := range []string{"shop", "other", "mismatch"} {
			offerLogin(name)
		}
	})

	It("connects the account: login Secret for the manager, then the page the manager's verdict earns", func() {
		nonce := nonceOf("shop")
		stop := fakeManagerConsumesLogin("shop", metav1.ConditionTrue, igv1.ReasonReady, "connected")
		defer stop()
		code, body := callback(approve(authorizeURL("shop", nonce, loginSecret), lw.shopper.UserID))
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring("Connected. You can close this tab."))
		Expect(body).To(ContainSubstring("Your Instagram account @corner.shop is connected."))
		Expect(body).To(ContainSubstring("<summary>Details for the administrator</summary>"))
		Expect(body).To(ContainSubstring(loginNS + "/shop"))

		s := loginSecretOf("shop")
		Expect(s).NotTo(BeNil())
		By("handed over in the operator's namespace, the only one the receiver may write to")
		Expect(s.Namespace).To(Equal(clusterNS))
		Expect(s.Type).To(Equal(corev1.SecretType(igv1.LoginSecretType)))
		Expect(s.Labels).To(HaveKeyWithValue(igv1.LabelWatch, "true"))
		Expect(s.Annotations).To(HaveKeyWithValue(igv1.AnnotationNonce, nonce))
		Expect(s.Annotations).To(HaveKeyWithValue(igv1.AnnotationChannelNamespace, loginNS))
		Expect(s.Annotations).To(HaveKeyWithValue(igv1.AnnotationChannelName, "shop"))
		shop := &igv1.InstagramChannel{}
		Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: loginNS, Name: "shop"}, shop)).To(Succeed())
		Expect(s.Annotations).To(HaveKeyWithValue(igv1.AnnotationChannelUID, string(shop.UID)))
		Expect(s.OwnerReferences).To(BeEmpty(), "an owner reference cannot cross namespaces")
		Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: loginNS, Name: names.LoginSecretName(loginNS, "shop")}, &corev1.Secret{})).
			To(MatchError(ContainSubstring("not found")), "nothing is written in the channel's namespace")
		Expect(string(s.Data[igv1.TokenSecretKeyUserID])).To(Equal(lw.shopper.UserID))
		Expect(string(s.Data[igv1.LoginSecretKeyScopes])).To(Equal("instagram_business_basic,instagram_business_manage_messages"))
		token := string(s.Data[igv1.TokenSecretKeyAccessToken])
		info, ok := lw.ig.Token(token)
		Expect(ok).To(BeTrue(), "a token Instagram issued")
		Expect(info.LongLived).To(BeFalse())
		Expect(body).NotTo(ContainSubstring(token))
		Expect(body).NotTo(ContainSubstring(loginSecret))
	})

	It("accepts a state signed with the previous app secret during a rotation", func() {
		code, _ := callback(approve(authorizeURL("shop", nonceOf("shop"), loginPrevious), lw.shopper.UserID))
		Expect(code).To(Equal(http.StatusAccepted))
		Expect(loginSecretOf("shop")).NotTo(BeNil())
	})

	It("confirms a nonce the cache does not show yet with a live read, rather than calling the link used", func() {
		// A receiver whose cache still holds the channel from before the
		// manager published the link: the person clicked within moments.
		stale := newStaleChannelReceiver(lw)
		defer stale.Close()
		q := approve(authorizeURL("shop", nonceOf("shop"), loginSecret), lw.shopper.UserID)
		resp, err := http.Get(stale.URL + ws.CallbackPath + "?" + q.Encode())
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
		Expect(loginSecretOf("shop")).NotTo(BeNil())
	})

	It("says checking, not connected, while the manager has not reported the outcome", func() {
		code, body := callback(approve(authorizeURL("shop", nonceOf("shop"), loginSecret), lw.shopper.UserID))
		Expect(code).To(Equal(http.StatusAccepted))
		Expect(body).To(ContainSubstring("Checking your connection..."))
		Expect(body).To(ContainSubstring("Instagram confirmed your login as @corner.shop"))
		Expect(body).NotTo(ContainSubstring("is connected"))
		Expect(body).To(ContainSubstring("kubectl -n " + loginNS + " wait --for=condition=Ready instagramchannel/shop"))
	})

	It("says in the owner's words when the account is already connected to another channel", func() {
		stop := fakeManagerConsumesLogin("shop", metav1.ConditionFalse, igv1.ReasonDuplicateAccount, "account 17841400000000101 is already served by channel team/support")
		defer stop()
		code, body := callback(approve(authorizeURL("shop", nonceOf("shop"), loginSecret), lw.shopper.UserID))
		Expect(code).To(Equal(http.StatusConflict))
		Expect(body).To(ContainSubstring("This Instagram account is already connected elsewhere"))
		Expect(body).To(ContainSubstring("@corner.shop is already connected to another channel"))
		Expect(body).NotTo(ContainSubstring("team/support"), "another team's channel is not named to the person logging in")
		Expect(body).NotTo(ContainSubstring("is connected."))
	})

	It("says permissions are missing when the manager finds them so", func() {
		stop := fakeManagerConsumesLogin("shop", metav1.ConditionFalse, igv1.ReasonScopesChanged, "the token lacks instagram_business_manage_messages")
		defer stop()
		code, body := callback(approve(authorizeURL("shop", nonceOf("shop"), loginSecret), lw.shopper.UserID))
		Expect(code).To(Equal(http.StatusForbidden))
		Expect(body).To(ContainSubstring("Some permissions are missing"))
		Expect(body).To(ContainSubstring("allow all the requested permissions"))
	})

	It("hands a declined login to the manager and says so", func() {
		nonce := nonceOf("shop")
		q := url.Values{
			"error": {"access_denied"}, "error_reason": {"user_denied"},
			"error_description": {"Permissions error"}, "state": {signState("shop", nonce, loginSecret, 10*time.Minute)},
		}
		code, body := callback(q)
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring("You chose not to connect your Instagram account."))
		Expect(body).To(ContainSubstring("Permissions error"))
		Expect(body).To(ContainSubstring("kubectl -n " + loginNS + " get instagramchannel shop -o jsonpath="))
		s := loginSecretOf("shop")
		Expect(s).NotTo(BeNil())
		Expect(s.Data).NotTo(HaveKey(igv1.TokenSecretKeyAccessToken))
		Expect(string(s.Data[igv1.LoginSecretKeyError])).To(Equal("access_denied"))
		Expect(string(s.Data[igv1.LoginSecretKeyErrorDescription])).To(Equal("Permissions error"))
		Expect(s.Annotations).To(HaveKeyWithValue(igv1.AnnotationNonce, nonce))
	})

	It("refuses a forged state with 403 and writes nothing", func() {
		q := approve(authorizeURL("shop", nonceOf("shop"), "someone else's secret"), lw.shopper.UserID)
		code, body := callback(q)
		Expect(code).To(Equal(http.StatusForbidden))
		Expect(body).To(ContainSubstring("This link can&#39;t be used"))
		Expect(body).To(ContainSubstring("Ask the person who sent you the link for a new one."))
		// A genuine link whose channel or app was deleted gets this page
		// too: it must not read as an accusation of forgery.
		Expect(body).NotTo(ContainSubstring("not issued here"))
		Expect(loginSecretOf("shop")).To(BeNil())

		By("a state naming a channel that does not exist gets the same answer")
		code, _ = callback(url.Values{"code": {"AQunknownchannelcode"}, "state": {signState("nobody", "n", loginSecret, time.Minute)}})
		Expect(code).To(Equal(http.StatusForbidden))
	})

	It("refuses an expired state with 410 and tells how to get a fresh link", func() {
		q := approve(authorizeURL("shop", nonceOf("shop"), loginSecret), lw.shopper.UserID)
		lw.clock.Step(oauthstate.TTL + time.Second)
		code, body := callback(q)
		Expect(code).To(Equal(http.StatusGone))
		Expect(body).To(ContainSubstring("This link has expired"))
		Expect(body).To(ContainSubstring("Ask the person who sent you the link for a new one."))
		Expect(body).To(ContainSubstring("kubectl -n " + loginNS + " get instagramchannel shop -o jsonpath=&#39;{.status.authorizationURL}&#39;"))
		Expect(loginSecretOf("shop")).To(BeNil())
	})

	It("refuses a replayed state: once while the login is pending, and after the nonce rotated", func() {
		link := authorizeURL("shop", nonceOf("shop"), loginSecret)
		code, _ := callback(approve(link, lw.shopper.UserID))
		Expect(code).To(Equal(http.StatusAccepted))
		first := loginSecretOf("shop")

		By("the same state again, with a fresh code, before the manager consumed the login")
		code, body := callback(approve(link, lw.shopper.UserID))
		Expect(code).To(Equal(http.StatusGone))
		Expect(body).To(ContainSubstring("already used"))
		Expect(loginSecretOf("shop").ResourceVersion).To(Equal(first.ResourceVersion), "never updated")

		By("after the manager consumed it and rotated the nonce")
		offerLogin("shop")
		calls := len(lw.ig.Calls())
		code, body = callback(approve(link, lw.shopper.UserID))
		Expect(code).To(Equal(http.StatusGone))
		Expect(body).To(ContainSubstring("already used"))
		Expect(loginSecretOf("shop")).To(BeNil())
		Expect(lw.ig.Calls()).To(HaveLen(calls), "no code exchange for a used state")
	})

	It("refuses a state issued for another channel", func() {
		// Signed by the same app, naming "other", with shop's nonce: it can
		// complete neither login.
		q := approve(authorizeURL("other", nonceOf("shop"), loginSecret), lw.shopper.UserID)
		code, _ := callback(q)
		Expect(code).To(Equal(http.StatusGone))
		Expect(loginSecretOf("other")).To(BeNil())
		Expect(loginSecretOf("shop")).To(BeNil())
	})

	It("explains a code that was already used", func() {
		q := approve(authorizeURL("shop", nonceOf("shop"), loginSecret), lw.shopper.UserID)
		_, err := lw.api.ExchangeCode(context.Background(), loginSecret, loginRedirect, q.Get("code"))
		Expect(err).NotTo(HaveOccurred())
		code, body := callback(q)
		Expect(code).To(Equal(http.StatusGone))
		Expect(body).To(ContainSubstring("This login expired or was already completed"))
		Expect(body).To(ContainSubstring("Matching code was not found or was already used"))
		Expect(loginSecretOf("shop")).To(BeNil())
	})

	It("shows the exact redirect URI when Instagram refuses it", func() {
		// The code was issued for the registered URI; the channel's
		// spec.redirectURL differs by a trailing slash.
		codeValue := lw.ig.IssueCode(loginAppID, lw.shopper.UserID, loginRedirect, fake.DefaultScopes)
		q := url.Values{"code": {codeValue + "#_"}, "state": {signState("mismatch", nonceOf("mismatch"), loginSecret, 10*time.Minute)}}
		code, body := callback(q)
		Expect(code).To(Equal(http.StatusBadGateway))
		Expect(body).To(ContainSubstring("The redirect URI is not registered"))
		Expect(body).To(ContainSubstring("<code>https://hooks.example.com/instagram/callback/</code>"))
		Expect(body).To(ContainSubstring("OAuth redirect URIs"))
		Expect(loginSecretOf("mismatch")).To(BeNil())
	})

	It("tells a person without a role on the app how to become a tester", func() {
		code, body := callback(approve(authorizeURL("shop", nonceOf("shop"), loginSecret), lw.tester.UserID))
		Expect(code).To(Equal(http.StatusBadGateway))
		Expect(body).To(ContainSubstring("no role on the app"))
		Expect(body).To(ContainSubstring("Instagram Tester"))
		Expect(body).To(ContainSubstring("Insufficient developer role"))
		Expect(loginSecretOf("shop")).To(BeNil())
	})

	It("answers 400 to a callback without state or code, or with an oversized query", func() {
		code, body := callback(url.Values{"code": {"abc"}})
		Expect(code).To(Equal(http.StatusBadRequest))
		Expect(body).To(ContainSubstring("incomplete"))

		code, _ = callback(url.Values{"state": {signState("shop", nonceOf("shop"), loginSecret, time.Minute)}})
		Expect(code).To(Equal(http.StatusBadRequest))

		code, _ = callback(url.Values{"state": {strings.Repeat("a", 5000)}})
		Expect(code).To(Equal(http.StatusBadRequest))
		Expect(loginSecretOf("shop")).To(BeNil())
	})

	It("rate-limits callbacks per client with 429", func() {
		limited := newLoginReceiver(lw, lw.igURL, ws.LoginOptions{BurstPerIP: 2, Burst: 100})
		defer limited.Close()
		codes := []int{}
		for range 3 {
			resp, err := http.Get(limited.URL + ws.CallbackPath)
			Expect(err).NotTo(HaveOccurred())
			_ = resp.Body.Close()
			codes = append(codes, resp.StatusCode)
		}
		Expect(codes).To(Equal([]int{http.StatusBadRequest, http.StatusBadRequest, http.StatusTooManyRequests}))
		By("the bucket refills with time")
		lw.clock.Step(10 * time.Second)
		resp, err := http.Get(limited.URL + ws.CallbackPath)
		Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
	})
})

// offerLogin is what the manager does when it publishes a link: a fresh
// nonce in status.authorization, no login Secret pending. It waits until
// the receiver's cache sees it.
// staleChannelCache serves channels without their login offer, as a cache
// that has not seen the manager's last status write; everything else
// comes from the real cache.
type staleChannelCache struct{ client.Reader }

func (c staleChannelCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.Reader.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	if ch, ok := obj.(*igv1.InstagramChannel); ok {
		ch.Status.Authorization = nil
	}
	return nil
}

func newStaleChannelReceiver(w *loginWorld) *httptest.Server {
	o := ws.LoginOptions{BurstPerIP: 1000, Burst: 1000, OutcomeWait: -1}
	o.Instagram = instagram.NewClients(instagram.Config{GraphURL: w.igURL, APIURL: w.igURL, OAuthURL: w.igURL, RatePerSecond: -1, Clock: w.clock})
	return httptest.NewServer(ws.New(ws.Options{
		Client:                   k8s,
		Cache:                    staleChannelCache{mgrCache},
		APIReader:                k8s,
		ClusterResourceNamespace: clusterNS,
		Clock:                    w.clock,
		Logger:                   logf.Log.WithName("login-stale"),
		Login:                    o,
	}))
}

// fakeManagerConsumesLogin plays the manager's part once a login Secret for
// the channel appears: it clears the authorization (the nonce is spent) and
// sets the Ready condition the reconcile ended in. It returns a stop func.
func fakeManagerConsumesLogin(name string, ready metav1.ConditionStatus, reason, message string) func() {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		_ = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			if loginSecretOf(name) == nil {
				return false, nil
			}
			ch := &igv1.InstagramChannel{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: loginNS, Name: name}, ch); err != nil {
				return false, nil
			}
			ch.Status.Authorization = nil
			meta.SetStatusCondition(&ch.Status.Conditions, metav1.Condition{Type: igv1.ConditionReady, Status: ready, Reason: reason, Message: message, ObservedGeneration: ch.Generation})
			return k8s.Status().Update(ctx, ch) == nil, nil
		})
	}()
	return cancel
}

func offerLogin(name string) {
	GinkgoHelper()
	ctx := context.Background()
	Expect(client.IgnoreNotFound(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: loginKey(name).Namespace, Name: loginKey(name).Name}}))).To(Succeed())
	nonce, err := oauthstate.NewNonce()
	Expect(err).NotTo(HaveOccurred())
	ch := &igv1.InstagramChannel{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: loginNS, Name: name}, ch)).To(Succeed())
	ch.Status.Authorization = &igv1.AuthorizationStatus{Nonce: nonce, IssuedAt: &metav1.Time{Time: lw.clock.Now()}}
	Expect(k8s.Status().Update(ctx, ch)).To(Succeed())
	Eventually(func(g Gomega) {
		var cached igv1.InstagramChannel
		g.Expect(mgrCache.Get(ctx, client.ObjectKeyFromObject(ch), &cached)).To(Succeed())
		g.Expect(cached.Status.Authorization).NotTo(BeNil())
		g.Expect(cached.Status.Authorization.Nonce).To(Equal(nonce))
		var s corev1.Secret
		err := k8s.Get(ctx, loginKey(name), &s)
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

func nonceOf(name string) string {
	GinkgoHelper()
	ch := &igv1.InstagramChannel{}
	Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: loginNS, Name: name}, ch)).To(Succeed())
	return ch.Status.Authorization.Nonce
}

func signState(name, nonce, secret string, ttl time.Duration) string {
	GinkgoHelper()
	s, err := oauthstate.Sign([]byte(secret), oauthstate.State{
		Namespace: loginNS, Name: name, Nonce: nonce, ExpiresAt: lw.clock.Now().Add(ttl).Unix(),
	})
	Expect(err).NotTo(HaveOccurred())
	return s
}

// authorizeURL is the link the manager publishes for a channel.
func authorizeURL(name, nonce, secret string) string {
	return lw.api.AuthorizeURL(instagram.AuthorizeParams{
		AppID: loginAppID, RedirectURI: loginRedirect, Scopes: fake.DefaultScopes,
		State: signState(name, nonce, secret, oauthstate.TTL),
	})
}

// approve plays the person approving on Instagram's page; it returns the
// query Instagram appends to the redirect URI.
func approve(link, userID string) url.Values {
	GinkgoHelper()
	loc, err := lw.ig.AuthorizeRedirect(link, userID)
	Expect(err).NotTo(HaveOccurred())
	u, err := url.Parse(loc)
	Expect(err).NotTo(HaveOccurred())
	Expect(u.Scheme + "://" + u.Host + u.Path).To(Equal(loginRedirect))
	return u.Query()
}

// callback is the browser arriving at the receiver's callback.
func callback(q url.Values) (int, string) {
	GinkgoHelper()
	resp, err := http.Get(lw.receiver.URL + ws.CallbackPath + "?" + q.Encode())
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.Header.Get("Content-Type")).To(Equal("text/html; charset=utf-8"))
	Expect(resp.Header.Get("Cache-Control")).To(Equal("no-store"))
	body := string(b)
	Expect(body).NotTo(ContainSubstring(loginSecret))
	Expect(body).NotTo(ContainSubstring(loginPrevious))
	if c := q.Get("code"); len(c) > 8 {
		Expect(body).NotTo(ContainSubstring(strings.TrimSuffix(c, "#_")))
	}
	if s := q.Get("state"); len(s) > 20 {
		Expect(body).NotTo(ContainSubstring(s))
	}
	return resp.StatusCode, body
}

// loginKey is where the receiver hands over a login for a channel of
// loginNS: the operator's namespace, never the channel's.
func loginKey(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: clusterNS, Name: names.LoginSecretName(loginNS, name)}
}

// loginSecretOf reads the channel's login Secret from the API server.
func loginSecretOf(name string) *corev1.Secret {
	GinkgoHelper()
	s := &corev1.Secret{}
	err := k8s.Get(context.Background(), loginKey(name), s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	return s
}
