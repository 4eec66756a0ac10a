package webhookserver_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
	ws "github.com/leadchat/instagram-operator/webhookserver"
)

var ctx = context.Background()

// message reads the object the receiver writes for (channel, mid).
func message(channel, mid string) *igv1.InstagramMessage {
	GinkgoHelper()
	var m igv1.InstagramMessage
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: names.IncomingMessageName(channel, mid)}, &m)).To(Succeed())
	return &m
}

func absent(channel, mid string) bool {
	var m igv1.InstagramMessage
	err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: names.IncomingMessageName(channel, mid)}, &m)
	return apierrors.IsNotFound(err)
}

// conversation lists every object of a customer on a channel.
func conversation(channel, contact string) []igv1.InstagramMessage {
	GinkgoHelper()
	var l igv1.InstagramMessageList
	Expect(k8s.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{igv1.LabelChannel: channel, igv1.LabelContact: contact})).To(Succeed())
	return l.Items
}

func expectCurrent(m *igv1.InstagramMessage) {
	GinkgoHelper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(m)
	Expect(err).NotTo(HaveOccurred())
	res, err := status.Compute(&unstructured.Unstructured{Object: u})
	Expect(err).NotTo(HaveOccurred())
	Expect(res.Status).To(Equal(status.CurrentStatus), res.Message)
	Expect(m.Status.ObservedGeneration).To(Equal(m.Generation))
}

// outgoing creates an outgoing message as a workload would, and marks it
// sent as the manager does once Instagram answered with mid. labelMID false
// leaves out the manager's mid label (a send still in flight).
func outgoing(contact, mid string, sentAt time.Time, labelMID bool) *igv1.InstagramMessage {
	GinkgoHelper()
	m := &igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "reply-", Namespace: ns,
			Labels: map[string]string{igv1.LabelChannel: "support", igv1.LabelContact: contact, igv1.LabelDirection: igv1.DirectionLabelOutgoing},
		},
		Spec: igv1.InstagramMessageSpec{ChannelRef: igv1.ChannelReference{Name: "support"}, Direction: igv1.DirectionOutgoing, ContactID: contact, Text: "Yes, in stock"},
	}
	Expect(k8s.Create(ctx, m)).To(Succeed())
	m.Status.Phase, m.Status.MessageID, m.Status.SentAt = igv1.PhaseSent, mid, &metav1.Time{Time: sentAt}
	Expect(k8s.Status().Update(ctx, m)).To(Succeed())
	if labelMID {
		markSent(m, mid)
	}
	return m
}

// markSent is the manager's half of the echo protocol: label the outgoing
// message with the mid's hash, then delete the receiver's echo object.
func markSent(m *igv1.InstagramMessage, mid string) {
	GinkgoHelper()
	base := m.DeepCopy()
	m.Labels[igv1.LabelMID] = names.MIDHash(mid)
	Expect(k8s.Patch(ctx, m, client.MergeFrom(base))).To(Succeed())
	echo := &igv1.InstagramMessage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names.IncomingMessageName("support", mid)}}
	Expect(client.IgnoreNotFound(k8s.Delete(ctx, echo))).To(Succeed())
}

// counter reads instagram_webhook_events_total{type,result} from the
// controller-runtime registry, where the receiver must register it.
func counter(typ, result string) float64 {
	return metricValue("instagram_webhook_events_total", map[string]string{"type": typ, "result": result})
}

// rejected reads instagram_webhook_rejected_total{cause}.
func rejected(cause string) float64 {
	return metricValue("instagram_webhook_rejected_total", map[string]string{"cause": cause})
}

