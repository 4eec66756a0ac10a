package schema_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

// newNamespace creates a namespace of its own for one spec.
func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "schema-" + rand.String(6)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// fromYAML turns a manifest into an unstructured object in namespace ns
// (cluster-scoped kinds keep no namespace).
func fromYAML(doc, ns string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal([]byte(doc), &u.Object)).To(Succeed())
	if u.GetKind() != "ClusterInstagramApp" {
		u.SetNamespace(ns)
	}
	return u
}

const channelYAML = `
apiVersion: instagram.leadchat.io/v1alpha1
kind: InstagramChannel
metadata: {name: ch}
spec:
  appRef: {name: app}
`

const messageYAML = `
apiVersion: instagram.leadchat.io/v1alpha1
kind: InstagramMessage
metadata: {name: msg}
spec:
  channelRef: {name: ch}
  direction: Outgoing
  contactID: "5512340000000001"
  text: hello
`

// mutate returns a copy of base with the spec fields set (nil deletes).
func mutate(base string, spec map[string]any) string {
	u := fromYAML(base, "")
	for k, v := range spec {
		if v == nil {
			unstructured.RemoveNestedField(u.Object, "spec", k)
			continue
		}
		Expect(unstructured.SetNestedField(u.Object, v, "spec", k)).To(Succeed())
	}
	b, err := yaml.Marshal(u.Object)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

var _ = Describe("CRD schema", func() {
	ctx := context.Background()

	It("accepts every sample in config/samples", func() {
		ns := newNamespace(ctx)
		files, err := filepath.Glob(filepath.Join(repoRoot, "config", "samples", "instagram_*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).NotTo(BeEmpty())
		for _, f := range files {
			b, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			for _, doc := range strings.Split(string(b), "\n---\n") {
				u := fromYAML(doc, ns)
				Expect(k8sClient.Create(ctx, u)).To(Succeed(), "sample %s", filepath.Base(f))
			}
		}
	})

	DescribeTable("refuses invalid objects with a message naming the field",
		func(doc string, wantInMessage ...string) {
			ns := newNamespace(ctx)
			err := k8sClient.Create(ctx, fromYAML(doc, ns))
			Expect(err).To(HaveOccurred())
			for _, want := range wantInMessage {
				Expect(err.Error()).To(ContainSubstring(want))
			}
		},
		Entry("refreshBefore below 1m", mutate(channelYAML, map[string]any{"refreshBefore": "30s"}), "spec.refreshBefore must be a duration like 480h0m0s (units h, m, s) from 1m to 1416h (59 days), not \"30s\""),
		Entry("refreshBefore above 59 days", mutate(channelYAML, map[string]any{"refreshBefore": "1417h"}), "spec.refreshBefore", `not "1417h"`),
		// Days are no Go duration unit: the message shows the value and the
		// accepted form, not a CEL error about type "string".
		Entry("refreshBefore in days", mutate(channelYAML, map[string]any{"refreshBefore": "20d"}), "spec.refreshBefore must be a duration like 480h0m0s (units h, m, s) from 1m to 1416h (59 days), not \"20d\""),
		Entry("messageRetention in days", mutate(channelYAML, map[string]any{"messageRetention": "7d"}), "spec.messageRetention must be 0s (keep) or a duration like 168h0m0s (units h, m, s) of at least 1h, not \"7d\""),
		Entry("empty subscribedFields", mutate(channelYAML, map[string]any{"subscribedFields": []any{}}), "spec.subscribedFields"),
		Entry("duplicate subscribedFields", mutate(channelYAML, map[string]any{"subscribedFields": []any{"messages", "messages"}}), "spec.subscribedFields", "Duplicate value"),
		Entry("unknown subscribedFields value", mutate(channelYAML, map[string]any{"subscribedFields": []any{"messages", "bogus"}}), "spec.subscribedFields", "Unsupported value"),
		Entry("unknown scope", mutate(channelYAML, map[string]any{"scopes": []any{"instagram_basic"}}), "spec.scopes"),
		Entry("plain-http redirectURL to a public host", mutate(channelYAML, map[string]any{"redirectURL": "http://hooks.example.com/instagram/callback"}), "spec.redirectURL"),
		Entry("missing appRef", mutate(channelYAML, map[string]any{"appRef": nil}), "spec.appRef"),
		Entry("unknown appRef kind", mutate(channelYAML, map[string]any{"appRef": map[string]any{"kind": "Issuer", "name": "a"}}), "spec.appRef.kind"),
		Entry("negative messageRetention", mutate(channelYAML, map[string]any{"messageRetention": "-1h"}), "spec.messageRetention"),
		Entry("messageRetention shorter than Meta's redelivery window", mutate(channelYAML, map[string]any{"messageRetention": "30m"}), "spec.messageRetention"),
		Entry("outgoing message without contactID", mutate(messageYAML, map[string]any{"contactID": nil}), "spec.contactID"),
		Entry("outgoing message with text and attachment", mutate(messageYAML, map[string]any{"attachments": []any{map[string]any{"type": "image", "url": "https://cdn.example.com/a.jpg"}}}), "spec.text", "spec.attachments"),
		Entry("outgoing message with neither text nor attachment", mutate(messageYAML, map[string]any{"text": nil}), "spec.text", "spec.attachments"),
		Entry("outgoing message with two attachments that are not all images", mutate(messageYAML, map[string]any{"text": nil, "attachments": []any{
			map[string]any{"type": "image", "url": "https://cdn.example.com/a.jpg"},
			map[string]any{"type": "video", "url": "https://cdn.example.com/b.mp4"},
		}}), "spec.attachments", "up to 10 when all are images"),
		Entry("outgoing message with eleven images", mutate(messageYAML, map[string]any{"text": nil, "attachments": images(11)}), "spec.attachments", "up to 10 when all are images"),
		Entry("outgoing text over 1000 bytes", mutate(messageYAML, map[string]any{"text": strings.Repeat("é", 501)}), "spec.text", "1000 bytes"),
		Entry("fourteen quick replies", mutate(messageYAML, map[string]any{"quickReplies": quickReplies(14)}), "spec.quickReplies", "at most 13"),
		Entry("quick reply title over 20 characters", mutate(messageYAML, map[string]any{"quickReplies": []any{
			map[string]any{"title": strings.Repeat("x", 21), "payload": "p"},
		}}), "spec.quickReplies[0].title"),
		Entry("text quick reply without payload", mutate(messageYAML, map[string]any{"quickReplies": []any{
			map[string]any{"title": "Yes"},
		}}), "spec.quickReplies[0]", "needs title and payload"),
		Entry("email quick reply with a title", mutate(messageYAML, map[string]any{"quickReplies": []any{
			map[string]any{"contentType": "user_email", "title": "Mail"},
		}}), "spec.quickReplies[0]", "take neither"),
		Entry("quick replies without text", mutate(messageYAML, map[string]any{"text": nil, "sticker": "heart", "quickReplies": quickReplies(1)}), "spec.quickReplies go with spec.text"),
		Entry("button template with four buttons", mutate(messageYAML, map[string]any{"text": nil, "buttonTemplate": map[string]any{
			"text": "Pick one", "buttons": []any{postback("a"), postback("b"), postback("c"), postback("d")},
		}}), "spec.buttonTemplate.buttons", "at most 3"),
		Entry("web_url button with a plain-http url", mutate(messageYAML, map[string]any{"text": nil, "buttonTemplate": map[string]any{
			"text": "Open", "buttons": []any{map[string]any{"type": "web_url", "title": "Shop", "url": "http://shop.example.com"}},
		}}), "spec.buttonTemplate.buttons[0].url", "must be https"),
		Entry("postback button without payload", mutate(messageYAML, map[string]any{"text": nil, "buttonTemplate": map[string]any{
			"text": "Open", "buttons": []any{map[string]any{"type": "postback", "title": "Yes"}},
		}}), "spec.buttonTemplate.buttons[0]", "postback button needs payload"),
		Entry("generic template with eleven elements", mutate(messageYAML, map[string]any{"text": nil, "genericTemplate": map[string]any{
			"elements": elements(11),
		}}), "spec.genericTemplate.elements", "at most 10"),
		Entry("generic element title over 80 characters", mutate(messageYAML, map[string]any{"text": nil, "genericTemplate": map[string]any{
			"elements": []any{map[string]any{"title": strings.Repeat("t", 81)}},
		}}), "spec.genericTemplate.elements[0].title"),
		Entry("generic element with a plain-http image", mutate(messageYAML, map[string]any{"text": nil, "genericTemplate": map[string]any{
			"elements": []any{map[string]any{"title": "Shoe", "imageURL": "http://cdn.example.com/s.jpg"}},
		}}), "spec.genericTemplate.elements[0].imageURL", "must be https"),
		Entry("text and a template", mutate(messageYAML, map[string]any{"genericTemplate": map[string]any{"elements": elements(1)}}), "exactly one of spec.text"),
		Entry("unknown sticker", mutate(messageYAML, map[string]any{"text": nil, "sticker": "thumbs"}), "spec.sticker"),
		Entry("post share with a non-numeric media id", mutate(messageYAML, map[string]any{"text": nil, "sharePost": map[string]any{"mediaID": "abc"}}), "spec.sharePost.mediaID"),
		Entry("react without a message", mutate(messageYAML, map[string]any{"text": nil, "senderAction": map[string]any{"action": "react", "reaction": "love"}}), "spec.senderAction", "exactly one of messageRef or messageID"),
		Entry("react without a reaction", mutate(messageYAML, map[string]any{"text": nil, "senderAction": map[string]any{"action": "react", "messageID": "mid.1"}}), "spec.senderAction", "reaction is required for react"),
		Entry("mark_seen with a message", mutate(messageYAML, map[string]any{"text": nil, "senderAction": map[string]any{"action": "mark_seen", "messageID": "mid.1"}}), "spec.senderAction", "take neither"),
		Entry("unknown sender action", mutate(messageYAML, map[string]any{"text": nil, "senderAction": map[string]any{"action": "wave"}}), "spec.senderAction.action"),
		Entry("sender action with replyTo", mutate(messageYAML, map[string]any{"text": nil, "replyTo": "mid.1", "senderAction": map[string]any{"action": "typing_on"}}), "spec.senderAction takes no spec.replyTo"),
		Entry("template on an incoming message", mutate(messageYAML, map[string]any{"direction": "Incoming", "text": nil, "sticker": "heart"}), "only allowed on outgoing messages"),
		Entry("outgoing attachment of an incoming-only type", mutate(messageYAML, map[string]any{"text": nil, "attachments": []any{map[string]any{"type": "story_mention", "url": "https://cdn.example.com/a.jpg"}}}), "spec.attachments"),
		Entry("tag on an incoming message", mutate(messageYAML, map[string]any{"direction": "Incoming", "tag": "HUMAN_AGENT"}), "spec.tag"),
		Entry("unknown direction", mutate(messageYAML, map[string]any{"direction": "Sideways"}), "spec.direction"),
		Entry("namespaceSelector on a namespaced InstagramApp", `
apiVersion: instagram.leadchat.io/v1alpha1
kind: InstagramApp
metadata: {name: app}
spec:
  appID: "123"
  secretRef: {name: s}
  namespaceSelector: {matchLabels: {a: b}}
`, "spec.namespaceSelector"),
		Entry("non-numeric appID", `
apiVersion: instagram.leadchat.io/v1alpha1
kind: InstagramApp
metadata: {name: app}
spec:
  appID: "my-app"
  secretRef: {name: s}
`, "spec.appID"),
		Entry("app without secretRef", `
apiVersion: instagram.leadchat.io/v1alpha1
kind: InstagramApp
metadata: {name: app}
spec:
  appID: "123"
`, "spec.secretRef"),
	)

	It("accepts http redirectURL to loopback hosts", func() {
		ns := newNamespace(ctx)
		for i, u := range []string{"http://localhost:8443/instagram/callback", "http://127.0.0.1/cb", "http://[::1]:9000/cb", "https://hooks.example.com/instagram/callback"} {
			obj := fromYAML(mutate(channelYAML, map[string]any{"redirectURL": u}), ns)
			obj.SetName(fmt.Sprintf("ch-%d", i))
			Expect(k8sClient.Create(ctx, obj)).To(Succeed(), u)
		}
	})

	It("refuses a change to the spec of a message that is being sent, and allows it before", func() {
		ns := newNamespace(ctx)
		msg := &igv1.InstagramMessage{}
		Expect(yaml.Unmarshal([]byte(messageYAML), msg)).To(Succeed())
		msg.Namespace = ns
		Expect(k8sClient.Create(ctx, msg)).To(Succeed())

		msg.Spec.Text = "edited while pending"
		Expect(k8sClient.Update(ctx, msg)).To(Succeed())

		msg.Status.Phase = igv1.PhaseSent
		msg.Status.MessageID = "mid.1"
		Expect(k8sClient.Status().Update(ctx, msg)).To(Succeed())

		msg.Spec.Text = "edited after sending"
		err := k8sClient.Update(ctx, msg)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec is immutable"))

		// Labels stay editable: workloads may tag what they sent.
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(msg), msg)).To(Succeed())
		msg.Labels = map[string]string{"team": "support"}
		Expect(k8sClient.Update(ctx, msg)).To(Succeed())
	})

	It("refuses a change of channelRef or direction", func() {
		ns := newNamespace(ctx)
		msg := &igv1.InstagramMessage{}
		Expect(yaml.Unmarshal([]byte(messageYAML), msg)).To(Succeed())
		msg.Namespace = ns
		Expect(k8sClient.Create(ctx, msg)).To(Succeed())
		msg.Spec.ChannelRef.Name = "other"
		err := k8sClient.Update(ctx, msg)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec.channelRef"))
	})

	It("defaults in canonical form", func() {
		ns := newNamespace(ctx)
		obj := fromYAML(channelYAML, ns)
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(obj.GroupVersionKind())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed())
		spec := got.Object["spec"].(map[string]any)
		Expect(spec["refreshBefore"]).To(Equal("480h0m0s"))
		Expect(spec["messageRetention"]).To(Equal("168h0m0s"))
		Expect(spec["appRef"]).To(HaveKeyWithValue("kind", "InstagramApp"))
		Expect(spec["scopes"]).To(Equal([]any{"instagram_business_basic", "instagram_business_manage_messages"}))
		Expect(spec["subscribedFields"]).To(Equal([]any{"messages", "messaging_seen", "message_reactions", "messaging_postbacks"}))

		// What the API server stores is what the Go types write back, so a
		// GitOps tool comparing the two sees no drift.
		typed := &igv1.InstagramChannel{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), typed)).To(Succeed())
		Expect(typed.Spec.RefreshBefore.Duration.String()).To(Equal(spec["refreshBefore"]))
		Expect(typed.Spec.MessageRetention.Duration.String()).To(Equal(spec["messageRetention"]))
	})

	It("shows printer columns through the Table API", func() {
		ns := newNamespace(ctx)
		Expect(k8sClient.Create(ctx, fromYAML(channelYAML, ns))).To(Succeed())
		Expect(k8sClient.Create(ctx, fromYAML(messageYAML, ns))).To(Succeed())

		want := map[string][]string{
			"instagramchannels": {"Name", "Username", "Ready", "Reason", "Token-Expires", "Age"},
			"instagrammessages": {"Name", "Channel", "Direction", "Contact", "Phase", "Text", "Age"},
		}
		rc, err := rest.RESTClientFor(restConfigFor())
		Expect(err).NotTo(HaveOccurred())
		for resource, columns := range want {
			raw, err := rc.Get().AbsPath("/apis/instagram.leadchat.io/v1alpha1/namespaces", ns, resource).
				SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
			Expect(err).NotTo(HaveOccurred())
			var table metav1.Table
			Expect(json.Unmarshal(raw, &table)).To(Succeed())
			var names []string
			for _, c := range table.ColumnDefinitions {
				names = append(names, c.Name)
			}
			Expect(names).To(Equal(columns), resource)
			Expect(table.Rows).To(HaveLen(1))
		}
		// The Text column is for -o wide only.
		raw, err := rc.Get().AbsPath("/apis/instagram.leadchat.io/v1alpha1/namespaces", ns, "instagrammessages").
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
		Expect(err).NotTo(HaveOccurred())
		var table metav1.Table
		Expect(json.Unmarshal(raw, &table)).To(Succeed())
		for _, c := range table.ColumnDefinitions {
			if c.Name == "Text" {
				Expect(c.Priority).To(BeNumerically(">", 0))
			}
		}
	})

	It("puts every kind in the instagram category", func() {
		kubectl := kubectlCmd("api-resources", "--categories=instagram", "-o", "name")
		out, err := kubectl.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		for _, r := range []string{"instagramapps", "clusterinstagramapps", "instagramchannels", "instagrammessages"} {
			Expect(string(out)).To(ContainSubstring(r + ".instagram.leadchat.io"))
		}
	})
})

