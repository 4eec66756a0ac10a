package controllers

import (
	"context"
	"fmt"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

var _ = Describe("Message retention", func() {
	var e *messageEnv
	BeforeEach(func() { e = newMessageEnv() })

	// labelled creates a message of channel as the receiver or the manager
	// leaves it: labelled with its channel and direction, and an outgoing
	// one finished (done).
	labelled := func(channel string, dir igv1.Direction) *igv1.InstagramMessage {
		GinkgoHelper()
		m := e.outgoing("m", func(m *igv1.InstagramMessage) {
			m.Spec.ChannelRef.Name = channel
			m.Spec.Direction = dir
			m.Labels = map[string]string{igv1.LabelChannel: channel, igv1.LabelDirection: igv1.DirectionLabelIncoming}
			if dir == igv1.DirectionOutgoing {
				m.Labels[igv1.LabelDirection] = igv1.DirectionLabelOutgoing
				m.Labels[igv1.LabelDone] = "true"
			}
		})
		return m
	}
	exists := func(m *igv1.InstagramMessage) bool {
		GinkgoHelper()
		err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: m.Name}, &igv1.InstagramMessage{})
		Expect(client.IgnoreNotFound(err)).To(Succeed())
		return err == nil
	}
	setRetention := func(channel string, d time.Duration) {
		GinkgoHelper()
		ch := &igv1.InstagramChannel{}
		Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: channel}, ch)).To(Succeed())
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.MessageRetention = &metav1.Duration{Duration: d}
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
	}

	It("lists a namespace once per sweep, however many channels it has", func() {
		setRetention(e.channel, time.Hour)
		names := []string{e.channel}
		for i := range 4 {
			name := fmt.Sprintf("extra-%d", i)
			e.createChannel(name, func(ch *igv1.InstagramChannel) {
				ch.Spec.MessageRetention = &metav1.Duration{Duration: time.Hour}
			})
			names = append(names, name)
		}
		var msgs []*igv1.InstagramMessage
		for _, n := range names {
			msgs = append(msgs, labelled(n, igv1.DirectionIncoming))
		}
		var lists atomic.Int32
		counting := interceptor.NewClient(k8sWatchClient(), interceptor.Funcs{
			List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
				lo := &client.ListOptions{}
				lo.ApplyOptions(opts)
				if l, ok := list.(*metav1.PartialObjectMetadataList); ok && lo.Namespace == e.ns && l.Kind == "InstagramMessageList" {
					lists.Add(1)
				}
				return c.List(ctx, list, opts...)
			},
		})
		runner := &RetentionRunner{
			Client: k8sClient, APIReader: counting, DeletesPerSecond: 1000,
			Clock: clocktesting.NewFakeClock(time.Now().Add(2 * time.Hour)),
		}
		_, err := runner.SweepOnce(e.ctx)
		Expect(err).NotTo(HaveOccurred())
		for _, m := range msgs {
			Expect(exists(m)).To(BeFalse(), "message %s of channel %s", m.Name, m.Spec.ChannelRef.Name)
		}
		Expect(lists.Load()).To(Equal(int32(1)), "one list of this namespace's messages, not one per channel")
	})

	It("deletes exactly the messages older than the retention, page by page, and keeps everything for 0s", func() {
		setRetention(e.channel, time.Hour)
		e.createChannel("keep-all", func(ch *igv1.InstagramChannel) {
			ch.Spec.MessageRetention = &metav1.Duration{Duration: 0}
		})

		var old []*igv1.InstagramMessage
		for range 3 {
			old = append(old, labelled(e.channel, igv1.DirectionOutgoing), labelled(e.channel, igv1.DirectionIncoming))
		}
		kept := labelled("keep-all", igv1.DirectionIncoming)
		// An old outgoing message the manager has not finished (still
		// waiting for its channel) is never deleted under it.
		unfinished := e.outgoing("still waiting", func(m *igv1.InstagramMessage) {
			m.Labels = map[string]string{igv1.LabelChannel: e.channel}
		})
		newest := old[0].CreationTimestamp.Time
		for _, m := range old {
			if m.CreationTimestamp.After(newest) {
				newest = m.CreationTimestamp.Time
			}
		}
		// The API server stamps creation in whole seconds: poll until a
		// message lands in a later second than the old ones.
		var fresh *igv1.InstagramMessage
		Eventually(func() bool {
			if fresh != nil {
				Expect(k8sClient.Delete(e.ctx, fresh)).To(Succeed())
			}
			fresh = labelled(e.channel, igv1.DirectionOutgoing)
			return fresh.CreationTimestamp.After(newest)
		}).WithTimeout(5 * time.Second).WithPolling(200 * time.Millisecond).Should(BeTrue())

		runner := &RetentionRunner{
			Client: k8sClient, APIReader: k8sClient, PageSize: 2, DeletesPerSecond: 1000,
			// now - retention is exactly the fresh message's creation:
			// older ones go, it stays.
			Clock: clocktesting.NewFakeClock(fresh.CreationTimestamp.Add(time.Hour)),
		}
		deleted, err := runner.SweepOnce(e.ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(deleted).To(Equal(len(old)))

		for _, m := range old {
			Expect(exists(m)).To(BeFalse(), "old message %s", m.Name)
		}
		Expect(exists(fresh)).To(BeTrue())
		Expect(exists(kept)).To(BeTrue(), "retention 0s keeps everything")
		Expect(exists(unfinished)).To(BeTrue(), "an unfinished outgoing message is kept")

		By("a later sweep deletes nothing more")
		deleted, err = runner.SweepOnce(e.ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(deleted).To(BeZero())

		By("months later the 0s channel still keeps its messages")
		runner.Clock = clocktesting.NewFakeClock(time.Now().Add(90 * 24 * time.Hour))
		_, err = runner.SweepOnce(e.ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(exists(kept)).To(BeTrue())
		Expect(exists(fresh)).To(BeFalse())
	})

	It("sweeps at start and then every interval on its clock", func() {
		setRetention(e.channel, time.Hour)
		first := labelled(e.channel, igv1.DirectionIncoming)
		clk := clocktesting.NewFakeClock(time.Now().Add(2 * time.Hour))
		runner := &RetentionRunner{Client: k8sClient, APIReader: k8sClient, Clock: clk, Interval: 10 * time.Minute}

		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- runner.Start(ctx) }()
		Eventually(func() bool { return exists(first) }).Should(BeFalse(), "the first sweep runs at start")

		second := labelled(e.channel, igv1.DirectionIncoming)
		Eventually(clk.HasWaiters).Should(BeTrue())
		Expect(exists(second)).To(BeTrue(), "nothing runs between sweeps")
		clk.Step(10 * time.Minute)
		Eventually(func() bool { return exists(second) }).Should(BeFalse(), "the next sweep runs after the interval")

		cancel()
		Eventually(done).Should(Receive(BeNil()))
	})
})

func k8sWatchClient() client.WithWatch {
	GinkgoHelper()
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}
