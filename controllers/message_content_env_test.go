package controllers

import (
	"encoding/json"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
)

// expectJSON compares the body the fake received with the documented
// shape, by value.
func expectJSON(got []byte, want string) {
	GinkgoHelper()
	var g, w any
	Expect(json.Unmarshal(got, &g)).To(Succeed())
	Expect(json.Unmarshal([]byte(want), &w)).To(Succeed())
	Expect(g).To(Equal(w))
}

// incomingFromCustomer records a customer's message as the receiver would
// and returns it; mid is one the fake knows as the customer's.
func (e *messageEnv) incomingFromCustomer(channel, contact, mid string) *igv1.InstagramMessage {
	GinkgoHelper()
	m := &igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: names.IncomingMessageName(channel, mid), Labels: map[string]string{
			igv1.LabelChannel: channel, igv1.LabelContact: contact, igv1.LabelDirection: igv1.DirectionLabelIncoming,
		}},
		Spec: igv1.InstagramMessageSpec{ChannelRef: igv1.ChannelReference{Name: channel}, Direction: igv1.DirectionIncoming, ContactID: contact, Text: "hi"},
	}
	Expect(k8sClient.Create(e.ctx, m)).To(Succeed())
	m.Status.Phase, m.Status.MessageID = igv1.PhaseReceived, mid
	Expect(k8sClient.Status().Update(e.ctx, m)).To(Succeed())
	return m
}

// customerMID makes the customer write to the account on the fake and
// returns the mid (no app is subscribed, so nothing is delivered).
func (e *messageEnv) customerMID() string {
	GinkgoHelper()
	mid, err := e.ig.DeliverMessage(e.ctx, fake.CustomerMessage{AccountUserID: e.userID, CustomerID: msgTestContact, Text: "hi"})
	if err != nil {
		Expect(err).To(MatchError(fake.ErrNotSubscribed))
	}
	return mid
}