func metricValue(name string, labels map[string]string) float64 {
	GinkgoHelper()
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

var _ = Describe("Handshake", func() {
	get := func(q url.Values) (int, string) {
		resp, err := http.Get(baseURL + ws.WebhookPath + "?" + q.Encode())
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	q := func(mode, token, challenge string) url.Values {
		v := url.Values{}
		for k, val := range map[string]string{"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge} {
			if val != "" {
				v.Set(k, val)
			}
		}
		return v
	}

	It("echoes the challenge for the verify token of any known app", func() {
		for _, token := range []string{acmeVerify, ownVerify} {
			code, body := get(q("subscribe", token, "1158201444"))
			Expect(code).To(Equal(http.StatusOK))
			Expect(body).To(Equal("1158201444"))
		}
	})

	DescribeTable("refuses", func(mode, token, challenge string) {
		before := rejected("verify_token")
		code, body := get(q(mode, token, challenge))
		Expect(code).To(Equal(http.StatusForbidden))
		Expect(body).NotTo(ContainSubstring("1158201444"))
		Expect(rejected("verify_token")).To(Equal(before + 1))
	},
		Entry("a wrong token", "subscribe", "guess", "1158201444"),
		Entry("an empty token", "subscribe", "", "1158201444"),
		Entry("a token differing in one byte", "subscribe", acmeVerify[:len(acmeVerify)-1]+"X", "1158201444"),
		Entry("another mode", "unsubscribe", acmeVerify, "1158201444"),
		Entry("no challenge", "subscribe", acmeVerify, ""),
	)
})

var _ = Describe("Verification", func() {
	var contact, mid string
	var body []byte
	BeforeEach(func() {
		contact, mid = newContact(), newMID()
		body = delivery(entry(supportAccount, fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "hi"})))
	})

	It("records a delivery signed with the current or the previous app secret", func() {
		Expect(post(body, acmeSecret)).To(Equal(http.StatusOK))
		Expect(message("support", mid).Spec.Text).To(Equal("hi"))
		other := newMID()
		body2 := delivery(entry(supportAccount, fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": other, "text": "rotating"})))
		Expect(post(body2, acmePrevious)).To(Equal(http.StatusOK))
		Expect(message("support", other).Spec.Text).To(Equal("rotating"))
	})

	DescribeTable("answers 401 and writes nothing", func(header func([]byte) string) {
		before := rejected("signature")
		req, _ := http.NewRequest(http.MethodPost, baseURL+ws.WebhookPath, bytes.NewReader(body))
		if h := header(body); h != "" {
			req.Header.Set(ws.SignatureHeader, h)
		}
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
		Expect(rejected("signature")).To(Equal(before + 1))
		Expect(absent("support", mid)).To(BeTrue())
	},
		Entry("without a signature", func([]byte) string { return "" }),
		Entry("signed with an unknown secret", func(b []byte) string { return sign("guessed", b) }),
		Entry("with a sha1 signature", func(b []byte) string { return "sha1=" + strings.Repeat("ab", 20) }),
		Entry("with a truncated signature", func(b []byte) string { return sign(acmeSecret, b)[:40] }),
		Entry("with a non-hex signature", func(b []byte) string { return "sha256=" + strings.Repeat("zz", 32) }),
		Entry("signed over other bytes", func(b []byte) string { return sign(acmeSecret, append(b, ' ')) }),
	)

	It("skips an entry of another app's channel and records the rest", func() {
		salesContact, salesMID := newContact(), newMID()
		before := rejected("unknown_app_entry")
		// Signed by "own", whose only channel is sales: the entry for
		// support (an acme channel) must not be written.
		mixed := delivery(
			entry(supportAccount, fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "forged"})),
			entry(salesAccount, fromCustomer(salesAccount, salesContact, at(0), "message", obj{"mid": salesMID, "text": "real"})),
		)
		Expect(post(mixed, ownSecret)).To(Equal(http.StatusOK))
		Expect(rejected("unknown_app_entry")).To(Equal(before + 1))
		Expect(absent("support", mid)).To(BeTrue())
		Expect(message("sales", salesMID).Spec.Text).To(Equal("real"))
	})

	It("answers 413 past the size limit, with or without Content-Length", func() {
		big := bytes.Repeat([]byte(" "), ws.DefaultMaxBodyBytes+1)
		before := rejected("too_large")
		Expect(post(big, acmeSecret)).To(Equal(http.StatusRequestEntityTooLarge))
		req, _ := http.NewRequest(http.MethodPost, baseURL+ws.WebhookPath, io.MultiReader(bytes.NewReader(big)))
		req.ContentLength = -1 // chunked
		req.Header.Set(ws.SignatureHeader, sign(acmeSecret, big))
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusRequestEntityTooLarge))
		Expect(rejected("too_large")).To(Equal(before + 2))
	})

	It("answers 400 to signed malformed JSON and to a wrong object", func() {
		before := rejected("malformed")
		Expect(post([]byte(`{"object":"instagram","entry":[`), acmeSecret)).To(Equal(http.StatusBadRequest))
		Expect(post([]byte(`{"object":"instagram","entry":{"id":1}}`), acmeSecret)).To(Equal(http.StatusBadRequest))
		Expect(rejected("malformed")).To(Equal(before + 2))

		before = rejected("wrong_object")
		page := bytes.Replace(body, []byte(`"instagram"`), []byte(`"page"`), 1)
		Expect(post(page, acmeSecret)).To(Equal(http.StatusBadRequest))
		Expect(rejected("wrong_object")).To(Equal(before + 1))
		Expect(absent("support", mid)).To(BeTrue())
	})

	It("checks the signature before parsing: unsigned garbage is 401, not 400", func() {
		Expect(post([]byte(`{not json`), "")).To(Equal(http.StatusUnauthorized))
	})
})

