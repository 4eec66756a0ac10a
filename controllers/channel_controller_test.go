package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
)

const day = 24 * time.Hour

var _ = Describe("InstagramChannel token adoption", func() {
	It("exchanges a short-lived initial token, stores it, subscribes, then stays quiet", func() {
		e := newChannelEnv()
		e.createApp()
		acc := e.newAccount("acme")
		e.initialSecret("seed", e.shortLived(acc.UserID), nil)
		e.newChannel("support", withInitial("seed"))
		start := e.clock.Now()

		res := e.reconcile("support")

		ch := e.channel("support")
		Expect(ch.Finalizers).To(ContainElement(igv1.ChannelFinalizer))
		Expect(ch.Status.ObservedGeneration).To(Equal(ch.Generation))
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonSucceeded)
		expectCondition(ch, igv1.ConditionWebhookSubscribed, metav1.ConditionTrue, igv1.ReasonSubscribed)
		expectNoCondition(ch, igv1.ConditionReconciling)
		expectNoCondition(ch, igv1.ConditionStalled)
		Expect(kstatusOf(ch)).To(Equal(status.CurrentStatus))

		Expect(ch.Status.Account).NotTo(BeNil())
		Expect(ch.Status.Account.UserID).To(Equal(acc.UserID))
		Expect(ch.Status.Account.Username).To(Equal("acme"))
		tok := ch.Status.Token
		Expect(tok.SecretName).To(Equal("support-instagram-token"))
		Expect(tok.ExpiresAt.Time).To(BeTemporally("==", start.Add(60*day)))
		Expect(tok.RefreshedAt.Time).To(BeTemporally("==", start))
		Expect(tok.NextRefreshAt.Time).To(BeTemporally("<=", start.Add(40*day)))
		Expect(tok.NextRefreshAt.Time).To(BeTemporally(">=", start.Add(40*day-time.Hour)))
		Expect(tok.InitialSecretHash).To(HavePrefix("hmac-sha256:"), "a keyed MAC, never a plain hash of the Secret")
		Expect(ch.Status.SubscribedFields).To(Equal(defaultFields()))
		Expect(e.ig.Subscriptions(acc.UserID)).To(Equal(defaultFields()))
		Expect(res.RequeueAfter).To(BeNumerically(">", 0))
		Expect(res.RequeueAfter).To(BeNumerically("<=", 11*time.Minute))

		managed := e.secret("support-instagram-token")
		Expect(managed.Type).To(Equal(corev1.SecretType(igv1.TokenSecretType)))
		Expect(managed.Labels).To(HaveKeyWithValue(igv1.LabelChannel, "support"))
		Expect(managed.Labels).To(HaveKeyWithValue(igv1.LabelWatch, "true"))
		Expect(metav1.IsControlledBy(managed, ch)).To(BeTrue())
		Expect(managed.Data).To(HaveKeyWithValue(igv1.TokenSecretKeyUserID, []byte(acc.UserID)))
		Expect(managed.Data).To(HaveKeyWithValue(igv1.TokenSecretKeyExpiresAt, []byte(tok.ExpiresAt.UTC().Format(time.RFC3339))))
		info, ok := e.ig.Token(string(managed.Data[igv1.TokenSecretKeyAccessToken]))
		Expect(ok).To(BeTrue())
		Expect(info.LongLived).To(BeTrue())

		Expect(e.secret("seed").Labels).To(HaveKeyWithValue(igv1.LabelWatch, "true"), "a referenced Secret is labelled for the cache")
		Expect(e.eventsWith("Normal " + igv1.EventTokenExchanged)).To(HaveLen(1))
		Expect(e.eventsWith("Normal " + igv1.EventSubscribed)).To(HaveLen(1))

		By("reconciling again with nothing changed: no API write, no Instagram call")
		calls := len(e.ig.Calls())
		e.writes.Store(0)
		for range 3 {
			e.clock.Step(time.Minute)
			e.reconcile("support")
		}
		Expect(e.writes.Load()).To(BeZero())
		Expect(e.ig.Calls()).To(HaveLen(calls))
	})

	It("adopts a young long-lived token as is and learns its expiry by refreshing once allowed", func() {
		e := newChannelEnv()
		e.createApp()
		acc := e.newAccount("young")
		e.initialSecret("seed", e.longLived(acc.UserID), nil)
		e.newChannel("support", withInitial("seed"))
		start := e.clock.Now()

		e.reconcile("support")

		ch := e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		By("the expiry is unknown, and the channel says so instead of assuming one")
		Expect(ch.Status.Token.ExpiresAt).To(BeNil())
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonExpiryUnknown)
		Expect(ch.Status.Token.NextRefreshAt.Time).To(BeTemporally("==", start.Add(day)))
		Expect(e.secret("support-instagram-token").Data).NotTo(HaveKey(igv1.TokenSecretKeyExpiresAt))
		Expect(e.eventsWith("Normal " + igv1.EventTokenExchanged)).To(ContainElement(ContainSubstring("did not tell its expiry")))

		e.clock.SetTime(start.Add(day))
		e.reconcile("support")
		ch = e.channel("support")
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(2), "one refused at adoption, one now")
		Expect(ch.Status.Token.ExpiresAt.Time).To(BeTemporally("==", start.Add(61*day)))
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonSucceeded)
	})

	It("keeps the refresh that learns an unknown expiry across a spec edit and a failing refresh", func() {
		e := newChannelEnv()
		e.createApp()
		acc := e.newAccount("unknown")
		e.initialSecret("seed", e.longLived(acc.UserID), nil)
		e.newChannel("support", withInitial("seed"))
		start := e.clock.Now()
		e.reconcile("support")
		Expect(e.channel("support").Status.Token.ExpiresAt).To(BeNil())

		By("a spec edit recomputes the refresh time; it stays the learning one")
		ch := e.channel("support")
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.RefreshBefore = &metav1.Duration{Duration: 240 * time.Hour}
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
		e.clock.Step(time.Hour)
		e.reconcile("support")
		ch = e.channel("support")
		Expect(ch.Status.Token.NextRefreshAt.Time).To(BeTemporally("==", start.Add(day)))
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonExpiryUnknown)
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(1), "no refresh before Instagram allows it")

		By("the learning refresh fails once, backs off, and is tried again")
		e.ig.FailNext(fake.EndpointRefreshToken, 1, fake.Fault{HTTPStatus: 500})
		e.clock.SetTime(start.Add(day))
		e.reconcile("support")
		ch = e.channel("support")
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(2))
		Expect(ch.Status.Token.ExpiresAt).To(BeNil())
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonExpiryUnknown)

		e.clock.Step(Backoff(1))
		e.reconcile("support")
		ch = e.channel("support")
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(3))
		Expect(ch.Status.Token.ExpiresAt).NotTo(BeNil(), "the expiry is learnt")
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonSucceeded)
	})

	It("takes the expiry of a long-lived token from the initial Secret's expiresAt", func() {
		e := newChannelEnv()
		e.createApp()
		acc := e.newAccount("dated")
		expires := e.clock.Now().Add(50 * day)
		e.initialSecret("seed", e.longLived(acc.UserID), map[string]string{"expiresAt": expires.Format(time.RFC3339)})
		e.newChannel("support", withInitial("seed"))

		e.reconcile("support")

		ch := e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(ch.Status.Token.ExpiresAt.Time).To(BeTemporally("==", expires))
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(BeZero())
	})

	It("refreshes an adopted long-lived token that is old enough right away", func() {
		e := newChannelEnv()
		e.createApp()
		acc := e.newAccount("old")
		e.initialSecret("seed", e.longLived(acc.UserID), nil)
		e.clock.Step(2 * day)
		e.newChannel("support", withInitial("seed"))

		e.reconcile("support")

		ch := e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(ch.Status.Token.ExpiresAt.Time).To(BeTemporally("==", e.clock.Now().Add(60*day)))
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(1))
	})

	It("adopts a changed initial Secret again", func() {
		e := newChannelEnv()
		acc := e.adopt("support")
		first := string(e.secret("support-instagram-token").Data[igv1.TokenSecretKeyAccessToken])
		hash := e.channel("support").Status.Token.InitialSecretHash

		e.updateSecret("support-seed", map[string]string{igv1.TokenSecretKeyAccessToken: e.shortLived(acc.UserID)})
		e.reconcile("support")

		ch := e.channel("support")
		Expect(ch.Status.Token.InitialSecretHash).NotTo(Equal(hash))
		Expect(string(e.secret("support-instagram-token").Data[igv1.TokenSecretKeyAccessToken])).NotTo(Equal(first))
		Expect(e.ig.CallCount(fake.EndpointExchangeToken)).To(Equal(2))
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
	})

	It("waits for authorization without a token, then consumes a completed login", func() {
		e := newChannelEnv()
		e.createApp()
		acc := e.newAccount("login")
		e.newChannel("support")

		e.reconcile("support")
		ch := e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization)
		expectCondition(ch, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonAwaitingAuthorization)
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization)
		Expect(kstatusOf(ch)).To(Equal(status.FailedStatus))
		Expect(e.ig.Calls()).To(BeEmpty())

		e.loginSecret("support", e.shortLived(acc.UserID))
		e.reconcile("support")
		ch = e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(e.secretGone(names.LoginSecretName(e.ns, "support"))).To(BeTrue(), "the login Secret is consumed")
		Expect(e.secret("support-instagram-token").Data).To(HaveKeyWithValue(igv1.TokenSecretKeyUserID, []byte(acc.UserID)))

		By("deleting the managed Secret without an initial Secret: a new login is needed")
		Expect(k8sClient.Delete(e.ctx, e.secret("support-instagram-token"))).To(Succeed())
		e.reconcile("support")
		ch = e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization)
	})

	It("recreates a deleted managed Secret from the initial Secret", func() {
		e := newChannelEnv()
		e.createApp()
		acc := e.newAccount("recreate")
		e.initialSecret("seed", e.longLived(acc.UserID), nil)
		e.clock.Step(2 * day)
		e.newChannel("support", withInitial("seed"))
		e.reconcile("support")
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)

		Expect(k8sClient.Delete(e.ctx, e.secret("support-instagram-token"))).To(Succeed())
		e.reconcile("support")

		managed := e.secret("support-instagram-token")
		Expect(managed.Data[igv1.TokenSecretKeyAccessToken]).NotTo(BeEmpty())
		Expect(managed.Data).To(HaveKeyWithValue(igv1.TokenSecretKeyUserID, []byte(acc.UserID)))
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
	})

	It("never overwrites a Secret of the same name that it does not own", func() {
		e := newChannelEnv()
		e.createApp()
		acc := e.newAccount("conflict")
		e.initialSecret("seed", e.shortLived(acc.UserID), nil)
		Expect(k8sClient.Create(e.ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "support-instagram-token"},
			Data:       map[string][]byte{"owner": []byte("someone else")},
		})).To(Succeed())
		e.newChannel("support", withInitial("seed"))

		e.reconcile("support")
		e.reconcile("support")

		ch := e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonSecretConflict)
		expectCondition(ch, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonSecretConflict)
		Expect(e.secret("support-instagram-token").Data).To(Equal(map[string][]byte{"owner": []byte("someone else")}))
		Expect(e.eventsWith("Warning " + igv1.EventSecretConflict)).To(HaveLen(1))
		Expect(e.ig.Calls()).To(BeEmpty())
	})
})

