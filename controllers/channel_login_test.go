package controllers

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

var _ = Describe("Login hand-over in the operator's namespace", func() {
	It("takes only a hand-over whose annotations name this very channel", func() {
		e := newChannelEnv()
		e.createApp()
		acc := e.newAccount("acme")
		e.newChannel("support")
		e.reconcile("support")
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization)

		By("a hand-over for a channel of the same name that was deleted and created again")
		e.loginSecret("support", e.shortLived(acc.UserID))
		s := e.secret(names.LoginSecretName(e.ns, "support"))
		s.Annotations[igv1.AnnotationChannelUID] = "another-uid"
		Expect(k8sClient.Update(e.ctx, s)).To(Succeed())
		e.reconcile("support")
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization)
		Expect(e.secretGone(names.LoginSecretName(e.ns, "support"))).To(BeFalse(), "left alone: not this channel's")

		By("the same hand-over for this channel is taken")
		s = e.secret(names.LoginSecretName(e.ns, "support"))
		s.Annotations[igv1.AnnotationChannelUID] = string(e.channel("support").UID)
		Expect(k8sClient.Update(e.ctx, s)).To(Succeed())
		e.reconcile("support")
		expectCondition(e.channel("support"), igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(e.secretGone(names.LoginSecretName(e.ns, "support"))).To(BeTrue(), "consumed")
	})

	It("deletes what a channel gone without its finalizer left behind", func() {
		e := newChannelEnv()
		e.writeLoginSecret("ghost", "n", map[string]string{igv1.TokenSecretKeyAccessToken: "IGAA-left-behind"})
		e.reconcile("ghost")
		Expect(e.secretGone(names.LoginSecretName(e.ns, "ghost"))).To(BeTrue())
	})

	It("deletes a hand-over never consumed when the channel is deleted", func() {
		e := newChannelEnv()
		e.newChannel("support")
		e.reconcile("support")
		Expect(e.channel("support").Finalizers).To(ContainElement(igv1.ChannelFinalizer))
		Expect(k8sClient.Delete(e.ctx, e.channel("support"))).To(Succeed())
		e.writeLoginSecret("support", "n", map[string]string{igv1.TokenSecretKeyAccessToken: "IGAA-never-consumed"})
		e.reconcile("support")
		Expect(e.secretGone(names.LoginSecretName(e.ns, "support"))).To(BeTrue())
	})
})
