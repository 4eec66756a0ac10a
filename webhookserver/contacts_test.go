package webhookserver_test

import (
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

var _ = Describe("Contacts", func() {
	var customer string
	BeforeEach(func() { customer = newContact() })

	deliver := func(items ...obj) {
		GinkgoHelper()
		Expect(post(delivery(entry(supportAccount, items...)), acmeSecret)).To(Equal(http.StatusOK))
	}
	contact := func() *igv1.InstagramContact {
		GinkgoHelper()
		c := &igv1.InstagramContact{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: names.ContactName("support", customer)}, c)).To(Succeed())
		return c
	}
	// beAt matches a recorded time t0+d, to the microsecond.
	beAt := func(d time.Duration) OmegaMatcher {
		return WithTransform(func(m *metav1.MicroTime) time.Time {
			if m == nil {
				return time.Time{}
			}
			return m.Time
		}, BeTemporally("==", t0.Add(d)))
	}

	It("records a customer when they write, the window their message opens, and the business's answer", func() {
		deliver(fromCustomer(supportAccount, customer, at(1500*time.Millisecond), "message", obj{"mid": newMID(), "text": "hi"}))
		c := contact()
		Expect(c.Spec).To(Equal(igv1.ContactSpec{ChannelRef: igv1.ChannelReference{Name: "support"}, ContactID: customer}))
		Expect(c.Labels).To(HaveKeyWithValue(igv1.LabelChannel, "support"))
		Expect(c.Labels).To(HaveKeyWithValue(igv1.LabelContact, customer))
		Expect(c.Labels).To(HaveKeyWithValue(igv1.LabelWindow, igv1.WindowLabelOpen))
		Expect(c.OwnerReferences).To(HaveLen(1))
		Expect(string(c.OwnerReferences[0].UID)).To(Equal(supportUID))
		Expect(c.Status.FirstMessageAt).To(beAt(1500 * time.Millisecond))
		Expect(c.Status.LastMessageAt).To(beAt(1500 * time.Millisecond))
		Expect(c.Status.Window.State).To(Equal(igv1.WindowOpen))
		Expect(c.Status.Window.OpenedAt).To(beAt(1500 * time.Millisecond))
		Expect(c.Status.Window.StandardClosesAt).To(beAt(24*time.Hour + 1500*time.Millisecond))
		Expect(c.Status.Window.HumanAgentClosesAt).To(beAt(7*24*time.Hour + 1500*time.Millisecond))
		Expect(c.Status.LastAnsweredAt).To(BeNil())

		// An older message delivered late moves the first time, not the last.
		deliver(fromCustomer(supportAccount, customer, at(-time.Hour), "message", obj{"mid": newMID(), "text": "earlier"}))
		deliver(fromBusiness(supportAccount, customer, at(time.Minute), "message", obj{"mid": newMID(), "text": "hello!", "is_echo": true}))
		c = contact()
		Expect(c.Status.FirstMessageAt).To(beAt(-time.Hour))
		Expect(c.Status.LastMessageAt).To(beAt(1500 * time.Millisecond))
		Expect(c.Status.Window.OpenedAt).To(beAt(1500 * time.Millisecond))
		Expect(c.Status.LastAnsweredAt).To(beAt(time.Minute))
	})

	It("keeps events Meta does not say open the window apart: story mentions, postbacks, reactions", func() {
		mid := newMID()
		deliver(fromCustomer(supportAccount, customer, at(0), "message", obj{"mid": mid,
			"attachments": []obj{{"type": "story_mention", "payload": obj{"url": "https://cdn.example/s.jpg"}}}}))
		c := contact()
		Expect(c.Status.Window.OpenedAt).To(BeNil())
		Expect(c.Status.Window.UnconfirmedAt).To(beAt(0))
		Expect(c.Status.Window.UnconfirmedBy).To(Equal(igv1.OpenerStoryMention))
		Expect(c.Status.Window.State).To(Equal(igv1.WindowUnknown))
		Expect(c.Labels).To(HaveKeyWithValue(igv1.LabelWindow, igv1.WindowLabelUnknown))

		deliver(fromCustomer(supportAccount, customer, at(time.Second), "postback", obj{"mid": newMID(), "title": "Opening hours?", "payload": "HOURS"}))
		Expect(contact().Status.Window.UnconfirmedBy).To(Equal(igv1.OpenerPostback))
		deliver(fromCustomer(supportAccount, customer, at(2*time.Second), "reaction", obj{"mid": mid, "action": "react", "reaction": "love", "emoji": "❤"}))
		c = contact()
		Expect(c.Status.Window.UnconfirmedBy).To(Equal(igv1.OpenerReaction))
		Expect(c.Status.Window.UnconfirmedAt).To(beAt(2 * time.Second))
		Expect(c.Status.LastMessageAt).To(beAt(2 * time.Second))
		Expect(c.Status.Window.OpenedAt).To(BeNil())
	})

	It("removes the manager's unavailable-profile mark when the customer writes again", func() {
		deliver(fromCustomer(supportAccount, customer, at(0), "message", obj{"mid": newMID(), "text": "hi"}))
		c := contact()
		patch := client.MergeFrom(c.DeepCopy())
		c.Labels[igv1.LabelProfile] = igv1.ProfileLabelConsentRequired
		Expect(k8s.Patch(ctx, c, patch)).To(Succeed())
		deliver(fromCustomer(supportAccount, customer, at(time.Second), "message", obj{"mid": newMID(), "text": "again"}))
		Expect(contact().Labels).NotTo(HaveKey(igv1.LabelProfile))
	})

	It("makes one contact of concurrent deliveries for a new customer, with the latest time", func() {
		// Deliveries are handled concurrently and the receiver keeps no
		// lock of its own: this is the race two replicas run at the API
		// server.
		const n = 8
		var wg sync.WaitGroup
		codes := make([]int, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				body := delivery(entry(supportAccount, fromCustomer(supportAccount, customer, at(time.Duration(i)*time.Second), "message", obj{"mid": newMID(), "text": "hi"})))
				codes[i] = post(body, acmeSecret)
			}()
		}
		wg.Wait()
		Expect(codes).To(HaveEach(http.StatusOK))
		var l igv1.InstagramContactList
		Expect(k8s.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{igv1.LabelContact: customer})).To(Succeed())
		Expect(l.Items).To(HaveLen(1))
		Expect(l.Items[0].Status.FirstMessageAt).To(beAt(0))
		Expect(l.Items[0].Status.LastMessageAt).To(beAt((n - 1) * time.Second))
	})
})