var _ = Describe("InstagramChannel token refresh", func() {
	It("refreshes exactly when due, not a second before", func() {
		e := newChannelEnv()
		e.adopt("support")
		before := e.channel("support").Status.Token
		next := before.NextRefreshAt.Time
		oldToken := string(e.secret("support-instagram-token").Data[igv1.TokenSecretKeyAccessToken])

		e.clock.SetTime(next.Add(-time.Second))
		res := e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(BeZero())
		Expect(res.RequeueAfter).To(Equal(time.Second))

		e.clock.SetTime(next)
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(1))
		ch := e.channel("support")
		Expect(ch.Status.Token.RefreshedAt.Time).To(BeTemporally("==", next))
		Expect(ch.Status.Token.ExpiresAt.Time).To(BeTemporally("==", next.Add(60*day)))
		Expect(ch.Status.Token.NextRefreshAt.Time).To(BeTemporally(">", next.Add(39*day)))
		managed := e.secret("support-instagram-token")
		Expect(string(managed.Data[igv1.TokenSecretKeyAccessToken])).NotTo(Equal(oldToken))
		Expect(string(managed.Data[igv1.TokenSecretKeyExpiresAt])).To(Equal(next.Add(60 * day).UTC().Format(time.RFC3339)))
		Expect(e.eventsWith("Normal " + igv1.EventTokenRefreshed)).To(HaveLen(1))
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
	})

	It("keeps status true to the stored token when a refreshed token cannot be stored", func() {
		e := newChannelEnv()
		e.adopt("support")
		before := e.channel("support").Status.Token
		oldToken := string(e.secret("support-instagram-token").Data[igv1.TokenSecretKeyAccessToken])

		e.clock.SetTime(before.NextRefreshAt.Time)
		e.failSecretWrites.Store(1)
		_, err := e.r.Reconcile(e.logCtx(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: e.ns, Name: "support"}})
		Expect(err).To(HaveOccurred())
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(1))
		ch := e.channel("support")
		Expect(ch.Status.Token.ExpiresAt.Time).To(BeTemporally("==", before.ExpiresAt.Time), "status still describes the token in the Secret")
		Expect(ch.Status.Token.NextRefreshAt.Time).To(BeTemporally("==", before.NextRefreshAt.Time), "the refresh is still due")
		Expect(string(e.secret("support-instagram-token").Data[igv1.TokenSecretKeyAccessToken])).To(Equal(oldToken))

		By("the next reconcile refreshes again and stores it")
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(2))
		ch = e.channel("support")
		managed := e.secret("support-instagram-token")
		Expect(string(managed.Data[igv1.TokenSecretKeyAccessToken])).NotTo(Equal(oldToken))
		Expect(string(managed.Data[igv1.TokenSecretKeyExpiresAt])).To(Equal(ch.Status.Token.ExpiresAt.UTC().Format(time.RFC3339)))
	})

	It("follows the Secret when the status describes a token the Secret does not hold", func() {
		e := newChannelEnv()
		e.adopt("support")
		ch := e.channel("support")
		stored := ch.Status.Token.ExpiresAt.Time
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Status.Token.ExpiresAt = &metav1.Time{Time: stored.Add(40 * day)}
		ch.Status.Token.NextRefreshAt = &metav1.Time{Time: stored.Add(20 * day)}
		Expect(k8sClient.Status().Patch(e.ctx, ch, patch)).To(Succeed())

		e.reconcile("support")
		ch = e.channel("support")
		Expect(ch.Status.Token.ExpiresAt.Time).To(BeTemporally("==", stored))
		Expect(ch.Status.Token.NextRefreshAt.Time).To(BeTemporally("<", stored))
	})

	It("never refreshes before the token is old enough, whatever refreshBefore says", func() {
		e := newChannelEnv()
		e.adopt("support", func(ch *igv1.InstagramChannel) {
			ch.Spec.RefreshBefore = &metav1.Duration{Duration: 1416 * time.Hour}
		})
		tok := e.channel("support").Status.Token
		Expect(tok.NextRefreshAt.Time).To(BeTemporally("==", tok.RefreshedAt.Add(day)))

		e.clock.SetTime(tok.RefreshedAt.Add(day - time.Second))
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(BeZero())

		e.clock.SetTime(tok.RefreshedAt.Add(day))
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(1))
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
	})

	It("backs off after failed refreshes and recovers", func() {
		e := newChannelEnv()
		e.adopt("support")
		next := e.channel("support").Status.Token.NextRefreshAt.Time
		e.ig.FailNext(fake.EndpointRefreshToken, 2, fake.Fault{HTTPStatus: 500})

		e.clock.SetTime(next)
		res := e.reconcile("support")
		ch := e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonRefreshFailing)
		expectCondition(ch, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonRefreshFailing)
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonSucceeded)
		expectNoCondition(ch, igv1.ConditionStalled)
		Expect(kstatusOf(ch)).To(Equal(status.InProgressStatus))
		Expect(ch.Status.Token.Failures).To(Equal(int32(1)))
		Expect(res.RequeueAfter).To(Equal(30 * time.Second))
		Expect(e.eventsWith("Warning " + igv1.EventRefreshFailed)).To(HaveLen(1))

		By("a reconcile within the backoff makes no call")
		e.clock.Step(10 * time.Second)
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(1))

		e.clock.SetTime(next.Add(30 * time.Second))
		res = e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(2))
		Expect(e.channel("support").Status.Token.Failures).To(Equal(int32(2)))
		Expect(res.RequeueAfter).To(Equal(time.Minute))

		e.clock.SetTime(next.Add(90 * time.Second))
		e.reconcile("support")
		ch = e.channel("support")
		Expect(e.ig.CallCount(fake.EndpointRefreshToken)).To(Equal(3))
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(ch.Status.Token.Failures).To(BeZero())
		Expect(ch.Status.Token.LastFailureAt).To(BeNil())
		Expect(kstatusOf(ch)).To(Equal(status.CurrentStatus))
	})

	It("waits as long as Instagram asks when rate limited", func() {
		e := newChannelEnv()
		e.adopt("support")
		next := e.channel("support").Status.Token.NextRefreshAt.Time
		e.ig.FailNext(fake.EndpointRefreshToken, 1, fake.Fault{Code: 4, Message: "Application request limit reached", RetryAfter: "300"})

		e.clock.SetTime(next)
		res := e.reconcile("support")

		ch := e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonRateLimited)
		expectCondition(ch, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonRateLimited)
		Expect(res.RequeueAfter).To(Equal(5 * time.Minute))
	})

	It("stops at code 190 mid-life and makes no call until a new token arrives", func() {
		e := newChannelEnv()
		acc := e.adopt("support")
		e.ig.InvalidateAccountTokens(acc.UserID, 460)

		e.annotate("support", "first")
		res := e.reconcile("support")

		ch := e.channel("support")
		ready := expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonTokenInvalid)
		Expect(ready.Message).To(ContainSubstring("190/460"))
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionFalse, igv1.ReasonTokenInvalid)
		expectCondition(ch, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonTokenInvalid)
		expectNoCondition(ch, igv1.ConditionReconciling)
		Expect(kstatusOf(ch)).To(Equal(status.FailedStatus))
		Expect(ch.Status.LastHandledReconcileAt).To(Equal("first"))
		Expect(res.RequeueAfter).To(BeZero())
		Expect(e.eventsWith("Warning " + igv1.EventReauthorizationRequired)).To(HaveLen(1))

		By("no Instagram call, even past the refresh time or when asked to reconcile")
		calls := len(e.ig.Calls())
		e.clock.SetTime(ch.Status.Token.NextRefreshAt.Add(time.Hour))
		e.reconcile("support")
		e.annotate("support", "second")
		e.reconcile("support")
		Expect(e.ig.Calls()).To(HaveLen(calls))
		Expect(e.eventsWith("Warning " + igv1.EventReauthorizationRequired)).To(HaveLen(1))

		By("a new initial token brings the channel back")
		e.updateSecret("support-seed", map[string]string{igv1.TokenSecretKeyAccessToken: e.shortLived(acc.UserID)})
		e.reconcile("support")
		ch = e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonSucceeded)
		Expect(e.ig.Subscriptions(acc.UserID)).To(Equal(defaultFields()))
	})

	It("reports an expired token without calling Instagram", func() {
		e := newChannelEnv()
		e.adopt("support")
		calls := len(e.ig.Calls())

		e.clock.SetTime(e.channel("support").Status.Token.ExpiresAt.Time)
		e.reconcile("support")

		ch := e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonTokenExpired)
		expectCondition(ch, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonTokenExpired)
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionFalse, igv1.ReasonTokenExpired)
		Expect(kstatusOf(ch)).To(Equal(status.FailedStatus))
		Expect(e.ig.Calls()).To(HaveLen(calls))
		Expect(e.eventsWith("Warning " + igv1.EventReauthorizationRequired)).To(HaveLen(1))
	})
})