var _ = Describe("install bundle", func() {
	It("dist/install.yaml is what config/default builds", func() {
		built, err := kubectlCmd("kustomize", filepath.Join(repoRoot, "config", "default")).Output()
		Expect(err).NotTo(HaveOccurred())
		committed, err := os.ReadFile(filepath.Join(repoRoot, "dist", "install.yaml"))
		Expect(err).NotTo(HaveOccurred(), "run make build-installer")
		Expect(string(committed)).To(Equal(string(built)), "dist/install.yaml is stale: run make build-installer")
	})

	It("passes kubectl apply --dry-run=server", func() {
		ctx := context.Background()
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "instagram-operator-system"}}
		Expect(client.IgnoreAlreadyExists(k8sClient.Create(ctx, ns))).To(Succeed())
		cmd := kubectlCmd("apply", "--dry-run=server", "-f", filepath.Join(repoRoot, "dist", "install.yaml"))
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(ContainSubstring("deployment.apps/instagram-operator-webhookserver created (server dry run)"))
	})
})

// kubectlCmd runs the kubectl built into bin/k8s against the test control plane.
func kubectlCmd(args ...string) *exec.Cmd {
	kubeconfig := writeKubeconfig()
	kubectl := filepath.Join(testenv.AssetsDir(), "kubectl")
	cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	return cmd
}
