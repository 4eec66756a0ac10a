package controllers

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

// The reconciler wired into a manager as cmd/manager does: the message
// cache holds only unfinished outgoing messages, and a channel becoming
// Ready wakes the messages that wait for it.
var _ = Describe("InstagramMessage controller in a manager", func() {
	It("sends a waiting message when its channel becomes Ready, once, and drops it from the cache", func() {
		e := newMessageEnv()
		e.setChannelReady(e.channel, false, igv1.ReasonAwaitingAuthorization, "waiting for Business Login")

		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:                 testScheme,
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
			Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
			Cache: cache.Options{
				DefaultNamespaces: map[string]cache.Config{e.ns: {}},
				ByObject: map[client.Object]cache.ByObject{
					&igv1.InstagramMessage{}: {Label: MessageCacheSelector()},
					&corev1.Secret{}:         {Label: labels.SelectorFromSet(labels.Set{igv1.LabelWatch: "true"})},
				},
			},
		})
		Expect(err).NotTo(HaveOccurred())
		r := &InstagramMessageReconciler{
			Client: mgr.GetClient(), Scheme: testScheme, Clock: e.clock, Instagram: e.clients,
		}
		Expect(r.SetupWithManager(mgr)).To(Succeed())
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- mgr.Start(ctx) }()
		DeferCleanup(func() {
			cancel()
			Eventually(done).WithTimeout(30 * time.Second).Should(Receive(BeNil()))
		})

		m := e.outgoing("sent through the manager")
		key := types.NamespacedName{Namespace: e.ns, Name: m.Name}
		Eventually(func() string { return e.get(m.Name).Status.Reason }).Should(Equal(igv1.ReasonChannelNotReady))
		Expect(e.get(m.Name).Status.Message).To(ContainSubstring("AwaitingAuthorization"))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(BeZero())

		e.setChannelReady(e.channel, true, igv1.ReasonReady, "connected")
		Eventually(func() igv1.Phase { return e.get(m.Name).Status.Phase }).Should(Equal(igv1.PhaseSent))
		Eventually(func() bool {
			return apierrors.IsNotFound(mgr.GetCache().Get(ctx, key, &igv1.InstagramMessage{}))
		}).Should(BeTrue(), "a finished message leaves the manager's cache")
		Consistently(func() int { return e.ig.CallCount(fake.EndpointSend) }).
			WithTimeout(time.Second).Should(Equal(1))

		By("receiver-written incoming messages never enter the cache")
		in := labelledIncoming(e)
		Consistently(func() bool {
			return apierrors.IsNotFound(mgr.GetCache().Get(ctx, client.ObjectKeyFromObject(in), &igv1.InstagramMessage{}))
		}).WithTimeout(time.Second).Should(BeTrue())
	})
})

func labelledIncoming(e *messageEnv) *igv1.InstagramMessage {
	GinkgoHelper()
	return e.outgoing("", func(m *igv1.InstagramMessage) {
		m.Spec.Direction = igv1.DirectionIncoming
		m.Spec.Text = "hello from the customer"
		m.Labels = map[string]string{
			igv1.LabelChannel: e.channel, igv1.LabelDirection: igv1.DirectionLabelIncoming,
		}
	})
}