var _ = Describe("InstagramChannel subscription", func() {
	It("repairs a subscription removed outside, on resync or when asked", func() {
		e := newChannelEnv()
		acc := e.adopt("support")
		e.ig.RemoveSubscription(acc.UserID)

		e.clock.Step(time.Minute)
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointSubscriptions)).To(BeZero(), "checked at most every resync interval")

		e.clock.Step(11 * time.Minute)
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointSubscriptions)).To(Equal(1))
		Expect(e.ig.Subscriptions(acc.UserID)).To(Equal(defaultFields()))
		Expect(e.eventsWith("Normal " + igv1.EventSubscribed)).To(HaveLen(2))

		By("the requestedAt annotation forces a check")
		e.ig.RemoveSubscription(acc.UserID)
		e.annotate("support", "now")
		e.reconcile("support")
		Expect(e.ig.Subscriptions(acc.UserID)).To(Equal(defaultFields()))
		Expect(e.channel("support").Status.LastHandledReconcileAt).To(Equal("now"))
	})

	It("checks an unchanged subscription without writing, and keeps Ready when the check fails for a while", func() {
		e := newChannelEnv()
		e.adopt("support")
		before := e.channel("support").ResourceVersion

		e.clock.Step(11 * time.Minute)
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointSubscriptions)).To(Equal(1))
		Expect(e.channel("support").ResourceVersion).To(Equal(before), "a drift check that finds nothing writes nothing")

		e.ig.FailNext(fake.EndpointSubscriptions, 1, fake.Fault{HTTPStatus: 503})
		e.clock.Step(11 * time.Minute)
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointSubscriptions)).To(Equal(2))
		ch := e.channel("support")
		Expect(ch.ResourceVersion).To(Equal(before), "a failed drift check leaves the channel as it was")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		expectCondition(ch, igv1.ConditionWebhookSubscribed, metav1.ConditionTrue, igv1.ReasonSubscribed)

		By("failing checks back off: 30s, then 1m, then 2m, also when something else wakes the channel")
		e.ig.FailNext(fake.EndpointSubscriptions, 2, fake.Fault{HTTPStatus: 503})
		Expect(e.reconcile("support").RequeueAfter).To(Equal(30 * time.Second))
		Expect(e.ig.CallCount(fake.EndpointSubscriptions)).To(Equal(2), "not before the backoff ran out")
		e.clock.Step(30 * time.Second)
		Expect(e.reconcile("support").RequeueAfter).To(Equal(time.Minute))
		Expect(e.ig.CallCount(fake.EndpointSubscriptions)).To(Equal(3))
		e.clock.Step(30 * time.Second)
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointSubscriptions)).To(Equal(3), "not before the backoff ran out")
		e.clock.Step(30 * time.Second)
		Expect(e.reconcile("support").RequeueAfter).To(Equal(2 * time.Minute))
		Expect(e.ig.CallCount(fake.EndpointSubscriptions)).To(Equal(4))
		e.clock.Step(2 * time.Minute)
		Expect(e.reconcile("support").RequeueAfter).To(BeNumerically(">", 5*time.Minute), "a good check resets the backoff")
		Expect(e.ig.CallCount(fake.EndpointSubscriptions)).To(Equal(5))
		Expect(e.channel("support").ResourceVersion).To(Equal(before))
	})

	It("after a restart, spreads the drift checks over one interval instead of checking every channel at once", func() {
		e := newChannelEnv()
		e.adopt("support")
		restarted := &InstagramChannelReconciler{
			Client: e.r.Client, APIReader: e.r.APIReader, Scheme: e.r.Scheme, Recorder: e.r.Recorder,
			Clock: e.r.Clock, Instagram: e.r.Instagram, Authorizer: e.r.Authorizer, Options: e.r.Options,
		}
		e.r = restarted
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointSubscriptions)).To(BeZero(), "no burst of checks at start-up")

		e.clock.Step(12 * time.Minute)
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointSubscriptions)).To(Equal(1), "checked within one interval")
	})

	It("subscribes again when spec.subscribedFields changes", func() {
		e := newChannelEnv()
		acc := e.adopt("support")
		ch := e.channel("support")
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.SubscribedFields = []igv1.WebhookField{"messages", "message_edit"}
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())

		e.reconcile("support")

		ch = e.channel("support")
		Expect(ch.Status.SubscribedFields).To(Equal([]string{"message_edit", "messages"}))
		Expect(e.ig.Subscriptions(acc.UserID)).To(Equal([]string{"message_edit", "messages"}))
		expectCondition(ch, igv1.ConditionWebhookSubscribed, metav1.ConditionTrue, igv1.ReasonSubscribed)
	})
})