var _ = Describe("InstagramMessage content", func() {
	var e *messageEnv
	BeforeEach(func() { e = newMessageEnv() })

	// Each kind goes Pending -> Sending -> Sent through the one send path,
	// once, with the body Instagram documents (the fake refuses any other
	// shape), and is labelled for the receiver's echo and read protocol.
	DescribeTable("sends each kind of content once with the documented body",
		func(mutate func(*igv1.InstagramMessage), wantKind, wantBody string) {
			e.ig.AddPost(e.userID, "17890000000000001")
			m := e.outgoing("", mutate)
			Expect(e.reconcile(m.Name)).To(Equal(ctrl.Result{}))

			sent := e.ig.Sent()
			Expect(sent).To(HaveLen(1))
			Expect(sent[0].Kind).To(Equal(wantKind))
			expectJSON(sent[0].Body, wantBody)
			got := e.get(m.Name)
			Expect(got.Status.Phase).To(Equal(igv1.PhaseSent), got.Status.Message)
			Expect(got.Status.MessageID).To(Equal(sent[0].MID))
			Expect(got.Status.MessageIDs).To(BeEmpty())
			Expect(got.Labels).To(HaveKeyWithValue(igv1.LabelMID, names.MIDHash(sent[0].MID)))
			Expect(got.Labels).To(HaveKeyWithValue(igv1.LabelDone, "true"))
			expectMessageCondition(got, igv1.ConditionReady, metav1.ConditionTrue, string(igv1.PhaseSent))
			Expect(messageKstatus(got)).To(Equal(status.CurrentStatus))

			By("a second reconcile sends nothing")
			e.reconcile(m.Name)
			Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))
		},
		Entry("text with quick replies", func(m *igv1.InstagramMessage) {
			m.Spec.Text = "Which size?"
			m.Spec.QuickReplies = []igv1.QuickReply{{Title: "42", Payload: "SIZE_42"}, {ContentType: igv1.QuickReplyPhone}}
		}, "quick_replies", `{"recipient":{"id":"5512340000000001"},"message":{"text":"Which size?","quick_replies":[
			{"content_type":"text","title":"42","payload":"SIZE_42"},{"content_type":"user_phone_number"}]}}`),
		Entry("a reply to a message", func(m *igv1.InstagramMessage) {
			m.Spec.Text, m.Spec.ReplyTo = "Yes", "aWdfZAG1-customer"
		}, "text", `{"recipient":{"id":"5512340000000001"},"message":{"text":"Yes","reply_to":{"mid":"aWdfZAG1-customer"}}}`),
		Entry("ten images", func(m *igv1.InstagramMessage) {
			for _, u := range []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"} {
				m.Spec.Attachments = append(m.Spec.Attachments, igv1.Attachment{Type: "image", URL: "https://cdn.example.com/" + u + ".jpg"})
			}
		}, "images", `{"recipient":{"id":"5512340000000001"},"message":{"attachments":[
			{"type":"image","payload":{"url":"https://cdn.example.com/0.jpg"}},{"type":"image","payload":{"url":"https://cdn.example.com/1.jpg"}},
			{"type":"image","payload":{"url":"https://cdn.example.com/2.jpg"}},{"type":"image","payload":{"url":"https://cdn.example.com/3.jpg"}},
			{"type":"image","payload":{"url":"https://cdn.example.com/4.jpg"}},{"type":"image","payload":{"url":"https://cdn.example.com/5.jpg"}},
			{"type":"image","payload":{"url":"https://cdn.example.com/6.jpg"}},{"type":"image","payload":{"url":"https://cdn.example.com/7.jpg"}},
			{"type":"image","payload":{"url":"https://cdn.example.com/8.jpg"}},{"type":"image","payload":{"url":"https://cdn.example.com/9.jpg"}}]}}`),
		Entry("an audio file", func(m *igv1.InstagramMessage) {
			m.Spec.Attachments = []igv1.Attachment{{Type: "audio", URL: "https://cdn.example.com/a.m4a"}}
		}, "audio", `{"recipient":{"id":"5512340000000001"},"message":{"attachment":{"type":"audio","payload":{"url":"https://cdn.example.com/a.m4a"}}}}`),
		Entry("the heart sticker", func(m *igv1.InstagramMessage) { m.Spec.Sticker = igv1.StickerHeart },
			"like_heart", `{"recipient":{"id":"5512340000000001"},"message":{"attachment":{"type":"like_heart"}}}`),
		Entry("an own post", func(m *igv1.InstagramMessage) { m.Spec.SharePost = &igv1.PostShare{MediaID: "17890000000000001"} },
			"media_share", `{"recipient":{"id":"5512340000000001"},"message":{"attachment":{"type":"MEDIA_SHARE","payload":{"id":"17890000000000001"}}}}`),
		Entry("a button template", func(m *igv1.InstagramMessage) {
			m.Spec.ButtonTemplate = &igv1.ButtonTemplate{Text: "Track your order?", Buttons: []igv1.Button{
				{Type: igv1.ButtonWebURL, Title: "Track", URL: "https://shop.example.com/track"},
				{Type: igv1.ButtonPostback, Title: "Talk to us", Payload: "AGENT"},
			}}
		}, "button_template", `{"recipient":{"id":"5512340000000001"},"message":{"attachment":{"type":"template","payload":{
			"template_type":"button","text":"Track your order?","buttons":[
			{"type":"web_url","title":"Track","url":"https://shop.example.com/track"},{"type":"postback","title":"Talk to us","payload":"AGENT"}]}}}}`),
		Entry("a generic template", func(m *igv1.InstagramMessage) {
			m.Spec.GenericTemplate = &igv1.GenericTemplate{Elements: []igv1.GenericElement{
				{Title: "Runner", Subtitle: "Red", ImageURL: "https://cdn.example.com/r.jpg",
					DefaultAction: &igv1.DefaultAction{URL: "https://shop.example.com/r"},
					Buttons:       []igv1.Button{{Type: igv1.ButtonPostback, Title: "Buy", Payload: "BUY_R"}}},
				{Title: "Walker"},
			}}
		}, "generic_template", `{"recipient":{"id":"5512340000000001"},"message":{"attachment":{"type":"template","payload":{
			"template_type":"generic","elements":[
			{"title":"Runner","subtitle":"Red","image_url":"https://cdn.example.com/r.jpg","default_action":{"type":"web_url","url":"https://shop.example.com/r"},
			 "buttons":[{"type":"postback","title":"Buy","payload":"BUY_R"}]},{"title":"Walker"}]}}}}`),
	)

	It("records every mid of a send Instagram splits and takes each mid's echo away", func() {
		e.ig.SetSplitImageMIDs(true)
		m := e.outgoing("", func(m *igv1.InstagramMessage) {
			m.Spec.Attachments = []igv1.Attachment{
				{Type: "image", URL: "https://cdn.example.com/1.jpg"}, {Type: "image", URL: "https://cdn.example.com/2.jpg"},
				{Type: "image", URL: "https://cdn.example.com/3.jpg"},
			}
		})
		// The echo of the second image overtakes the send's answer: the
		// receiver has stored it before the manager labels the message.
		var early bool
		e.r.Instagram = hookedClients{InstagramClients: e.clients, afterSend: func(string) {
			more := e.ig.Sent()[0].MoreMIDs
			early = e.receiverEcho(more[0])
		}}
		e.reconcile(m.Name)
		Expect(early).To(BeTrue(), "the early echo was stored")

		sent := e.ig.Sent()
		Expect(sent).To(HaveLen(1))
		Expect(sent[0].MoreMIDs).To(HaveLen(2))
		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(got.Status.MessageID).To(Equal(sent[0].MID))
		Expect(got.Status.MessageIDs).To(Equal(sent[0].MoreMIDs))
		for _, mid := range sent[0].MoreMIDs {
			Expect(got.Labels).To(HaveKeyWithValue(names.MIDLabelKey(mid), "true"))
			Expect(e.messagesWithMID(mid)).To(BeEmpty(), "no echo object for a further mid")
		}
		Expect(e.messagesWithMID(sent[0].MID)).To(Equal([]string{m.Name}))

		By("an echo after the send was recorded finds the object by its further mid")
		Expect(e.receiverEchoByAnyMID(sent[0].MoreMIDs[1])).To(BeFalse())
	})

	DescribeTable("sends each sender action once",
		func(action igv1.SenderActionType, byRef bool, wantBody func(mid string) string) {
			mid := e.customerMID()
			m := e.outgoing("", func(m *igv1.InstagramMessage) {
				a := &igv1.SenderAction{Action: action}
				switch {
				case action == igv1.SenderActionReact && byRef:
					a.Reaction = "love"
					a.MessageRef = &igv1.MessageReference{Name: e.incomingFromCustomer(e.channel, msgTestContact, mid).Name}
				case action == igv1.SenderActionReact:
					a.Reaction, a.MessageID = "😂", mid
				case action == igv1.SenderActionUnreact:
					a.MessageID = mid
				}
				m.Spec.SenderAction = a
			})
			e.reconcile(m.Name)

			acts := e.ig.SenderActions()
			Expect(acts).To(HaveLen(1))
			expectJSON(acts[0].Body, wantBody(mid))
			Expect(e.ig.Sent()).To(BeEmpty())
			got := e.get(m.Name)
			Expect(got.Status.Phase).To(Equal(igv1.PhaseSent), got.Status.Message)
			Expect(got.Status.MessageID).To(BeEmpty(), "a sender action has no mid")
			Expect(got.Labels).NotTo(HaveKey(igv1.LabelMID))
			Expect(got.Labels).To(HaveKeyWithValue(igv1.LabelDone, "true"))
			Expect(messageKstatus(got)).To(Equal(status.CurrentStatus))
			e.reconcile(m.Name)
			Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))
		},
		Entry("react to the customer's message by object", igv1.SenderActionReact, true, func(mid string) string {
			return `{"recipient":{"id":"5512340000000001"},"sender_action":"react","payload":{"message_id":"` + mid + `","reaction":"love"}}`
		}),
		Entry("react by mid with an emoji", igv1.SenderActionReact, false, func(mid string) string {
			return `{"recipient":{"id":"5512340000000001"},"sender_action":"react","payload":{"message_id":"` + mid + `","reaction":"😂"}}`
		}),
		Entry("unreact", igv1.SenderActionUnreact, false, func(mid string) string {
			return `{"recipient":{"id":"5512340000000001"},"sender_action":"unreact","payload":{"message_id":"` + mid + `"}}`
		}),
		Entry("typing_on", igv1.SenderActionTypingOn, false, func(string) string {
			return `{"recipient":{"id":"5512340000000001"},"sender_action":"typing_on"}`
		}),
		Entry("typing_off", igv1.SenderActionTypingOff, false, func(string) string {
			return `{"recipient":{"id":"5512340000000001"},"sender_action":"typing_off"}`
		}),
		Entry("mark_seen", igv1.SenderActionMarkSeen, false, func(string) string {
			return `{"recipient":{"id":"5512340000000001"},"sender_action":"mark_seen"}`
		}),
	)

	DescribeTable("fails a reaction to a message it may not react to, without a call",
		func(target func() string, wantInMessage string) {
			m := e.outgoing("", func(m *igv1.InstagramMessage) {
				m.Spec.SenderAction = &igv1.SenderAction{Action: igv1.SenderActionReact, Reaction: "love",
					MessageRef: &igv1.MessageReference{Name: target()}}
			})
			e.reconcile(m.Name)
			got := e.get(m.Name)
			Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
			Expect(got.Status.Reason).To(Equal(igv1.ReasonInvalidReference))
			Expect(got.Status.Message).To(ContainSubstring(wantInMessage))
			expectMessageCondition(got, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonInvalidReference)
			Expect(e.ig.CallCount(fake.EndpointSend)).To(BeZero())
			Expect(e.drainEvents()).To(ContainElement(ContainSubstring(igv1.ReasonInvalidReference)))
		},
		Entry("a message that does not exist", func() string { return "igm-nope" }, `"igm-nope" not found`),
		Entry("a message of another channel", func() string {
			return e.incomingFromCustomer("sales", msgTestContact, e.customerMID()).Name
		}, `belongs to channel "sales"`),
		Entry("the business's own message", func() string {
			return e.outgoing("our reply").Name
		}, "is not a message of the customer"),
		Entry("a message of another contact", func() string {
			return e.incomingFromCustomer(e.channel, "5512340000000999", e.customerMID()).Name
		}, "is from contact 5512340000000999"),
	)

	It("fails what only Instagram can refuse once, with its answer, and never retries", func() {
		By("a reaction to a mid Instagram does not know as the customer's")
		m := e.outgoing("", func(m *igv1.InstagramMessage) {
			m.Spec.SenderAction = &igv1.SenderAction{Action: igv1.SenderActionReact, Reaction: "love", MessageID: "aWdfZAG1-unknown"}
		})
		e.reconcile(m.Name)
		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonBadRequest))
		Expect(got.Status.Error).NotTo(BeNil())
		Expect(got.Status.Error.Code).To(Equal(int32(100)))

		By("a post of another account")
		e.ig.AddPost("17841400000000999", "17890000000000002")
		p := e.outgoing("", func(m *igv1.InstagramMessage) { m.Spec.SharePost = &igv1.PostShare{MediaID: "17890000000000002"} })
		e.reconcile(p.Name)
		Expect(e.get(p.Name).Status.Reason).To(Equal(igv1.ReasonBadRequest))

		e.reconcile(m.Name)
		e.reconcile(p.Name)
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(2))
	})
})