var _ = Describe("Events", func() {
	var contact string
	BeforeEach(func() { contact = newContact() })

	deliver := func(items ...obj) {
		GinkgoHelper()
		Expect(post(delivery(entry(supportAccount, items...)), acmeSecret)).To(Equal(http.StatusOK))
	}

	It("records a message with text, every attachment type, reply, quick reply", func() {
		mid, repliedTo := newMID(), newMID()
		var atts []any
		types := []string{"image", "video", "audio", "file", "share", "story_mention", "ig_reel", "ig_post", "ig_story", "Weird-Type"}
		for _, t := range types {
			atts = append(atts, obj{"type": t, "payload": obj{"url": "https://cdn.example/" + strings.ToLower(t)}})
		}
		before := counter("message", "stored")
		deliver(fromCustomer(supportAccount, contact, at(time.Second), "message", obj{
			"mid": mid, "text": "Is this in stock?", "attachments": atts,
			"reply_to": obj{"mid": repliedTo}, "quick_reply": obj{"payload": "STOCK"},
		}))
		Expect(counter("message", "stored")).To(Equal(before + 1))

		m := message("support", mid)
		Expect(m.Labels).To(Equal(map[string]string{
			igv1.LabelChannel: "support", igv1.LabelContact: contact, igv1.LabelDirection: igv1.DirectionLabelIncoming,
			igv1.LabelEvent: igv1.EventLabelMessage, igv1.LabelAwaitingReply: "true",
		}))
		Expect(m.OwnerReferences).To(ConsistOf(HaveField("UID", BeEquivalentTo(supportUID))))
		Expect(m.Spec.ChannelRef.Name).To(Equal("support"))
		Expect(m.Spec.Direction).To(Equal(igv1.DirectionIncoming))
		Expect(m.Spec.ContactID).To(Equal(contact))
		Expect(m.Spec.Text).To(Equal("Is this in stock?"))
		Expect(m.Spec.ReplyTo).To(Equal(repliedTo))
		Expect(m.Spec.Attachments).To(HaveLen(len(types)))
		for i, t := range types[:len(types)-1] {
			Expect(m.Spec.Attachments[i]).To(Equal(igv1.Attachment{Type: t, URL: "https://cdn.example/" + t}))
		}
		Expect(m.Spec.Attachments[len(types)-1].Type).To(Equal("unknown"))
		Expect(m.Status.Phase).To(Equal(igv1.PhaseReceived))
		Expect(m.Status.MessageID).To(Equal(mid))
		Expect(m.Status.Timestamp.Time).To(BeTemporally("==", t0.Add(time.Second)))
		Expect(m.Status.QuickReplyPayload).To(Equal("STOCK"))
		Expect(m.Status.IsEcho).To(BeFalse())
		expectCurrent(m)
	})

	It("records a story reply and unsupported content", func() {
		mid, story := newMID(), newMID()
		deliver(
			fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "nice", "reply_to": obj{"story": obj{"id": "1790000", "url": "https://cdn.example/s"}}}),
			fromCustomer(supportAccount, contact, at(time.Second), "message", obj{"mid": story, "is_unsupported": true}),
		)
		// A story reply is not a reply to a message.
		Expect(message("support", mid).Spec.ReplyTo).To(BeEmpty())
		Expect(message("support", mid).Spec.ReplyToStory).To(Equal(&igv1.StoryReference{ID: "1790000", URL: "https://cdn.example/s"}))
		Expect(message("support", story).Status.Unsupported).To(BeTrue())
	})

	It("records an echo of what the business sent from another client", func() {
		mid := newMID()
		deliver(fromBusiness(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "sent from the app", "is_echo": true}))
		m := message("support", mid)
		Expect(m.Status.IsEcho).To(BeTrue())
		// The business's message: outgoing, already sent, never sent again.
		Expect(m.Spec.Direction).To(Equal(igv1.DirectionOutgoing))
		Expect(m.Spec.Echo).To(BeTrue())
		Expect(m.Spec.ContactID).To(Equal(contact))
		Expect(m.Spec.Text).To(Equal("sent from the app"))
		Expect(m.Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(m.Status.SentAt.Time).To(BeTemporally("==", t0))
		Expect(m.Labels).To(Equal(map[string]string{
			igv1.LabelChannel: "support", igv1.LabelContact: contact, igv1.LabelDirection: igv1.DirectionLabelOutgoing,
			igv1.LabelEvent: igv1.EventLabelEcho, igv1.LabelDone: "true",
		}))
		expectCurrent(m)
		var incoming igv1.InstagramMessageList
		Expect(k8s.List(ctx, &incoming, client.InNamespace(ns), client.MatchingLabels{
			igv1.LabelChannel: "support", igv1.LabelContact: contact, igv1.LabelDirection: igv1.DirectionLabelIncoming,
		})).To(Succeed())
		Expect(incoming.Items).To(BeEmpty(), "direction=incoming selects only the customer's messages")
	})

	It("clears an unsent message", func() {
		mid := newMID()
		deliver(fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "oops", "attachments": []any{obj{"type": "image", "payload": obj{"url": "https://x"}}}}))
		deliver(fromCustomer(supportAccount, contact, at(time.Minute), "message", obj{"mid": mid, "is_deleted": true}))
		m := message("support", mid)
		Expect(m.Spec.Text).To(BeEmpty())
		Expect(m.Spec.Attachments).To(BeEmpty())
		Expect(m.Status.Phase).To(Equal(igv1.PhaseDeleted))
		Expect(m.Status.DeletedAt.Time).To(BeTemporally("==", t0.Add(time.Minute)))
		expectCurrent(m)
	})

	It("never records the content of a message unsent before it arrived", func() {
		mid := newMID()
		deliver(fromCustomer(supportAccount, contact, at(time.Minute), "message", obj{"mid": mid, "is_deleted": true}))
		deliver(fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "withdrawn"}))
		m := message("support", mid)
		Expect(m.Spec.Text).To(BeEmpty())
		Expect(m.Status.Phase).To(Equal(igv1.PhaseDeleted))
		Expect(conversation("support", contact)).To(HaveLen(1))
	})

	It("applies a read receipt as a watermark over sent messages", func() {
		m1 := outgoing(contact, newMID(), t0.Add(1*time.Second), true)
		m2mid := newMID()
		m2 := outgoing(contact, m2mid, t0.Add(2*time.Second), true)
		m3 := outgoing(contact, newMID(), t0.Add(3*time.Second), true)
		other := outgoing(newContact(), newMID(), t0, true) // another conversation
		deliver(fromCustomer(supportAccount, contact, at(10*time.Second), "read", obj{"mid": m2mid}))
		for _, m := range []*igv1.InstagramMessage{m1, m2, m3, other} {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(m), m)).To(Succeed())
		}
		Expect(m1.Status.Phase).To(Equal(igv1.PhaseRead))
		Expect(m2.Status.Phase).To(Equal(igv1.PhaseRead))
		Expect(m2.Status.ReadAt.Time).To(BeTemporally("==", t0.Add(10*time.Second)))
		Expect(m3.Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(other.Status.Phase).To(Equal(igv1.PhaseSent))
	})

	It("uses the receipt's own time as watermark when the mid is unknown (read before message)", func() {
		m1 := outgoing(contact, newMID(), t0.Add(1*time.Second), true)
		late := outgoing(contact, newMID(), t0.Add(30*time.Second), true)
		echoMID := newMID()
		deliver(fromBusiness(supportAccount, contact, at(2*time.Second), "message", obj{"mid": echoMID, "text": "from phone", "is_echo": true}))
		deliver(fromCustomer(supportAccount, contact, at(10*time.Second), "read", obj{"mid": newMID()}))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(m1), m1)).To(Succeed())
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(late), late)).To(Succeed())
		Expect(m1.Status.Phase).To(Equal(igv1.PhaseRead))
		Expect(late.Status.Phase).To(Equal(igv1.PhaseSent))
		echo := message("support", echoMID)
		Expect(echo.Status.ReadAt).NotTo(BeNil())
		Expect(echo.Status.Phase).To(Equal(igv1.PhaseRead))
	})

	It("adds and removes reactions, never letting an older event win", func() {
		mid := newMID()
		deliver(fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "look"}))
		deliver(fromCustomer(supportAccount, contact, at(5*time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": "love", "emoji": "❤️"}))
		m := message("support", mid)
		Expect(m.Status.Reactions).To(ConsistOf(And(HaveField("Reaction", "love"), HaveField("Emoji", "❤️"), HaveField("By", contact))))

		deliver(fromCustomer(supportAccount, contact, at(9*time.Second), "reaction", obj{"mid": mid, "action": "unreact"}))
		Expect(message("support", mid).Status.Reactions).To(BeEmpty())

		// A newer reaction replaces the person's previous one; an older one
		// arriving late never replaces a newer one.
		deliver(fromCustomer(supportAccount, contact, at(20*time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": "like", "emoji": "👍"}))
		deliver(fromCustomer(supportAccount, contact, at(15*time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": "love", "emoji": "❤️"}))
		Expect(message("support", mid).Status.Reactions).To(ConsistOf(HaveField("Reaction", "like")))
	})

	It("finds a reaction's target through the manager's mid label", func() {
		mid := newMID()
		out := outgoing(contact, mid, t0, true)
		deliver(fromCustomer(supportAccount, contact, at(time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": "like", "emoji": "👍"}))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(out), out)).To(Succeed())
		Expect(out.Status.Reactions).To(ConsistOf(HaveField("Reaction", "like")))
		Expect(absent("support", mid)).To(BeTrue())
	})

	It("asks Meta to retry a reaction that arrives before its message, then applies it", func() {
		mid := newMID()
		reaction := delivery(entry(supportAccount, fromCustomer(supportAccount, contact, at(5*time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": "wow", "emoji": "😮"})))
		Expect(post(reaction, acmeSecret)).To(Equal(http.StatusServiceUnavailable))
		Expect(absent("support", mid)).To(BeTrue())
		deliver(fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "surprise"}))
		Expect(post(reaction, acmeSecret)).To(Equal(http.StatusOK))
		Expect(message("support", mid).Status.Reactions).To(ConsistOf(HaveField("Reaction", "wow")))
	})

	It("applies a reaction delivered in the same batch before its message", func() {
		mid := newMID()
		deliver(
			fromCustomer(supportAccount, contact, at(5*time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": "like"}),
			fromCustomer(supportAccount, contact, at(6*time.Second), "message_edit", obj{"mid": mid, "text": "edited", "num_edit": 1}),
			fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "first"}),
		)
		m := message("support", mid)
		Expect(m.Status.Reactions).To(ConsistOf(HaveField("Reaction", "like")))
		Expect(m.Spec.Text).To(Equal("edited"))
	})

	It("leaves alone an object of another kind that holds a message's name", func() {
		mid := newMID()
		squatter := &igv1.InstagramMessage{
			ObjectMeta: metav1.ObjectMeta{Name: names.IncomingMessageName("support", mid), Namespace: ns},
			Spec:       igv1.InstagramMessageSpec{ChannelRef: igv1.ChannelReference{Name: "support"}, Direction: igv1.DirectionOutgoing, ContactID: contact, Text: "mine"},
		}
		Expect(k8s.Create(ctx, squatter)).To(Succeed())
		before := counter("message", "invalid")
		deliver(fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "hello"}))
		Expect(counter("message", "invalid")).To(Equal(before + 1))
		m := message("support", mid)
		Expect(m.Spec.Direction).To(Equal(igv1.DirectionOutgoing))
		Expect(m.Status.Phase).To(BeEmpty())
	})

	It("drops a reaction to an unknown message once the grace period is over", func() {
		before := counter("reaction", "orphaned")
		deliver(fromCustomer(supportAccount, contact, at(-time.Hour), "reaction", obj{"mid": newMID(), "action": "react", "reaction": "like"}))
		Expect(counter("reaction", "orphaned")).To(Equal(before + 1))
		Expect(conversation("support", contact)).To(BeEmpty())
	})

	It("applies edits in order of num_edit", func() {
		mid := newMID()
		deliver(fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "helo"}))
		deliver(fromCustomer(supportAccount, contact, at(20*time.Second), "message_edit", obj{"mid": mid, "text": "hello!", "num_edit": 2}))
		deliver(fromCustomer(supportAccount, contact, at(10*time.Second), "message_edit", obj{"mid": mid, "text": "hello", "num_edit": 1}))
		m := message("support", mid)
		Expect(m.Spec.Text).To(Equal("hello!"))
		Expect(m.Status.EditCount).To(BeEquivalentTo(2))
		Expect(m.Status.EditedAt.Time).To(BeTemporally("==", t0.Add(20*time.Second)))
		expectCurrent(m)
	})

	It("records a postback keyed by its mid", func() {
		mid := newMID()
		item := fromCustomer(supportAccount, contact, at(0), "postback", obj{"mid": mid, "title": "Talk to a human", "payload": "HUMAN"})
		deliver(item)
		deliver(item)
		m := message("support", mid)
		Expect(m.Status.Postback).To(Equal(&igv1.Postback{Title: "Talk to a human", Payload: "HUMAN"}))
		Expect(m.Spec.Text).To(Equal("Talk to a human"))
		Expect(conversation("support", contact)).To(HaveLen(1))
	})

	It("records a referral once, keyed by sender and time", func() {
		item := fromCustomer(supportAccount, contact, at(0), "referral", obj{"ref": "summer", "source": "ADS", "type": "OPEN_THREAD"})
		deliver(item)
		deliver(item)
		conv := conversation("support", contact)
		Expect(conv).To(HaveLen(1))
		Expect(conv[0].Status.Referral).To(Equal(&igv1.Referral{Ref: "summer", Source: "ADS", Type: "OPEN_THREAD"}))
		Expect(conv[0].Status.Phase).To(Equal(igv1.PhaseReceived))
	})

	It("treats standby like messaging and records for a suspended channel with an invalid token", func() {
		mid := newMID()
		body := delivery(obj{"id": salesAccount, "time": t0.UnixMilli(), "standby": []any{
			fromCustomer(salesAccount, contact, at(0), "message", obj{"mid": mid, "text": "still there?"}),
		}})
		Expect(post(body, ownSecret)).To(Equal(http.StatusOK))
		Expect(message("sales", mid).Spec.Text).To(Equal("still there?"))
	})

	It("acknowledges and counts the dashboard test, unknown items and long-unroutable accounts", func() {
		test, unknown, noChannel := counter("test", "ignored"), counter("unknown", "ignored"), rejected("no_channel")
		old := t0.Add(-ws.DefaultUnclaimedGrace).UnixMilli()
		body := delivery(
			obj{"id": "0", "time": t0.UnixMilli(), "changes": []any{obj{"field": "messages", "value": obj{
				"sender": obj{"id": "12334"}, "recipient": obj{"id": "23245"}, "timestamp": "1527459824",
				"message": obj{"mid": "random_mid", "text": "random_text"},
			}}}},
			entry(supportAccount, fromCustomer(supportAccount, contact, at(0), "app_roles", obj{"123": []any{"primary_receiver"}})),
			obj{"id": orphanAccount, "time": old, "messaging": []any{fromCustomer(orphanAccount, contact, old, "message", obj{"mid": newMID(), "text": "lost"})}},
		)
		Expect(post(body, acmeSecret)).To(Equal(http.StatusOK))
		Expect(counter("test", "ignored")).To(Equal(test + 1))
		Expect(counter("unknown", "ignored")).To(Equal(unknown + 1))
		Expect(rejected("no_channel")).To(Equal(noChannel + 1))
		Expect(conversation("support", contact)).To(BeEmpty())
	})
})

var _ = Describe("Routing", func() {
	It("writes to one channel when two claim the same account", func() {
		const account = "17841400000000077"
		for _, name := range []string{"dup-b", "dup-a"} {
			ch := &igv1.InstagramChannel{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"}},
			}
			Expect(k8s.Create(ctx, ch)).To(Succeed())
			ch.Status.Account = &igv1.AccountStatus{UserID: account}
			Expect(k8s.Status().Update(ctx, ch)).To(Succeed())
		}
		var a, b igv1.InstagramChannel
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dup-a"}, &a)).To(Succeed())
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "dup-b"}, &b)).To(Succeed())
		// dup-b was created first; within the same second the name decides.
		winner, loser := "dup-b", "dup-a"
		if a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			winner, loser = "dup-a", "dup-b"
		}
		Eventually(func(g Gomega) {
			var l igv1.InstagramChannelList
			g.Expect(mgrCache.List(ctx, &l, client.MatchingFields{ws.ChannelUserIDIndex: account})).To(Succeed())
			g.Expect(l.Items).To(HaveLen(2))
		}).Should(Succeed())

		contact, mid := newContact(), newMID()
		Expect(post(delivery(entry(account, fromCustomer(account, contact, at(0), "message", obj{"mid": mid, "text": "which one?"}))), acmeSecret)).To(Equal(http.StatusOK))
		Expect(message(winner, mid).Spec.ChannelRef.Name).To(Equal(winner))
		Expect(absent(loser, mid)).To(BeTrue())
	})
})

var _ = Describe("Account ownership", func() {
	// claim makes a channel whose status names account, connected at the
	// given time, with the Ready reason the manager would have set.
	claim := func(name, account string, connectedAt time.Time, readyReason string) {
		GinkgoHelper()
		ch := &igv1.InstagramChannel{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"}},
		}
		Expect(k8s.Create(ctx, ch)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, ch))).To(Succeed()) })
		ch.Status.Account = &igv1.AccountStatus{UserID: account, ConnectedAt: &metav1.Time{Time: connectedAt}}
		if readyReason != "" {
			ch.Status.Conditions = []metav1.Condition{{Type: igv1.ConditionReady, Status: metav1.ConditionFalse, Reason: readyReason,
				Message: "set by the test", LastTransitionTime: metav1.Now()}}
		}
		Expect(k8s.Status().Update(ctx, ch)).To(Succeed())
	}
	waitClaims := func(account string, n int) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			var l igv1.InstagramChannelList
			g.Expect(mgrCache.List(ctx, &l, client.MatchingFields{ws.ChannelUserIDIndex: account})).To(Succeed())
			g.Expect(l.Items).To(HaveLen(n))
		}).Should(Succeed())
	}

	It("routes to the channel that connected the account first, not the one created first", func() {
		const account = "17841400000000061"
		// "taker" is created first but connects a day after "owner".
		claim("taker", account, t0.Add(24*time.Hour), "")
		claim("owner", account, t0, "")
		waitClaims(account, 2)
		contact, mid := newContact(), newMID()
		Expect(post(delivery(entry(account, fromCustomer(account, contact, at(0), "message", obj{"mid": mid, "text": "hi"}))), acmeSecret)).To(Equal(http.StatusOK))
		Expect(message("owner", mid).Spec.ChannelRef.Name).To(Equal("owner"))
		Expect(absent("taker", mid)).To(BeTrue())
	})

	It("never routes to a channel whose app no longer admits its namespace, but still to one awaiting re-authorization", func() {
		const refusedAccount, reauthAccount = "17841400000000062", "17841400000000063"
		claim("refused", refusedAccount, t0, igv1.ReasonNamespaceNotAllowed)
		claim("reauth", reauthAccount, t0, igv1.ReasonTokenInvalid)
		waitClaims(refusedAccount, 1)
		waitClaims(reauthAccount, 1)
		contact, mid := newContact(), newMID()
		old := t0.Add(-ws.DefaultUnclaimedGrace).UnixMilli()
		dropped := rejected("no_channel")
		Expect(post(delivery(obj{"id": refusedAccount, "time": old, "messaging": []any{
			fromCustomer(refusedAccount, contact, old, "message", obj{"mid": mid, "text": "to nobody"}),
		}}), acmeSecret)).To(Equal(http.StatusOK))
		Expect(rejected("no_channel")).To(Equal(dropped + 1))
		Expect(absent("refused", mid)).To(BeTrue())

		mid2 := newMID()
		Expect(post(delivery(entry(reauthAccount, fromCustomer(reauthAccount, contact, at(0), "message", obj{"mid": mid2, "text": "still here"}))), acmeSecret)).To(Equal(http.StatusOK))
		Expect(message("reauth", mid2).Spec.Text).To(Equal("still here"))
	})
})