var _ = Describe("InstagramChannel deletion", func() {
	It("unsubscribes and lets go", func() {
		e := newChannelEnv()
		acc := e.adopt("support")
		Expect(k8sClient.Delete(e.ctx, e.channel("support"))).To(Succeed())

		e.reconcile("support")

		Expect(e.ig.CallCount(fake.EndpointUnsubscribe)).To(Equal(1))
		Expect(e.ig.Subscriptions(acc.UserID)).To(BeEmpty())
		Expect(e.eventsWith("Normal " + igv1.EventUnsubscribed)).To(HaveLen(1))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: "support"}, &igv1.InstagramChannel{}))
		}).Should(BeTrue())
	})

	It("lets go with a Warning naming the account when the token is invalid", func() {
		e := newChannelEnv()
		acc := e.adopt("support")
		e.ig.InvalidateAccountTokens(acc.UserID, 458)
		Expect(k8sClient.Delete(e.ctx, e.channel("support"))).To(Succeed())

		e.reconcile("support")

		skipped := e.eventsWith("Warning " + igv1.EventSubscriptionCleanupSkipped)
		Expect(skipped).To(HaveLen(1))
		Expect(skipped[0]).To(ContainSubstring("@acme_support"))
		Expect(skipped[0]).To(ContainSubstring(acc.UserID))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: "support"}, &igv1.InstagramChannel{}))
		}).Should(BeTrue())
	})

	It("retries a failing unsubscribe for a bounded time, then lets go", func() {
		e := newChannelEnv()
		e.adopt("support")
		e.ig.FailNext(fake.EndpointUnsubscribe, 100, fake.Fault{HTTPStatus: 503})
		Expect(k8sClient.Delete(e.ctx, e.channel("support"))).To(Succeed())

		res := e.reconcile("support")
		Expect(res.RequeueAfter).To(BeNumerically(">", 0))
		Expect(e.channel("support").Finalizers).To(ContainElement(igv1.ChannelFinalizer))

		e.clock.SetTime(e.channel("support").DeletionTimestamp.Add(CleanupTimeout))
		e.reconcile("support")
		Expect(e.eventsWith("Warning " + igv1.EventSubscriptionCleanupSkipped)).To(HaveLen(1))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: "support"}, &igv1.InstagramChannel{}))
		}).Should(BeTrue())
	})
})

