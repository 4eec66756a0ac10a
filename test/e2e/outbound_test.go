package e2e

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/localenv"
	"github.com/leadchat/instagram-operator/internal/names"
)

// sample reads one manifest of config/samples as an unstructured object in
// namespace ns.
func sample(file, ns string) *unstructured.Unstructured {
	GinkgoHelper()
	raw, err := readRepoFile("config/samples/" + file)
	Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal([]byte(raw), &u.Object)).To(Succeed())
	u.SetNamespace(ns)
	return u
}

func apply(ctx context.Context, u *unstructured.Unstructured) {
	GinkgoHelper()
	Expect(k8sClient.Patch(ctx, u, client.Apply, client.FieldOwner("e2e-samples"), client.ForceOwnership)).To(Succeed(), u.GetName())
}

// The outbound samples, applied as they are (references pointed at the
// objects of this run), against the real binaries and the fake, which
// validates each request body and counts the requests.
var _ = Describe("the outbound samples, end to end", Ordered, func() {
	ctx := context.Background()
	ns := "outbound-" + rand.String(5)
	app := localenv.App{ID: "1000000000000002", Secret: "e2e-outbound-secret-" + rand.String(8), VerifyToken: "e2e-outbound", Name: "outbound"}
	account := newAccount()
	const customer = "5512340000000001"
	const commentID = "17900000000000001"
	var customerMID string

	It("applies the profile sample as the channel: Ready, ice breakers and menu at Instagram", func() {
		Expect(env.CreateApp(ctx, app)).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		env.Fake.AddAccount(account)
		token := env.Fake.IssueLongLivedTokenWithScopes(app.ID, account.UserID, fake.ScopeBasic, fake.ScopeManageMessages, fake.ScopeManageComments)
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "support-seed", Namespace: ns},
			StringData: map[string]string{igv1.TokenSecretKeyAccessToken: token},
		})).To(Succeed())

		ch := sample("instagram_v1alpha1_instagramchannel_profile.yaml", ns)
		ch.SetName("support")
		Expect(unstructured.SetNestedMap(ch.Object, map[string]any{"kind": "ClusterInstagramApp", "name": app.Name}, "spec", "appRef")).To(Succeed())
		Expect(unstructured.SetNestedMap(ch.Object, map[string]any{"name": "support-seed"}, "spec", "initialTokenSecretRef")).To(Succeed())
		Expect(unstructured.SetNestedStringSlice(ch.Object, []string{"messages", "messaging_seen", "message_reactions", "messaging_postbacks", "comments"}, "spec", "subscribedFields")).To(Succeed())
		apply(ctx, ch)

		out, err := env.Kubectl("-n", ns, "wait", "--for=condition=ProfileSynced", "instagramchannel/support", "--timeout=60s")
		Expect(err).NotTo(HaveOccurred(), out)
		out, err = env.Kubectl("-n", ns, "wait", "--for=condition=Ready", "instagramchannel/support", "--timeout=60s")
		Expect(err).NotTo(HaveOccurred(), out)
		p := env.Fake.MessengerProfileOf(account.UserID)
		Expect(string(p.IceBreakers)).To(ContainSubstring(`"question":"What are your opening hours?"`))
		Expect(string(p.PersistentMenu)).To(ContainSubstring(`"title":"Talk to a person"`))
	})

	It("records the customer's message and comment the samples refer to", func() {
		var err error
		customerMID, err = env.Fake.DeliverMessage(ctx, fake.CustomerMessage{AccountUserID: account.UserID, CustomerID: customer, Text: "Do you have the runner in 42?"})
		Expect(err).NotTo(HaveOccurred())
		env.Fake.AddPost(account.UserID, "17890000000000001")
		env.Fake.AddComment(fake.Comment{ID: commentID, AccountUserID: account.UserID, MediaID: "17890000000000001", FromID: customer, Text: "price?"})
		Expect(env.Fake.DeliverChange(ctx, account.UserID, fake.FieldComments, map[string]any{
			"id": commentID, "text": "price?", "from": map[string]any{"id": customer, "username": "jane"},
			"media": map[string]any{"id": "17890000000000001", "media_product_type": "FEED"},
		})).To(Succeed())
		Eventually(func(g Gomega) {
			var c igv1.InstagramComment
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: names.CommentName("support", commentID)}, &c)).To(Succeed())
			var m igv1.InstagramMessage
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: names.IncomingMessageName("support", customerMID)}, &m)).To(Succeed())
		}, timeout).Should(Succeed())
	})

	It("sends each message sample once, with the documented body, to Sent", func() {
		files := map[string]string{ // sample -> what the fake records it as
			"instagram_v1alpha1_instagrammessage_quickreplies.yaml":    "quick_replies",
			"instagram_v1alpha1_instagrammessage_buttontemplate.yaml":  "button_template",
			"instagram_v1alpha1_instagrammessage_generictemplate.yaml": "generic_template",
			"instagram_v1alpha1_instagrammessage_images.yaml":          "images",
			"instagram_v1alpha1_instagrammessage_sticker.yaml":         "like_heart",
			"instagram_v1alpha1_instagrammessage_sharepost.yaml":       "media_share",
			"instagram_v1alpha1_instagrammessage_replyto.yaml":         "text",
			"instagram_v1alpha1_instagrammessage_privatereply.yaml":    "private_reply",
			"instagram_v1alpha1_instagrammessage_react.yaml":           "react",
			"instagram_v1alpha1_instagrammessage_unreact.yaml":         "unreact",
			"instagram_v1alpha1_instagrammessage_typing.yaml":          "typing_on",
			"instagram_v1alpha1_instagrammessage_markseen.yaml":        "mark_seen",
		}
		var applied []*unstructured.Unstructured
		for f := range files {
			u := sample(f, ns)
			// Point the samples' references at this run's objects.
			if _, ok, _ := unstructured.NestedString(u.Object, "spec", "replyTo"); ok {
				Expect(unstructured.SetNestedField(u.Object, customerMID, "spec", "replyTo")).To(Succeed())
			}
			if _, ok, _ := unstructured.NestedString(u.Object, "spec", "senderAction", "messageID"); ok {
				Expect(unstructured.SetNestedField(u.Object, customerMID, "spec", "senderAction", "messageID")).To(Succeed())
			}
			if _, ok, _ := unstructured.NestedString(u.Object, "spec", "senderAction", "messageRef", "name"); ok {
				Expect(unstructured.SetNestedField(u.Object, names.IncomingMessageName("support", customerMID), "spec", "senderAction", "messageRef", "name")).To(Succeed())
			}
			if _, ok, _ := unstructured.NestedString(u.Object, "spec", "privateReplyTo", "name"); ok {
				Expect(unstructured.SetNestedField(u.Object, names.CommentName("support", commentID), "spec", "privateReplyTo", "name")).To(Succeed())
			}
			apply(ctx, u)
			applied = append(applied, u)
		}
		for _, u := range applied {
			Eventually(func(g Gomega) {
				var m igv1.InstagramMessage
				g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: u.GetName()}, &m)).To(Succeed())
				g.Expect(m.Status.Phase).To(Or(Equal(igv1.PhaseSent), Equal(igv1.PhaseRead)), "%s: %s %s", u.GetName(), m.Status.Reason, m.Status.Message)
			}, timeout).Should(Succeed())
		}
		seen := map[string]int{}
		for _, m := range env.Fake.Sent() {
			if m.AccountUserID == account.UserID {
				seen[m.Kind]++
			}
		}
		for _, a := range env.Fake.SenderActions() {
			if a.AccountUserID == account.UserID {
				seen[a.Action]++
			}
		}
		for f, kind := range files {
			Expect(seen).To(HaveKeyWithValue(kind, 1), "%s was sent exactly once", f)
		}
		env.Fake.Flush()
		var list igv1.InstagramMessageList
		Expect(k8sClient.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{igv1.LabelEvent: igv1.EventLabelEcho})).To(Succeed())
		Expect(list.Items).To(BeEmpty(), "the echoes of the samples converged on their own objects")
	})

	It("moderates the recorded comment as the moderation sample asks", func() {
		u := sample("instagram_v1alpha1_instagramcomment_moderation.yaml", ns)
		u.SetName(names.CommentName("support", commentID))
		Expect(unstructured.SetNestedField(u.Object, commentID, "spec", "commentID")).To(Succeed())
		apply(ctx, u)
		Eventually(func(g Gomega) {
			st, ok := env.Fake.CommentState(commentID)
			g.Expect(ok).To(BeTrue())
			g.Expect(st.Hidden).To(BeTrue())
			g.Expect(st.Replies).To(HaveLen(1))
		}, timeout).Should(Succeed())
		out, err := env.Kubectl("-n", ns, "wait", "--for=condition=Synced", "instagramcomment/"+u.GetName(), "--timeout=60s")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(env.Fake.CallCount(fake.EndpointReplyComment)).To(Equal(1), "the public reply was posted once")
	})
})
