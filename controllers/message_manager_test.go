package controllers

import (
	"context"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

		mgr, _ := startMessageManager(e, "manager-a")
		ctx := e.ctx

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

		By("Secrets the operator neither manages nor references never enter the cache")
		other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "unrelated"},
			StringData: map[string]string{"password": "not for the operator"}}
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
		Consistently(func() bool {
			return apierrors.IsNotFound(mgr.GetCache().Get(ctx, client.ObjectKeyFromObject(other), &corev1.Secret{}))
		}).WithTimeout(time.Second).Should(BeTrue())
	})

	It("hands a send over between two managers without a second send or an intermediate failure", func() {
		e := newMessageEnv()
		// Instagram takes the message, then answers only when the test
		// lets it: the send is in flight while the leader changes.
		release := make(chan struct{})
		e.ig.FailNext(fake.EndpointSend, 1, fake.Fault{AfterProcessing: true, Hold: release})
		phases := watchPhases(e)

		_, stopA := startMessageManager(e, "manager-a")
		m := e.outgoing("handed over")
		Eventually(func() int { return len(e.ig.Sent()) }).Should(Equal(1))
		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseSending))
		Expect(got.Status.SendLease).NotTo(BeNil())
		Expect(got.Status.SendLease.Holder).To(Equal("manager-a"))

		By("the old leader stops while its send is in flight; a new one starts")
		stoppedA := stopA()
		startMessageManager(e, "manager-b")
		Consistently(func() igv1.Phase { return e.get(m.Name).Status.Phase }).
			WithTimeout(2*time.Second).Should(Equal(igv1.PhaseSending), "the new leader respects the live lease")

		By("Instagram answers: the old leader records it, the new one finishes the message")
		close(release)
		Eventually(stoppedA).WithTimeout(30 * time.Second).Should(BeClosed())
		Eventually(func() map[string]string { return e.get(m.Name).Labels }).Should(HaveKeyWithValue(igv1.LabelDone, "true"))
		got = e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(got.Status.MessageID).NotTo(BeEmpty())
		Expect(got.Status.SendLease).To(BeNil())
		Expect(e.ig.Sent()).To(HaveLen(1), "exactly one send in Instagram's log")
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))
		Expect(phases()).NotTo(ContainElement(igv1.PhaseFailed), "no intermediate Failed")
	})
})

// watchPhases records every phase the namespace's messages pass through,
// as a watcher (a bot, kubectl get -w) would see them.
func watchPhases(e *messageEnv) func() []igv1.Phase {
	GinkgoHelper()
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
	w, err := wc.Watch(e.ctx, &igv1.InstagramMessageList{}, client.InNamespace(e.ns))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(w.Stop)
	var (
		mu   sync.Mutex
		seen []igv1.Phase
	)
	go func() {
		for ev := range w.ResultChan() {
			if m, ok := ev.Object.(*igv1.InstagramMessage); ok {
				mu.Lock()
				seen = append(seen, m.Status.Phase)
				mu.Unlock()
			}
		}
	}()
	return func() []igv1.Phase {
		mu.Lock()
		defer mu.Unlock()
		return append([]igv1.Phase(nil), seen...)
	}
}

// startMessageManager runs a message reconciler in a manager wired as
// cmd/manager wires it (CacheOptions, restricted to the test's namespace),
// with its own identity in send leases. stop cancels the manager and
// returns a channel closed once it has stopped.
func startMessageManager(e *messageEnv, identity string) (mgr ctrl.Manager, stop func() <-chan struct{}) {
	GinkgoHelper()
	opts := CacheOptions()
	opts.DefaultNamespaces = map[string]cache.Config{e.ns: {}}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 testScheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
		Cache:                  opts,
	})
	Expect(err).NotTo(HaveOccurred())
	r := &InstagramMessageReconciler{
		Client: mgr.GetClient(), Scheme: testScheme, Clock: e.clock, Instagram: e.clients,
		Recorder: e.rec, Options: MessageOptions{Identity: identity},
	}
	Expect(r.SetupWithManager(mgr)).To(Succeed())
	ctx, cancel := context.WithCancel(e.ctx)
	var startErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		startErr = mgr.Start(ctx)
	}()
	stop = func() <-chan struct{} {
		cancel()
		return done
	}
	DeferCleanup(func() {
		Eventually(stop()).WithTimeout(30 * time.Second).Should(BeClosed())
		Expect(startErr).NotTo(HaveOccurred())
	})
	return mgr, stop
}

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