var _ = Describe("InstagramChannel account ownership", func() {
	It("lets the oldest channel keep an account; the duplicate makes no further call and never unsubscribes", func() {
		e := newChannelEnv()
		acc := e.adopt("first")

		e.initialSecret("second-seed", e.shortLived(acc.UserID), nil)
		e.newChannel("second", withInitial("second-seed"))
		e.reconcile("second")

		ch := e.channel("second")
		ready := expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonDuplicateAccount)
		Expect(ready.Message).To(ContainSubstring("already served by channel first of this namespace"))
		expectCondition(ch, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonDuplicateAccount)
		expectCondition(ch, igv1.ConditionWebhookSubscribed, metav1.ConditionFalse, igv1.ReasonDuplicateAccount)
		Expect(kstatusOf(ch)).To(Equal(status.FailedStatus))
		Expect(e.ig.CallCount(fake.EndpointSubscribe)).To(Equal(1), "only the first channel subscribed")

		By("the owner's watch maps to the duplicate")
		Expect(e.r.channelsSharingAccount(e.ctx, e.channel("first"))).To(ConsistOf(
			reconcile.Request{NamespacedName: types.NamespacedName{Namespace: e.ns, Name: "second"}}))

		By("no further Instagram call, even when its refresh would be due")
		calls := len(e.ig.Calls())
		e.clock.SetTime(ch.Status.Token.NextRefreshAt.Add(time.Hour))
		e.reconcile("second")
		Expect(e.ig.Calls()).To(HaveLen(calls))

		By("deleting the duplicate leaves the owner's subscription alone")
		Expect(k8sClient.Delete(e.ctx, e.channel("second"))).To(Succeed())
		e.reconcile("second")
		Expect(e.ig.CallCount(fake.EndpointUnsubscribe)).To(BeZero())
		Expect(e.ig.Subscriptions(acc.UserID)).To(Equal(defaultFields()))
	})
})

