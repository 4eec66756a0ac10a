package controllers

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var _ = Describe("InstagramChannel status migration", func() {
	It("moves subscriptionCheckedAt to subscribedAt once, then writes nothing", func() {
		e := newChannelEnv()
		e.adopt("support")
		ch := e.channel("support")
		Expect(ch.Status.SubscribedAt).NotTo(BeNil())
		Expect(ch.Status.SubscriptionCheckedAt).To(BeNil())

		By("a status written by an earlier version")
		at := metav1.NewTime(ch.Status.SubscribedAt.Add(-48 * 3600e9).UTC())
		ch.Status.SubscriptionCheckedAt = &at
		ch.Status.SubscribedAt = nil
		Expect(k8sClient.Status().Update(e.ctx, ch)).To(Succeed())

		e.reconcile("support")
		ch = e.channel("support")
		Expect(ch.Status.SubscriptionCheckedAt).To(BeNil())
		Expect(ch.Status.SubscribedAt).NotTo(BeNil())
		Expect(ch.Status.SubscribedAt.Time).To(BeTemporally("==", at.Time))

		before := ch.ResourceVersion
		e.reconcile("support")
		Expect(e.channel("support").ResourceVersion).To(Equal(before))
	})
})
