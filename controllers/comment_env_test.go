package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
)

// grantComments gives the channel the comments scope, in its spec and in
// its token.
func (e *messageEnv) grantComments() {
	GinkgoHelper()
	ch := &igv1.InstagramChannel{}
	Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: e.channel}, ch)).To(Succeed())
	base := ch.DeepCopy()
	ch.Spec.Scopes = append(ch.Spec.Scopes, igv1.ScopeManageComments)
	Expect(k8sClient.Patch(e.ctx, ch, client.MergeFrom(base))).To(Succeed())
	e.token = e.ig.IssueLongLivedTokenWithScopes(e.appID, e.userID, fake.ScopeBasic, fake.ScopeManageMessages, fake.ScopeManageComments)
	secret := &corev1.Secret{}
	Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: ch.TokenSecretName()}, secret)).To(Succeed())
	secret.Data[igv1.TokenSecretKeyAccessToken] = []byte(e.token)
	Expect(k8sClient.Update(e.ctx, secret)).To(Succeed())
}

// comment records a comment as the receiver would, and on the fake.
func (e *messageEnv) comment(id string, at time.Time, mutate ...func(*igv1.InstagramComment)) *igv1.InstagramComment {
	GinkgoHelper()
	e.ig.AddComment(fake.Comment{ID: id, AccountUserID: e.userID, MediaID: "1790", FromID: msgTestContact, Text: "price?", At: at})
	c := &igv1.InstagramComment{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: names.CommentName(e.channel, id),
			Labels: map[string]string{igv1.LabelChannel: e.channel}},
		Spec: igv1.InstagramCommentSpec{ChannelRef: igv1.ChannelReference{Name: e.channel}, CommentID: id,
			From: igv1.CommentAuthor{ID: msgTestContact, Username: "customer"}, Text: "price?"},
	}
	for _, m := range mutate {
		m(c)
	}
	Expect(k8sClient.Create(e.ctx, c)).To(Succeed())
	c.Status.EventTime = &metav1.MicroTime{Time: at}
	Expect(k8sClient.Status().Update(e.ctx, c)).To(Succeed())
	return c
}

func (e *messageEnv) privateReply(comment string) *igv1.InstagramMessage {
	GinkgoHelper()
	return e.outgoing("Sent you a DM with the price", func(m *igv1.InstagramMessage) {
		m.Spec.PrivateReplyTo = &igv1.CommentReference{Name: comment}
	})
}

var _ = Describe("Private replies", func() {
	var e *messageEnv
	BeforeEach(func() { e = newMessageEnv() })

	It("sends the one private reply of a comment; a second one fails without a call", func() {
		e.grantComments()
		c := e.comment("1801", e.clock.Now().Add(-time.Hour))
		first := e.privateReply(c.Name)
		e.reconcile(first.Name)

		sent := e.ig.Sent()
		Expect(sent).To(HaveLen(1))
		Expect(sent[0].Kind).To(Equal("private_reply"))
		expectJSON(sent[0].Body, `{"recipient":{"comment_id":"1801"},"message":{"text":"Sent you a DM with the price"}}`)
		got := e.get(first.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseSent), got.Status.Message)
		Expect(got.Status.MessageID).To(Equal(sent[0].MID))
		stored := &igv1.InstagramComment{}
		Expect(k8sClient.Get(e.ctx, client.ObjectKeyFromObject(c), stored)).To(Succeed())
		Expect(stored.Status.Actions.PrivateReply).To(Equal(first.Name))

		second := e.privateReply(c.Name)
		e.reconcile(second.Name)
		got = e.get(second.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonAlreadyReplied))
		Expect(got.Status.Message).To(ContainSubstring(first.Name))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))
	})

	It("fails a late private reply without a call", func() {
		e.grantComments()
		c := e.comment("1802", e.clock.Now().Add(-igv1.PrivateReplyWindow-time.Minute))
		m := e.privateReply(c.Name)
		e.reconcile(m.Name)
		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonReplyWindowClosed))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(BeZero())
	})

	It("fails a private reply through a channel without the comments scope without a call", func() {
		c := e.comment("1803", e.clock.Now())
		m := e.privateReply(c.Name)
		e.reconcile(m.Name)
		got := e.get(m.Name)
		Expect(got.Status.Reason).To(Equal(igv1.ReasonScopeMissing))
		Expect(got.Status.Message).To(ContainSubstring("instagram_business_manage_comments"))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(BeZero())
	})

	It("fails a private reply to a comment of another channel without a call", func() {
		e.grantComments()
		c := e.comment("1804", e.clock.Now(), func(c *igv1.InstagramComment) { c.Spec.ChannelRef.Name = "sales" })
		m := e.privateReply(c.Name)
		e.reconcile(m.Name)
		Expect(e.get(m.Name).Status.Reason).To(Equal(igv1.ReasonInvalidReference))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(BeZero())
	})
})