var _ = Describe("InstagramChannel app resolution", func() {
	It("waits for a missing app without stalling", func() {
		e := newChannelEnv()
		e.newChannel("support")
		e.reconcile("support")
		ch := e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAppNotFound)
		expectCondition(ch, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonAppNotFound)
		Expect(kstatusOf(ch)).To(Equal(status.InProgressStatus))
		Expect(e.r.channelsForApp(e.ctx, &igv1.InstagramApp{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: testAppName}})).To(ConsistOf(
			reconcile.Request{NamespacedName: types.NamespacedName{Namespace: e.ns, Name: "support"}}))
	})

	It("is Stalled with InvalidNamespaceSelector when a ClusterInstagramApp's selector cannot be parsed", func() {
		e := newChannelEnv()
		capp := &igv1.ClusterInstagramApp{
			ObjectMeta: metav1.ObjectMeta{Name: "broken-" + e.ns},
			Spec: igv1.AppSpec{
				AppID:     e.appID,
				SecretRef: igv1.LocalObjectReference{Name: "platform-app"},
				// "In" without values is valid to the schema, not to the
				// selector parser.
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn}}},
			},
		}
		Expect(k8sClient.Create(e.ctx, capp)).To(Succeed())
		markAppReady(e.ctx, capp)
		e.newChannel("support", func(ch *igv1.InstagramChannel) {
			ch.Spec.AppRef = igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: capp.Name}
		})
		e.reconcile("support")
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonInvalidNamespaceFilter)
		expectCondition(e.channel("support"), igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonInvalidNamespaceFilter)
	})

	It("refuses a ClusterInstagramApp that does not admit the namespace, until it does", func() {
		e := newChannelEnv()
		e.ig.AddApp(e.appID, e.appSecret)
		Expect(k8sClient.Create(e.ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "platform-app"},
			Data:       map[string][]byte{igv1.AppSecretKeyAppSecret: []byte(e.appSecret), igv1.AppSecretKeyVerifyToken: []byte("v")},
		})).To(Succeed())
		capp := &igv1.ClusterInstagramApp{
			ObjectMeta: metav1.ObjectMeta{Name: "platform-" + e.ns},
			Spec: igv1.AppSpec{
				AppID:             e.appID,
				SecretRef:         igv1.LocalObjectReference{Name: "platform-app"},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"instagram": e.ns}},
			},
		}
		Expect(k8sClient.Create(e.ctx, capp)).To(Succeed())
		markAppReady(e.ctx, capp)
		e.newChannel("support", func(ch *igv1.InstagramChannel) {
			ch.Spec.AppRef = igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: capp.Name}
		})

		e.reconcile("support")
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonNamespaceNotAllowed)
		expectCondition(e.channel("support"), igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonNamespaceNotAllowed)

		ns := &corev1.Namespace{}
		Expect(k8sClient.Get(e.ctx, types.NamespacedName{Name: e.ns}, ns)).To(Succeed())
		patch := client.MergeFrom(ns.DeepCopy())
		ns.Labels["instagram"] = e.ns
		Expect(k8sClient.Patch(e.ctx, ns, patch)).To(Succeed())
		Expect(e.r.channelsForNamespace(e.ctx, ns)).To(HaveLen(1))
		Eventually(func(g Gomega) {
			got := &corev1.Namespace{}
			g.Expect(e.cache.Get(e.ctx, types.NamespacedName{Name: e.ns}, got)).To(Succeed())
			g.Expect(got.Labels).To(HaveKeyWithValue("instagram", e.ns))
		}).Should(Succeed())
		e.reconcile("support")
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization)
	})

	It("uses the rotated app secret of the app's Secret", func() {
		e := newChannelEnv()
		acc := e.adopt("support")
		Expect(e.r.channelsForSecret(e.ctx, e.secret(testAppSecretName))).To(ContainElement(
			reconcile.Request{NamespacedName: types.NamespacedName{Namespace: e.ns, Name: "support"}}))

		By("Meta has the new secret, the cluster still the old one: the exchange is refused")
		e.ig.AddApp(e.appID, "rotated-secret")
		e.loginSecret("support", e.shortLived(acc.UserID))
		e.reconcile("support")
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAppCredentialsInvalid)

		By("the app's Secret is rotated too: the login goes through")
		e.updateSecret(testAppSecretName, map[string]string{igv1.AppSecretKeyAppSecret: "rotated-secret"})
		e.reconcile("support")
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(e.secretGone(names.LoginSecretName(e.ns, "support"))).To(BeTrue())
	})
})

var _ = Describe("InstagramChannel suspend", func() {
	It("makes no Instagram call while suspended", func() {
		e := newChannelEnv()
		e.createApp()
		acc := e.newAccount("suspended")
		e.initialSecret("seed", e.shortLived(acc.UserID), nil)
		e.newChannel("support", withInitial("seed"), func(ch *igv1.InstagramChannel) { ch.Spec.Suspend = true })

		e.reconcile("support")
		e.clock.Step(90 * day)
		e.reconcile("support")

		ch := e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonSuspended)
		Expect(e.ig.Calls()).To(BeEmpty())
	})
})