var _ = Describe("Idempotence", func() {
	It("makes one object of the same delivery sent three times", func() {
		contact, mid := newContact(), newMID()
		body := delivery(entry(supportAccount,
			fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "once"}),
			fromCustomer(supportAccount, contact, at(time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": "love"}),
		))
		for range 3 {
			Expect(post(body, acmeSecret)).To(Equal(http.StatusOK))
		}
		conv := conversation("support", contact)
		Expect(conv).To(HaveLen(1))
		Expect(conv[0].Status.Reactions).To(HaveLen(1))
	})

	It("records a 100-entry mixed batch completely", func() {
		var entries []obj
		contacts := make([]string, 10)
		for i := range contacts {
			contacts[i] = newContact()
		}
		// Ten conversations of ten events each: six messages, two echoes, a
		// read receipt, and a reaction to the conversation's first message.
		var first string
		for i := range 100 {
			c := contacts[i/10]
			ts := at(time.Duration(i) * time.Second)
			var item obj
			switch {
			case i%10 < 6:
				mid := newMID()
				if i%10 == 0 {
					first = mid
				}
				item = fromCustomer(supportAccount, c, ts, "message", obj{"mid": mid, "text": fmt.Sprintf("message %d", i)})
			case i%10 < 8:
				item = fromBusiness(supportAccount, c, ts, "message", obj{"mid": newMID(), "text": "echo", "is_echo": true})
			case i%10 == 8:
				item = fromCustomer(supportAccount, c, ts, "read", obj{"mid": newMID()})
			default:
				item = fromCustomer(supportAccount, c, ts, "reaction", obj{"mid": first, "action": "react", "reaction": "like"})
			}
			entries = append(entries, entry(supportAccount, item))
		}
		body := delivery(entries...)
		Expect(post(body, acmeSecret)).To(Equal(http.StatusOK))
		Expect(post(body, acmeSecret)).To(Equal(http.StatusOK))
		total, reactions := 0, 0
		for _, c := range contacts {
			for _, m := range conversation("support", c) {
				total++
				reactions += len(m.Status.Reactions)
				if m.Spec.Echo {
					// Recorded Sent, then covered by the batch's read receipt.
					Expect(m.Status.Phase).To(Equal(igv1.PhaseRead))
				} else {
					Expect(m.Status.Phase).To(Equal(igv1.PhaseReceived))
				}
			}
		}
		Expect(total).To(Equal(80)) // 60 messages + 20 echoes
		Expect(reactions).To(Equal(10))
	})

	It("answers 503 while the API server fails and records exactly once on retry", func() {
		for _, failures := range []int32{1, 2, 3} {
			contact, mid := newContact(), newMID()
			body := delivery(entry(supportAccount, fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "retry me"})))
			failWrites.Store(failures)
			code := post(body, acmeSecret)
			for code != http.StatusOK && failWrites.Load() > 0 {
				Expect(code).To(Equal(http.StatusServiceUnavailable))
				code = post(body, acmeSecret)
			}
			if code != http.StatusOK {
				code = post(body, acmeSecret)
			}
			Expect(code).To(Equal(http.StatusOK))
			failWrites.Store(0)
			conv := conversation("support", contact)
			Expect(conv).To(HaveLen(1), "failures=%d", failures)
			Expect(conv[0].Status.Phase).To(Equal(igv1.PhaseReceived))
			Expect(conv[0].Spec.Text).To(Equal("retry me"))
		}
	})
})

