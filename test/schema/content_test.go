package schema_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Builders of outgoing content for the schema tables.

func images(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"type": "image", "url": fmt.Sprintf("https://cdn.example.com/%d.jpg", i)}
	}
	return out
}

func quickReplies(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"title": fmt.Sprintf("Option %d", i), "payload": fmt.Sprintf("OPT_%d", i)}
	}
	return out
}

func postback(title string) map[string]any {
	return map[string]any{"type": "postback", "title": title, "payload": strings.ToUpper(title)}
}

func elements(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"title": fmt.Sprintf("Card %d", i)}
	}
	return out
}

var _ = Describe("outgoing content", func() {
	ctx := context.Background()

	It("server-side applies every sample, each listed in the samples kustomization", func() {
		ns := newNamespace(ctx)
		files, err := filepath.Glob(filepath.Join(repoRoot, "config", "samples", "instagram_*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "samples", "kustomization.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var kust struct {
			Resources []string `json:"resources"`
		}
		Expect(yaml.Unmarshal(raw, &kust)).To(Succeed())
		for _, f := range files {
			Expect(kust.Resources).To(ContainElement(filepath.Base(f)), "sample missing from config/samples/kustomization.yaml")
			b, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			for _, doc := range strings.Split(string(b), "\n---\n") {
				u := fromYAML(doc, ns)
				if u.GetNamespace() == "" {
					// Cluster-scoped: the sample test that creates every
					// sample covers it, and two tests cannot own one name.
					continue
				}
				Expect(k8sClient.Patch(ctx, u, client.Apply, client.FieldOwner("samples"), client.ForceOwnership)).To(Succeed(), "sample %s", filepath.Base(f))
			}
		}
	})

	DescribeTable("accepts each valid shape at Instagram's limits",
		func(spec map[string]any) {
			ns := newNamespace(ctx)
			Expect(k8sClient.Create(ctx, fromYAML(mutate(messageYAML, spec), ns))).To(Succeed())
		},
		Entry("text of exactly 1000 bytes", map[string]any{"text": strings.Repeat("é", 500)}),
		Entry("13 quick replies of 20 characters", map[string]any{"quickReplies": append(quickReplies(11),
			map[string]any{"title": strings.Repeat("x", 20), "payload": "LONG"},
			map[string]any{"contentType": "user_email"})}),
		Entry("phone number quick reply", map[string]any{"quickReplies": []any{map[string]any{"contentType": "user_phone_number"}}}),
		Entry("ten images", map[string]any{"text": nil, "attachments": images(10)}),
		Entry("an image by attachment id", map[string]any{"text": nil, "attachments": []any{map[string]any{"type": "image", "attachmentID": "1234"}}}),
		Entry("one video", map[string]any{"text": nil, "attachments": []any{map[string]any{"type": "video", "url": "https://cdn.example.com/v.mp4"}}}),
		Entry("button template with three buttons", map[string]any{"text": nil, "buttonTemplate": map[string]any{
			"text": "Pick one", "buttons": []any{postback("a"), postback("b"),
				map[string]any{"type": "web_url", "title": "Shop", "url": "https://shop.example.com"}},
		}}),
		Entry("generic template with ten elements", map[string]any{"text": nil, "genericTemplate": map[string]any{
			"elements": append(elements(9), map[string]any{
				"title": strings.Repeat("t", 80), "subtitle": "Red, size 42", "imageURL": "https://cdn.example.com/s.jpg",
				"defaultAction": map[string]any{"url": "https://shop.example.com/s"},
				"buttons":       []any{postback("buy"), postback("later"), map[string]any{"type": "web_url", "title": "See", "url": "https://shop.example.com"}},
			}),
		}}),
		Entry("heart sticker", map[string]any{"text": nil, "sticker": "heart"}),
		Entry("own post share", map[string]any{"text": nil, "sharePost": map[string]any{"mediaID": "17890000000000001"}}),
		Entry("reply to a message", map[string]any{"replyTo": "aWdfZAG1faXRlbTox"}),
		Entry("react by object", map[string]any{"text": nil, "senderAction": map[string]any{"action": "react", "reaction": "love", "messageRef": map[string]any{"name": "igm-1"}}}),
		Entry("react by mid with an emoji", map[string]any{"text": nil, "senderAction": map[string]any{"action": "react", "reaction": "😂", "messageID": "mid.1"}}),
		Entry("unreact", map[string]any{"text": nil, "senderAction": map[string]any{"action": "unreact", "messageID": "mid.1"}}),
		Entry("typing_on", map[string]any{"text": nil, "senderAction": map[string]any{"action": "typing_on"}}),
		Entry("typing_off", map[string]any{"text": nil, "senderAction": map[string]any{"action": "typing_off"}}),
		Entry("mark_seen", map[string]any{"text": nil, "senderAction": map[string]any{"action": "mark_seen"}}),
	)
})