var _ = Describe("InstagramChannel metrics", func() {
	It("exports token times and conditions per channel, and nothing for a deleted channel", func() {
		e := newChannelEnv()
		e.adopt("support")
		ch := e.channel("support")

		reg := prometheus.NewRegistry()
		Expect(reg.Register(NewChannelCollector(e.cache))).To(Succeed())
		gauge := func(name string, labels map[string]string) (float64, bool) {
			families, err := reg.Gather()
			Expect(err).NotTo(HaveOccurred())
			for _, f := range families {
				if f.GetName() != name {
					continue
				}
				for _, m := range f.Metric {
					if labelsMatch(m, labels) {
						return m.GetGauge().GetValue(), true
					}
				}
			}
			return 0, false
		}
		own := map[string]string{"namespace": e.ns, "channel": "support"}
		v, ok := gauge("instagram_channel_token_expiration_timestamp_seconds", own)
		Expect(ok).To(BeTrue())
		Expect(v).To(Equal(float64(ch.Status.Token.ExpiresAt.Unix())))
		v, ok = gauge("instagram_channel_next_refresh_timestamp_seconds", own)
		Expect(ok).To(BeTrue())
		Expect(v).To(Equal(float64(ch.Status.Token.NextRefreshAt.Unix())))
		v, ok = gauge("instagram_channel_condition", map[string]string{"namespace": e.ns, "channel": "support", "condition": "Ready", "status": "True"})
		Expect(ok).To(BeTrue())
		Expect(v).To(Equal(1.0))
		v, ok = gauge("instagram_channel_token_expiry_known", own)
		Expect(ok).To(BeTrue())
		Expect(v).To(Equal(1.0))

		By("a token of unknown expiry: no expiration series, expiry_known 0")
		acc := e.newAccount("unknown_expiry")
		e.initialSecret("young-seed", e.longLived(acc.UserID), nil)
		e.newChannel("young", withInitial("young-seed"))
		e.reconcile("young")
		e.syncCache()
		young := map[string]string{"namespace": e.ns, "channel": "young"}
		_, ok = gauge("instagram_channel_token_expiration_timestamp_seconds", young)
		Expect(ok).To(BeFalse())
		v, ok = gauge("instagram_channel_token_expiry_known", young)
		Expect(ok).To(BeTrue())
		Expect(v).To(Equal(0.0))

		Expect(k8sClient.Delete(e.ctx, ch)).To(Succeed())
		e.reconcile("support")
		Eventually(func() bool {
			_, found := gauge("instagram_channel_token_expiration_timestamp_seconds", own)
			return found
		}).Should(BeFalse())
	})
})

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// stubAuthorizer publishes an authorize URL as the Business Login task will.
type stubAuthorizer struct{ calls int }

func (a *stubAuthorizer) Authorize(_ context.Context, ch *igv1.InstagramChannel, req AuthorizationRequest) (string, error) {
	a.calls++
	ch.Status.AuthorizationURL = req.API.AuthorizeURL(instagram.AuthorizeParams{
		AppID: req.AppID, RedirectURI: "https://hooks.example.com/instagram/callback", State: "s",
	})
	return "open status.authorizationURL to log in", nil
}

var _ = Describe("InstagramChannel authorization hook", func() {
	It("asks the Authorizer while no token is usable and clears the URL once authorized", func() {
		e := newChannelEnv()
		auth := &stubAuthorizer{}
		e.r.Authorizer = auth
		e.createApp()
		acc := e.newAccount("hook")
		e.newChannel("support")

		e.reconcile("support")
		ch := e.channel("support")
		Expect(auth.calls).To(Equal(1))
		Expect(ch.Status.AuthorizationURL).To(ContainSubstring("client_id=" + e.appID))
		ready := expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization)
		Expect(ready.Message).To(ContainSubstring("open status.authorizationURL"))

		e.loginSecret("support", e.shortLived(acc.UserID))
		e.reconcile("support")
		ch = e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(ch.Status.AuthorizationURL).To(BeEmpty())
	})
})

var _ = Describe("InstagramChannel account takeover", func() {
	It("hands the account to the duplicate once the owner is gone", func() {
		e := newChannelEnv()
		acc := e.adopt("first")
		e.initialSecret("second-seed", e.shortLived(acc.UserID), nil)
		e.newChannel("second", withInitial("second-seed"))
		e.reconcile("second")
		expectCondition(e.channel("second"), igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonDuplicateAccount)

		Expect(k8sClient.Delete(e.ctx, e.channel("first"))).To(Succeed())
		e.reconcile("first")
		Expect(e.ig.Subscriptions(acc.UserID)).To(BeEmpty())

		e.reconcile("second")
		ch := e.channel("second")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(e.ig.Subscriptions(acc.UserID)).To(Equal(defaultFields()))
	})
})

var _ = Describe("InstagramChannel token Secret rename", func() {
	It("moves the token to the new spec.tokenSecretName and removes the old Secret", func() {
		e := newChannelEnv()
		e.adopt("support")
		token := e.secret("support-instagram-token").Data[igv1.TokenSecretKeyAccessToken]
		ch := e.channel("support")
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.TokenSecretName = "support-token"
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())

		e.reconcile("support")

		Expect(e.secret("support-token").Data).To(HaveKeyWithValue(igv1.TokenSecretKeyAccessToken, token))
		Expect(e.secretGone("support-instagram-token")).To(BeTrue())
		Expect(e.channel("support").Status.Token.SecretName).To(Equal("support-token"))
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
	})
})

var _ = Describe("InstagramChannel status written by two controllers", func() {
	It("keeps the token refusal another writer stored while a reconcile was under way", func() {
		e := newChannelEnv()
		e.adopt("support")
		ch := e.channel("support")
		e.clock.SetTime(ch.Status.Token.NextRefreshAt.Time)
		e.ig.FailNext(fake.EndpointRefreshToken, 1, fake.Fault{HTTPStatus: 500})
		// Between this reconcile's read and its status write, a send is
		// answered 190 and the message controller stops the channel.
		stop := func() {
			GinkgoHelper()
			fresh := e.channel("support")
			patch := client.MergeFrom(fresh.DeepCopy())
			markTokenRefused(fresh, "Instagram rejected the token on a send: code 190/460", e.clock.Now())
			Expect(k8sClient.Status().Patch(e.ctx, fresh, patch)).To(Succeed())
		}
		e.beforeStatusPatch.Store(&stop)

		e.reconcile("support")

		ch = e.channel("support")
		expectCondition(ch, igv1.ConditionAuthorized, metav1.ConditionFalse, igv1.ReasonTokenInvalid)
		expectCondition(ch, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonTokenInvalid)
		Expect(ch.Status.Token.Failures).To(Equal(int32(1)), "the reconcile's own changes are stored too")
		Expect(kstatusOf(ch)).NotTo(Equal(status.CurrentStatus))

		By("the next reconcile keeps the channel stopped and makes no Instagram call")
		calls := len(e.ig.Calls())
		e.clock.Step(time.Hour)
		e.reconcile("support")
		ch = e.channel("support")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonTokenInvalid)
		expectCondition(ch, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonTokenInvalid)
		Expect(e.ig.Calls()).To(HaveLen(calls))
	})
})

