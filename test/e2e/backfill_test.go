package e2e

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/localenv"
)

var _ = Describe("conversation backfill", Ordered, func() {
	ctx := context.Background()
	ns := "backfill-" + rand.String(5)
	app := localenv.App{ID: "1000000000000003", Secret: "e2e-backfill-secret-" + rand.String(8), VerifyToken: "e2e-verify", Name: "backfill"}
	account := newAccount()
	const customer = "5512340000000321"
	mid := func(i int) string { return fmt.Sprintf("aWdfZAG1faXRlbToxbackfill%s%02d", ns, i) }

	It("imports a new channel's recent conversation, then a webhook for the same mid makes no second object", func() {
		Expect(env.CreateApp(ctx, app)).To(Succeed())
		at := time.Now().Add(-time.Hour)
		env.Fake.AddHistory(account.UserID, customer,
			fake.HistoryMessage{MID: mid(1), FromCustomer: true, Text: "Do you ship to Lyon?", At: at},
			fake.HistoryMessage{MID: mid(2), Text: "We do!", At: at.Add(time.Minute)},
		)
		ch, err := env.CreateTokenChannel(ctx, app, ns, "support", account, false)
		Expect(err).NotTo(HaveOccurred())
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.Backfill = &igv1.BackfillSpec{}
		Expect(k8sClient.Patch(ctx, ch, patch)).To(Succeed())

		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ch), ch)).To(Succeed())
			g.Expect(ch.Annotations).To(HaveKey(igv1.AnnotationBackfilledAt))
		}, timeout).Should(Succeed())
		var list igv1.InstagramMessageList
		Expect(k8sClient.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{igv1.LabelBackfilled: "true"})).To(Succeed())
		Expect(list.Items).To(HaveLen(2))
		Expect(ch.Spec.Backfill.Conversations).To(Equal(int32(25)), "defaulted by the API server")

		// Meta delivers the customer's message late (or again).
		_, err = env.Fake.DeliverMessage(ctx, fake.CustomerMessage{AccountUserID: account.UserID, CustomerID: customer, MID: mid(1), Text: "Do you ship to Lyon?"})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			c := &igv1.InstagramContact{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "support-" + customer}, c)).To(Succeed())
		}, timeout).Should(Succeed())
		Consistently(func() int { return objectsWithMID(ctx, ns, mid(1)) }, 2*time.Second).Should(Equal(1))
	})
})