var _ = Describe("Per-account rate limits", func() {
	It("keeps a send that must wait for the account's turn Pending, never Sending, and sends each once", func() {
		e := newMessageEnv()
		e.r.Instagram = e.limitedClients(instagram.AccountLimits{TextPerSecond: 1})
		var msgs []*igv1.InstagramMessage
		for i := range 3 {
			msgs = append(msgs, e.outgoing(fmt.Sprintf("reply %d", i)))
		}
		for _, m := range msgs {
			e.reconcile(m.Name)
		}
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1), "one turn per second for the account")
		waiting := 0
		for _, m := range msgs {
			got := e.get(m.Name)
			if got.Status.Phase == igv1.PhaseSent {
				continue
			}
			waiting++
			Expect(got.Status.Phase).To(Equal(igv1.PhasePending))
			Expect(got.Status.Reason).To(Equal(igv1.ReasonRateLimited))
			Expect(got.Status.NextAttemptAt).NotTo(BeNil())
			Expect(got.Status.Attempts).To(BeZero(), "waiting for a turn is not an attempt")
			expectMessageCondition(got, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonRateLimited)
		}
		Expect(waiting).To(Equal(2))

		By("their turn comes: each is sent once")
		Eventually(func(g Gomega) {
			e.clock.Step(2 * time.Second)
			for _, m := range msgs {
				e.reconcile(m.Name)
			}
			for _, m := range msgs {
				g.Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhaseSent))
			}
		}).WithTimeout(10 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(3))
	})
})