var _ = Describe("InstagramChannel connect race", func() {
	// otherApp is a second Meta app in the namespace, as a second team's.
	otherApp := func(e *channelEnv) string {
		GinkgoHelper()
		appID := e.appID + "7"
		e.ig.AddApp(appID, "other-secret-"+e.ns)
		Expect(k8sClient.Create(e.ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "other-app"},
			Data: map[string][]byte{
				igv1.AppSecretKeyAppSecret:   []byte("other-secret-" + e.ns),
				igv1.AppSecretKeyVerifyToken: []byte("verify-me"),
			},
		})).To(Succeed())
		app := &igv1.InstagramApp{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "other"},
			Spec:       igv1.AppSpec{AppID: appID, SecretRef: igv1.LocalObjectReference{Name: "other-app"}},
		}
		Expect(k8sClient.Create(e.ctx, app)).To(Succeed())
		markAppReady(e.ctx, app)
		return appID
	}
	withApp := func(name string) func(*igv1.InstagramChannel) {
		return func(ch *igv1.InstagramChannel) { ch.Spec.AppRef.Name = name }
	}
	// connectBoth makes two channels of one account, first (older) of the
	// env's app and second of another app, with seeds, not reconciled.
	connectBoth := func(e *channelEnv) (acc fake.Account, secondApp string) {
		GinkgoHelper()
		e.createApp()
		secondApp = otherApp(e)
		acc = e.newAccount("raced")
		e.initialSecret("first-seed", e.shortLived(acc.UserID), nil)
		second := e.ig.IssueShortLivedToken(secondApp, acc.UserID)
		e.tokens = append(e.tokens, second)
		e.initialSecret("second-seed", second, nil)
		e.newChannel("first", withInitial("first-seed"))
		// Creation times are seconds: make the order unambiguous.
		Eventually(func() bool {
			return time.Since(e.channel("first").CreationTimestamp.Time) > time.Second
		}).WithTimeout(3 * time.Second).Should(BeTrue())
		e.newChannel("second", withInitial("second-seed"), withApp("other"))
		return acc, secondApp
	}
	expectLoser := func(e *channelEnv, acc fake.Account, secondApp string) {
		GinkgoHelper()
		ch := e.channel("second")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonDuplicateAccount)
		expectCondition(ch, igv1.ConditionWebhookSubscribed, metav1.ConditionFalse, igv1.ReasonDuplicateAccount)
		Expect(ch.Status.SubscribedFields).To(BeEmpty(), "the loser keeps no subscription")
		Expect(e.ig.SubscriptionsOf(secondApp, acc.UserID)).To(BeEmpty(), "the loser leaks no subscription")
		Expect(e.ig.SubscriptionsOf(e.appID, acc.UserID)).To(Equal(defaultFields()))
		expectCondition(e.channel("first"), igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)

		By("deleting the loser makes no call and leaves the owner's subscription")
		unsubscribes := e.ig.CallCount(fake.EndpointUnsubscribe)
		Expect(k8sClient.Delete(e.ctx, e.channel("second"))).To(Succeed())
		e.reconcile("second")
		Expect(e.ig.CallCount(fake.EndpointUnsubscribe)).To(Equal(unsubscribes))
		Expect(e.ig.SubscriptionsOf(e.appID, acc.UserID)).To(Equal(defaultFields()))
	}

	It("the newer channel connecting while the older one does: the older wins, the newer never subscribes", func() {
		e := newChannelEnv()
		acc, secondApp := connectBoth(e)
		// second stores the account; before it subscribes, first connects
		// completely, with second's account not yet in the cache.
		connectFirst := func() { e.reconcile("first") }
		e.beforeStatusPatch.Store(&connectFirst)

		e.reconcile("second")

		Expect(e.ig.CallCount(fake.EndpointSubscribe)).To(Equal(1), "only the owner subscribed")
		expectLoser(e, acc, secondApp)
	})

	It("the newer channel subscribed first: it lets go of its subscription once it sees the older one", func() {
		e := newChannelEnv()
		acc, secondApp := connectBoth(e)
		e.reconcile("second")
		expectCondition(e.channel("second"), igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(e.ig.SubscriptionsOf(secondApp, acc.UserID)).To(Equal(defaultFields()))

		e.reconcile("first")
		e.syncCache()
		e.reconcile("second")

		expectLoser(e, acc, secondApp)
	})

	It("a loser of the same app forgets the subscription without removing it: it is the owner's too", func() {
		e := newChannelEnv()
		acc := e.adopt("first")
		e.initialSecret("second-seed", e.shortLived(acc.UserID), nil)
		e.newChannel("second", withInitial("second-seed"))
		// As if second had connected in the same instant and subscribed.
		ch := e.channel("second")
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Status.Account = &igv1.AccountStatus{UserID: acc.UserID, Username: acc.Username}
		ch.Status.SubscribedFields = defaultFields()
		Expect(k8sClient.Status().Patch(e.ctx, ch, patch)).To(Succeed())
		e.syncCache()

		e.reconcile("second")

		ch = e.channel("second")
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonDuplicateAccount)
		Expect(ch.Status.SubscribedFields).To(BeEmpty())
		Expect(e.ig.CallCount(fake.EndpointUnsubscribe)).To(BeZero())
		Expect(e.ig.SubscriptionsOf(e.appID, acc.UserID)).To(Equal(defaultFields()))
	})

	It("a loser deleted before it noticed removes only its own app's subscription", func() {
		e := newChannelEnv()
		acc, secondApp := connectBoth(e)
		e.reconcile("second")
		e.reconcile("first")
		e.syncCache()

		Expect(k8sClient.Delete(e.ctx, e.channel("second"))).To(Succeed())
		e.reconcile("second")

		Expect(e.ig.SubscriptionsOf(secondApp, acc.UserID)).To(BeEmpty())
		Expect(e.ig.SubscriptionsOf(e.appID, acc.UserID)).To(Equal(defaultFields()))
	})
})