var _ = Describe("Echo of our own send", func() {
	var contact, mid string
	var echo []byte
	BeforeEach(func() {
		contact, mid = newContact(), newMID()
		echo = delivery(entry(supportAccount, fromBusiness(supportAccount, contact, at(time.Second), "message", obj{"mid": mid, "text": "Yes, in stock", "is_echo": true})))
	})
	only := func() {
		GinkgoHelper()
		conv := conversation("support", contact)
		Expect(conv).To(HaveLen(1))
		Expect(conv[0].Spec.Direction).To(Equal(igv1.DirectionOutgoing))
		Expect(absent("support", mid)).To(BeTrue())
	}

	It("writes nothing when the manager labelled its send first", func() {
		outgoing(contact, mid, t0, true)
		before := counter("echo", "own_send")
		Expect(post(echo, acmeSecret)).To(Equal(http.StatusOK))
		Expect(counter("echo", "own_send")).To(Equal(before + 1))
		only()
	})

	It("leaves the cleanup to the manager when the echo came first", func() {
		out := outgoing(contact, mid, t0, false)
		Expect(post(echo, acmeSecret)).To(Equal(http.StatusOK))
		Expect(absent("support", mid)).To(BeFalse())
		markSent(out, mid)
		only()
		Expect(post(echo, acmeSecret)).To(Equal(http.StatusOK)) // redelivery
		only()
	})

	It("deletes its echo object when the manager labels between create and check", func() {
		out := outgoing(contact, mid, t0, false)
		// The receiver's first look finds nothing; right before its second
		// look the manager labels (and, being slow, has not deleted yet).
		first := func() {
			second := func() {
				base := out.DeepCopy()
				out.Labels[igv1.LabelMID] = names.MIDHash(mid)
				Expect(k8s.Patch(ctx, out, client.MergeFrom(base))).To(Succeed())
			}
			beforeMIDList.Store(&second)
		}
		beforeMIDList.Store(&first)
		Expect(post(echo, acmeSecret)).To(Equal(http.StatusOK))
		Expect(beforeMIDList.Load()).To(BeNil())
		only()
	})
})

