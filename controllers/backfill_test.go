package controllers

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
)

var _ = Describe("Backfill", func() {
	It("imports recent conversations once, as the receiver would have recorded them, and skips what exists", func() {
		e := newMessageEnv()
		base, err := client.New(cfg, client.Options{Scheme: testScheme})
		Expect(err).NotTo(HaveOccurred())
		b := &BackfillReconciler{Client: base, APIReader: base, Clock: e.clock, Instagram: e.clients, RatePerSecond: 1000}
		b.targets = &InstagramMessageReconciler{Client: base, APIReader: base, Instagram: e.clients, Clock: e.clock}

		t0 := e.clock.Now().Add(-2 * time.Hour)
		var history []fake.HistoryMessage
		for i := range 25 {
			history = append(history, fake.HistoryMessage{MID: fmt.Sprintf("mid.bf.%s.%02d", e.ns, i), FromCustomer: i%2 == 0,
				Text: fmt.Sprintf("m%d", i), At: t0.Add(time.Duration(i) * time.Minute)})
		}
		e.ig.AddHistory(e.userID, msgTestContact, history...)
		e.ig.AddHistory(e.userID, "5510000000000077", fake.HistoryMessage{MID: "mid.bf.other." + e.ns, FromCustomer: true, Text: "hello?", At: t0})
		// One message the receiver already recorded from its webhook.
		known := fmt.Sprintf("mid.bf.%s.24", e.ns)

		key := types.NamespacedName{Namespace: e.ns, Name: e.channel}
		ch := &igv1.InstagramChannel{}
		Expect(k8sClient.Get(e.ctx, key, ch)).To(Succeed())
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.Backfill = &igv1.BackfillSpec{Conversations: 10, MessagesPerConversation: 20}
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
		Expect(k8sClient.Create(e.ctx, &igv1.InstagramMessage{
			ObjectMeta: metav1ObjectMeta(e.ns, names.IncomingMessageName(e.channel, known)),
			Spec: igv1.InstagramMessageSpec{ChannelRef: igv1.ChannelReference{Name: e.channel}, Direction: igv1.DirectionIncoming,
				ContactID: msgTestContact, Text: "from the webhook"},
		})).To(Succeed())

		_, err = b.Reconcile(e.ctx, ctrl.Request{NamespacedName: key})
		Expect(err).NotTo(HaveOccurred())

		var list igv1.InstagramMessageList
		Expect(k8sClient.List(e.ctx, &list, client.InNamespace(e.ns), client.MatchingLabels{igv1.LabelBackfilled: "true"})).To(Succeed())
		// 20 most recent of the first conversation minus the known one,
		// plus the other conversation's one.
		Expect(list.Items).To(HaveLen(20))
		byMID := map[string]igv1.InstagramMessage{}
		for _, m := range list.Items {
			byMID[m.Status.MessageID] = m
		}
		in := byMID[fmt.Sprintf("mid.bf.%s.22", e.ns)]
		Expect(in.Spec.Direction).To(Equal(igv1.DirectionIncoming))
		Expect(in.Spec.Text).To(Equal("m22"))
		Expect(in.Spec.ContactID).To(Equal(msgTestContact))
		Expect(in.Status.Phase).To(Equal(igv1.PhaseReceived))
		Expect(in.Status.EventTime.Time).To(BeTemporally("==", t0.Add(22*time.Minute)))
		Expect(in.Name).To(Equal(names.IncomingMessageName(e.channel, in.Status.MessageID)))
		out := byMID[fmt.Sprintf("mid.bf.%s.23", e.ns)]
		Expect(out.Spec.Direction).To(Equal(igv1.DirectionOutgoing))
		Expect(out.Spec.Echo).To(BeTrue())
		Expect(out.Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(out.Labels).To(HaveKeyWithValue(igv1.LabelDone, "true"))
		Expect(byMID).To(HaveKey("mid.bf.other." + e.ns))
		Expect(byMID).NotTo(HaveKey(known))
		Expect(byMID).NotTo(HaveKey(fmt.Sprintf("mid.bf.%s.04", e.ns)))
		// The webhook's record is left as it was.
		kept := e.get(names.IncomingMessageName(e.channel, known))
		Expect(kept.Spec.Text).To(Equal("from the webhook"))

		Expect(k8sClient.Get(e.ctx, key, ch)).To(Succeed())
		Expect(ch.Annotations).To(HaveKey(igv1.AnnotationBackfilledAt))
		calls := len(e.ig.Calls())
		_, err = b.Reconcile(e.ctx, ctrl.Request{NamespacedName: key})
		Expect(err).NotTo(HaveOccurred())
		Expect(e.ig.Calls()).To(HaveLen(calls), "a completed backfill makes no call")
	})
})

func metav1ObjectMeta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name}
}
