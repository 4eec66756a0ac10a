package e2e

import (
	"context"
	"net"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/localenv"
	"github.com/leadchat/instagram-operator/internal/sink"
)

// A channel in object-less mode, its sink a CloudEvents receiver built with
// the SDK: the manager resolves the sink, the receiver sends incoming
// events only there, the manager sends the outcome of a reply.
//
// It runs first (SpecPriority), so that the main suite's check of the
// metrics the alerts use finds the sink series of this channel.
var _ = Describe("an event sink, end to end", Ordered, SpecPriority(1), func() {
	ctx := context.Background()
	ns := "stream-" + rand.String(5)
	app := localenv.App{ID: "1000000000000018", Secret: "e2e-sink-secret-" + rand.String(8), VerifyToken: "e2e-sink-verify", Name: "sinkapp"}
	account := newAccount()
	customer := "5512340000000018"
	var (
		mu     sync.Mutex
		got    []cloudevents.Event
		sinkAt string
	)
	// ofType is the distinct events of a type, by id: delivery is at least
	// once (a reconcile may emit an outcome again, under the same id), and
	// what a consumer must see is each event, not each delivery.
	ofType := func(typ string) []cloudevents.Event {
		mu.Lock()
		defer mu.Unlock()
		var out []cloudevents.Event
		seen := map[string]bool{}
		for _, ev := range got {
			if ev.Type() == typ && !seen[ev.ID()] {
				seen[ev.ID()] = true
				out = append(out, ev)
			}
		}
		return out
	}

	BeforeAll(func() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		c, err := cloudevents.NewClientHTTP(cehttp.WithListener(l))
		Expect(err).NotTo(HaveOccurred())
		sinkAt = "http://" + l.Addr().String() + "/events"
		rctx, cancel := context.WithCancel(ctx)
		DeferCleanup(cancel)
		go func() {
			_ = c.StartReceiver(rctx, func(ev cloudevents.Event) {
				mu.Lock()
				got = append(got, ev)
				mu.Unlock()
			})
		}()
	})

	It("resolves spec.sink into status.sinkURI and SinkProvided", func() {
		Expect(env.CreateApp(ctx, app)).To(Succeed())
		ch, err := env.CreateTokenChannel(ctx, app, ns, "stream", account, false)
		Expect(err).NotTo(HaveOccurred())
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.Sink = &igv1.SinkSpec{Destination: igv1.Destination{URI: sinkAt}, IncomingObjects: igv1.IncomingObjectsSkip}
		Expect(k8sClient.Patch(ctx, ch, patch)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ch), ch)).To(Succeed())
			g.Expect(ch.Status.SinkURI).To(Equal(sinkAt))
			g.Expect(meta.IsStatusConditionTrue(ch.Status.Conditions, igv1.ConditionSinkProvided)).To(BeTrue())
			g.Expect(isReady(ch)).To(BeTrue())
		}, timeout).Should(Succeed())
	})

	var mid string
	It("sends a customer DM only to the sink", func() {
		var err error
		mid, err = env.Fake.DeliverMessage(ctx, fake.CustomerMessage{AccountUserID: account.UserID, CustomerID: customer, Text: "Do you ship abroad?"})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() []cloudevents.Event { return ofType(sink.TypeMessageReceived) }, timeout).Should(HaveLen(1))
		ev := ofType(sink.TypeMessageReceived)[0]
		Expect(ev.Source()).To(Equal(sink.Source(ns, "stream")))
		Expect(ev.Subject()).To(Equal(customer))
		Expect(string(ev.Data())).To(ContainSubstring(`"messageID":"` + mid + `"`))
		Expect(string(ev.Data())).To(ContainSubstring("Do you ship abroad?"))

		var list igv1.InstagramMessageList
		Expect(k8sClient.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{igv1.LabelDirection: igv1.DirectionLabelIncoming})).To(Succeed())
		Expect(list.Items).To(BeEmpty())
	})

	It("sends the outcome of a reply from the manager, and its read receipt from the receiver", func() {
		reply := &igv1.InstagramMessage{
			ObjectMeta: metav1.ObjectMeta{Name: "reply-1", Namespace: ns},
			Spec: igv1.InstagramMessageSpec{ChannelRef: igv1.ChannelReference{Name: "stream"}, Direction: igv1.DirectionOutgoing,
				ContactID: customer, Text: "We do, to 40 countries."},
		}
		Expect(k8sClient.Create(ctx, reply)).To(Succeed())
		Eventually(func() []cloudevents.Event { return ofType(sink.TypeMessageSent) }, timeout).Should(HaveLen(1))
		sent := ofType(sink.TypeMessageSent)[0]
		Expect(sent.Subject()).To(Equal(customer))
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(reply), reply)).To(Succeed())
			g.Expect(reply.Labels).To(HaveKeyWithValue(igv1.LabelDone, "true"))
		}, timeout).Should(Succeed())
		Expect(string(sent.Data())).To(ContainSubstring(reply.Status.MessageID))

		Expect(env.Fake.DeliverRead(ctx, reply.Status.MessageID)).To(Succeed())
		Eventually(func() []cloudevents.Event { return ofType(sink.TypeMessageRead) }, timeout).Should(HaveLen(1))
		// Outgoing messages stay objects: the read watermark still applies.
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(reply), reply)).To(Succeed())
			g.Expect(reply.Status.Phase).To(Equal(igv1.PhaseRead))
		}, timeout).Should(Succeed())
		Consistently(func() []cloudevents.Event { return ofType(sink.TypeMessageSent) }, 2*time.Second).Should(HaveLen(1))
	})
})