var _ = Describe("Shutdown", func() {
	It("finishes the delivery in flight, then stops", func() {
		entered, release := make(chan struct{}), make(chan struct{})
		blocking := interceptor.NewClient(k8sWatch, interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				if _, ok := obj.(*igv1.InstagramMessage); ok {
					close(entered)
					<-release
				}
				return c.Create(ctx, obj, opts...)
			},
		})
		s := ws.New(ws.Options{Client: blocking, Cache: mgrCache, APIReader: k8s, ClusterResourceNamespace: clusterNS, BindAddress: "127.0.0.1:0", Clock: fakeClock})
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Start(sctx) }()
		Eventually(s.Addr).ShouldNot(BeNil())
		Expect(s.ReadyCheck(nil)).To(Succeed())

		contact, mid := newContact(), newMID()
		body := delivery(entry(supportAccount, fromCustomer(supportAccount, contact, at(0), "message", obj{"mid": mid, "text": "in flight"})))
		answer := make(chan int, 1)
		go func() {
			defer GinkgoRecover()
			req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr().String()+ws.WebhookPath, bytes.NewReader(body))
			req.Header.Set(ws.SignatureHeader, sign(acmeSecret, body))
			resp, err := http.DefaultClient.Do(req)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			answer <- resp.StatusCode
		}()
		Eventually(entered).Should(BeClosed())
		cancel()
		Consistently(done, "200ms").ShouldNot(Receive())
		close(release)
		Eventually(answer).Should(Receive(Equal(http.StatusOK)))
		Eventually(done).WithTimeout(10 * time.Second).Should(Receive(BeNil()))
		Expect(message("support", mid).Status.Phase).To(Equal(igv1.PhaseReceived))
	})
})
