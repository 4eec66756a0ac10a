package webhookserver_test

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

// A send Instagram records as several messages (images) has several mids:
// the manager keeps the first in status.messageID, the others in
// status.messageIDs with a label each; echoes and read receipts of any of
// them converge on the one object.
var _ = Describe("Further mids of one send", func() {
	It("takes every echo as the own send's and reads the message by its last mid", func() {
		contact := newContact()
		first, second, third := newMID(), newMID(), newMID()
		out := outgoing(contact, first, t0, true)
		base := out.DeepCopy()
		out.Status.MessageIDs = []string{second, third}
		Expect(k8s.Status().Patch(ctx, out, client.MergeFrom(base))).To(Succeed())
		base = out.DeepCopy()
		out.Labels[names.MIDLabelKey(second)] = "true"
		out.Labels[names.MIDLabelKey(third)] = "true"
		Expect(k8s.Patch(ctx, out, client.MergeFrom(base))).To(Succeed())

		deliver := func(items ...obj) {
			GinkgoHelper()
			Expect(post(delivery(entry(supportAccount, items...)), acmeSecret)).To(Equal(http.StatusOK))
		}
		before := counter("echo", "own_send")
		for _, mid := range []string{first, second, third} {
			deliver(fromBusiness(supportAccount, contact, at(time.Second), "message", obj{"mid": mid, "is_echo": true,
				"attachments": []any{obj{"type": "image", "payload": obj{"url": "https://cdn.example/i.jpg"}}}}))
		}
		Expect(counter("echo", "own_send")).To(Equal(before + 3))
		for _, mid := range []string{second, third} {
			Expect(absent("support", mid)).To(BeTrue(), "no echo object for a further mid")
		}
		conv := conversation("support", contact)
		Expect(conv).To(HaveLen(1))

		deliver(fromCustomer(supportAccount, contact, at(10*time.Second), "read", obj{"mid": third}))
		deliver(fromCustomer(supportAccount, contact, at(11*time.Second), "reaction", obj{"mid": second, "action": "react", "reaction": "love"}))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(out), out)).To(Succeed())
		Expect(out.Status.Phase).To(Equal(igv1.PhaseRead))
		Expect(out.Status.ReadAt.Time).To(BeTemporally("==", t0.Add(10*time.Second)))
		Expect(out.Status.Reactions).To(ConsistOf(HaveField("Reaction", "love")))
	})
})
