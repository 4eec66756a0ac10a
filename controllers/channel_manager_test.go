package controllers

import (
	"context"
	"net/http/httptest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

// These specs run the reconciler inside a manager, as cmd/manager does, to
// show that SetupWithManager's indexes and watches bring changes in.
var _ = Describe("InstagramChannel controller in a manager", func() {
	It("reacts to a login Secret, the requestedAt annotation and a changed initial Secret", func() {
		e := newChannelEnv()
		ctx, cancel := context.WithCancel(e.ctx)
		DeferCleanup(cancel)

		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:                 testScheme,
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
			Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{igv1.LabelWatch: "true"})},
			}},
			Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		})
		Expect(err).NotTo(HaveOccurred())
		srv := httptest.NewServer(e.ig)
		DeferCleanup(srv.Close)
		r := &InstagramChannelReconciler{
			Client:    mgr.GetClient(),
			APIReader: mgr.GetAPIReader(),
			Scheme:    mgr.GetScheme(),
			Recorder:  mgr.GetEventRecorder("instagramchannel-controller"),
			Clock:     e.clock,
			Instagram: instagram.NewClients(instagram.Config{
				GraphURL: srv.URL, APIURL: srv.URL, OAuthURL: srv.URL, RatePerSecond: -1, Clock: e.clock,
			}),
			Options: ChannelOptions{ClusterResourceNamespace: e.ns},
		}
		Expect(r.SetupWithManager(mgr)).To(Succeed())
		go func() {
			defer GinkgoRecover()
			Expect(mgr.Start(ctx)).To(Succeed())
		}()

		e.createApp()
		acc := e.newAccount("managed")
		e.newChannel("support")
		readyReason := func() string {
			ch := &igv1.InstagramChannel{}
			if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "support"}, ch); err != nil {
				return err.Error()
			}
			if c := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady); c != nil {
				return c.Reason
			}
			return ""
		}
		Eventually(readyReason).WithTimeout(20 * time.Second).Should(Equal(igv1.ReasonAwaitingAuthorization))

		By("a completed login arrives through the Secret watch")
		e.loginSecret("support", e.shortLived(acc.UserID))
		Eventually(readyReason).WithTimeout(20 * time.Second).Should(Equal(igv1.ReasonReady))
		Expect(e.ig.Subscriptions(acc.UserID)).To(Equal(defaultFields()))
		Eventually(func(g Gomega) {
			var list eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(e.ns))).To(Succeed())
			var reasons []string
			for _, ev := range list.Items {
				reasons = append(reasons, ev.Reason)
			}
			g.Expect(reasons).To(ContainElements(igv1.EventTokenExchanged, igv1.EventSubscribed))
		}).WithTimeout(20 * time.Second).Should(Succeed())

		By("the requestedAt annotation repairs a removed subscription")
		e.ig.RemoveSubscription(acc.UserID)
		e.annotate("support", "repair")
		Eventually(func() []string { return e.ig.Subscriptions(acc.UserID) }).WithTimeout(20 * time.Second).Should(Equal(defaultFields()))
		Eventually(func() string { return e.channel("support").Status.LastHandledReconcileAt }).WithTimeout(20 * time.Second).Should(Equal("repair"))

		By("an invalidated token, then a new initial Secret referenced by a spec change")
		e.ig.InvalidateAccountTokens(acc.UserID, 467)
		e.annotate("support", "check")
		Eventually(readyReason).WithTimeout(20 * time.Second).Should(Equal(igv1.ReasonTokenInvalid))
		e.initialSecret("seed", e.shortLived(acc.UserID), nil)
		ch := e.channel("support")
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.InitialTokenSecretRef = &igv1.SecretKeySelector{Name: "seed"}
		Expect(k8sClient.Patch(ctx, ch, patch)).To(Succeed())
		Eventually(readyReason).WithTimeout(20 * time.Second).Should(Equal(igv1.ReasonReady))

		By("a rotated initial Secret arrives through the watch once it is labelled")
		hash := e.channel("support").Status.Token.InitialSecretHash
		e.updateSecret("seed", map[string]string{igv1.TokenSecretKeyAccessToken: e.shortLived(acc.UserID)})
		Eventually(func() string {
			return e.channel("support").Status.Token.InitialSecretHash
		}).WithTimeout(20 * time.Second).ShouldNot(Equal(hash))
		Eventually(func(g Gomega) {
			c := meta.FindStatusCondition(e.channel("support").Status.Conditions, igv1.ConditionAuthorized)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		}).WithTimeout(20 * time.Second).Should(Succeed())
		Expect(e.ig.CallCount("exchange_token")).To(Equal(3))

		By("deleting the channel unsubscribes through the finalizer")
		Expect(k8sClient.Delete(ctx, e.channel("support"))).To(Succeed())
		Eventually(func() []string { return e.ig.Subscriptions(acc.UserID) }).WithTimeout(20 * time.Second).Should(BeEmpty())
	})
})