var _ = Describe("Comment moderation", func() {
	var (
		e *messageEnv
		r *InstagramCommentReconciler
	)
	BeforeEach(func() {
		e = newMessageEnv()
		r = &InstagramCommentReconciler{Client: e.r.Client, APIReader: e.r.APIReader, Clock: e.clock, Instagram: e.clients, DriftInterval: 10 * time.Minute}
	})
	reconcile := func(c *igv1.InstagramComment) ctrl.Result {
		GinkgoHelper()
		res, err := r.Reconcile(e.ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(c)})
		Expect(err).NotTo(HaveOccurred())
		return res
	}
	get := func(c *igv1.InstagramComment) *igv1.InstagramComment {
		GinkgoHelper()
		out := &igv1.InstagramComment{}
		Expect(k8sClient.Get(e.ctx, client.ObjectKeyFromObject(c), out)).To(Succeed())
		return out
	}
	calls := func() int {
		n := 0
		for _, ep := range []string{fake.EndpointComment, fake.EndpointHideComment, fake.EndpointDeleteComment, fake.EndpointReplyComment} {
			n += e.ig.CallCount(ep)
		}
		return n
	}

	It("keeps a hidden comment hidden, repairing drift on the check", func() {
		e.grantComments()
		c := e.comment("1901", e.clock.Now(), func(c *igv1.InstagramComment) { c.Spec.Hidden = ptr.To(true) })
		Expect(reconcile(c).RequeueAfter).To(Equal(10 * time.Minute))
		st, _ := e.ig.CommentState("1901")
		Expect(st.Hidden).To(BeTrue())
		got := get(c)
		Expect(*got.Status.Actions.Hidden).To(BeTrue())
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, igv1.ConditionSynced)).To(BeTrue())
		Expect(got.Status.ObservedGeneration).To(Equal(got.Generation), "the status describes the spec the workload wrote")

		By("within the interval: quiet, no call")
		before := calls()
		reconcile(get(c))
		Expect(calls()).To(Equal(before))

		By("someone shows it in the app; the next check hides it again")
		e.ig.SetCommentHidden("1901", false)
		e.clock.Step(11 * time.Minute)
		reconcile(get(c))
		st, _ = e.ig.CommentState("1901")
		Expect(st.Hidden).To(BeTrue())
		Expect(e.ig.CallCount(fake.EndpointHideComment)).To(Equal(2))

		By("spec.hidden false shows it at once")
		c = get(c)
		base := c.DeepCopy()
		c.Spec.Hidden = ptr.To(false)
		Expect(k8sClient.Patch(e.ctx, c, client.MergeFrom(base))).To(Succeed())
		reconcile(get(c))
		st, _ = e.ig.CommentState("1901")
		Expect(st.Hidden).To(BeFalse())
	})

	It("posts a public reply once and deletes a comment once", func() {
		e.grantComments()
		c := e.comment("1902", e.clock.Now(), func(c *igv1.InstagramComment) { c.Spec.PublicReply = &igv1.PublicReply{Text: "Thanks!"} })
		reconcile(c)
		st, _ := e.ig.CommentState("1902")
		Expect(st.Replies).To(HaveLen(1))
		got := get(c)
		Expect(got.Status.Actions.PublicReplyID).To(Equal(st.Replies[0]))
		reconcile(got)
		Expect(e.ig.CallCount(fake.EndpointReplyComment)).To(Equal(1))

		base := got.DeepCopy()
		got.Spec.Delete = true
		Expect(k8sClient.Patch(e.ctx, got, client.MergeFrom(base))).To(Succeed())
		reconcile(get(c))
		reconcile(get(c))
		st, _ = e.ig.CommentState("1902")
		Expect(st.Deleted).To(BeTrue())
		Expect(e.ig.CallCount(fake.EndpointDeleteComment)).To(Equal(1))
		Expect(get(c).Status.Actions.DeletedAt).NotTo(BeNil())
	})

	It("never posts a reply twice after an interrupted attempt", func() {
		e.grantComments()
		c := e.comment("1903", e.clock.Now(), func(c *igv1.InstagramComment) { c.Spec.PublicReply = &igv1.PublicReply{Text: "Thanks!"} })
		c.Status.Actions = &igv1.CommentActionsStatus{PublicReplyStartedAt: &metav1.Time{Time: e.clock.Now()}}
		Expect(k8sClient.Status().Update(e.ctx, c)).To(Succeed())
		reconcile(get(c))
		got := get(c)
		Expect(meta.FindStatusCondition(got.Status.Conditions, igv1.ConditionSynced).Reason).To(Equal(igv1.ReasonReplyUnknown))
		Expect(e.ig.CallCount(fake.EndpointReplyComment)).To(BeZero())
	})

	It("says so when the channel lacks the comments scope, and refuses what Instagram would", func() {
		c := e.comment("1904", e.clock.Now(), func(c *igv1.InstagramComment) { c.Spec.Hidden = ptr.To(true) })
		reconcile(c)
		got := get(c)
		cond := meta.FindStatusCondition(got.Status.Conditions, igv1.ConditionSynced)
		Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		Expect(cond.Reason).To(Equal(igv1.ReasonScopeMissing))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, igv1.ConditionStalled)).To(BeTrue())

		e.grantComments()
		reply := e.comment("1905", e.clock.Now(), func(c *igv1.InstagramComment) {
			c.Spec.ParentID = "1904"
			c.Spec.PublicReply = &igv1.PublicReply{Text: "no"}
		})
		reconcile(reply)
		Expect(meta.FindStatusCondition(get(reply).Status.Conditions, igv1.ConditionSynced).Reason).To(Equal(igv1.ReasonNotAllowed))
		Expect(calls()).To(BeZero())
	})
})
