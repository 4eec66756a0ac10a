package webhookserver_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/sink"
	ws "github.com/leadchat/instagram-operator/webhookserver"
)

// ceReceiver is a CloudEvents receiver built with the SDK on loopback, as a
// consumer would run one. answer is the HTTP status it gives (200 while
// zero); every event that reaches it is kept, acknowledged or not.
type ceReceiver struct {
	url    string
	answer atomic.Int32
	mu     sync.Mutex
	got    []cloudevents.Event
	acked  []cloudevents.Event
	cancel context.CancelFunc
}

func startReceiver() *ceReceiver {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	c, err := cloudevents.NewClientHTTP(cehttp.WithListener(l))
	Expect(err).NotTo(HaveOccurred())
	r := &ceReceiver{url: "http://" + l.Addr().String() + "/"}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer GinkgoRecover()
		_ = c.StartReceiver(ctx, func(_ context.Context, ev cloudevents.Event) protocol.Result {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.got = append(r.got, ev)
			if code := int(r.answer.Load()); code != 0 && code != http.StatusOK {
				return cehttp.NewResult(code, "refused by the test")
			}
			r.acked = append(r.acked, ev)
			return nil
		})
	}()
	DeferCleanup(cancel)
	return r
}

func (r *ceReceiver) events() (got, acked []cloudevents.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]cloudevents.Event(nil), r.got...), append([]cloudevents.Event(nil), r.acked...)
}

// sinkChannel creates a channel of app acme serving account, with a sink
// resolved (as the manager would) to uri, and waits for the receiver's
// cache to route to it with that sink.
func sinkChannel(name, account, uri string, objects igv1.IncomingObjects) {
	GinkgoHelper()
	ctx := context.Background()
	ch := &igv1.InstagramChannel{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: igv1.InstagramChannelSpec{
			AppRef: igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"},
			Sink:   &igv1.SinkSpec{Destination: igv1.Destination{URI: "http://sink.invalid/"}, IncomingObjects: objects},
		},
	}
	Expect(k8s.Create(ctx, ch)).To(Succeed())
	ch.Status.Account = &igv1.AccountStatus{UserID: account}
	ch.Status.SinkURI = uri
	Expect(k8s.Status().Update(ctx, ch)).To(Succeed())
	Eventually(func(g Gomega) {
		var l igv1.InstagramChannelList
		g.Expect(mgrCache.List(ctx, &l, client.MatchingFields{ws.ChannelUserIDIndex: account})).To(Succeed())
		g.Expect(l.Items).To(HaveLen(1))
		g.Expect(l.Items[0].Status.SinkURI).To(Equal(uri))
	}).Should(Succeed())
}

// fixtureFor is testdata/cloudevents/delivery.json (every event type) for
// another account.
func fixtureFor(account string) []byte {
	GinkgoHelper()
	b, err := os.ReadFile("testdata/cloudevents/delivery.json")
	Expect(err).NotTo(HaveOccurred())
	return []byte(strings.ReplaceAll(string(b), supportAccount, account))
}

func idsOf(evs []cloudevents.Event) map[string]int {
	out := map[string]int{}
	for _, ev := range evs {
		out[ev.ID()]++
	}
	return out
}

var _ = Describe("Event sink", func() {
	ctx := context.Background()

	It("delivers every recorded event type with the documented attributes, besides the objects", func() {
		rcv := startReceiver()
		const account = "17841400000000101"
		sinkChannel("stream", account, rcv.url, igv1.IncomingObjectsStore)
		Expect(post(fixtureFor(account), acmeSecret)).To(Equal(http.StatusOK))

		_, acked := rcv.events()
		types := map[string]int{}
		for _, ev := range acked {
			types[ev.Type()]++
			Expect(ev.SpecVersion()).To(Equal("1.0"))
			Expect(ev.Source()).To(Equal("/apis/instagram.leadchat.io/v1alpha1/namespaces/" + ns + "/instagramchannels/stream"))
			Expect(ev.Subject()).NotTo(BeEmpty())
			Expect(ev.Extensions()).To(HaveKeyWithValue(sink.ExtensionPartitionKey, ns+"/stream/"+ev.Subject()))
			Expect(ev.DataContentType()).To(Equal("application/json"))
			Expect(ev.Time().Nanosecond() % 1e6).To(BeZero())
		}
		Expect(types).To(Equal(map[string]int{
			sink.TypeMessageReceived: 3, sink.TypeMessageEcho: 1, sink.TypeMessageDeleted: 1, sink.TypeMessageRead: 1,
			sink.TypeReactionAdded: 1, sink.TypeReactionRemoved: 1, sink.TypePostback: 1, sink.TypeReferral: 1,
			sink.TypeMessageEdited: 1, sink.TypeOptin: 1, sink.TypeHandover: 1, sink.TypeComment: 1,
			sink.TypeLiveComment: 1, sink.TypeMention: 1,
		}))
		Expect(idsOf(acked)).To(HaveLen(len(acked)))

		// The objects are there too.
		var msgs igv1.InstagramMessageList
		Expect(k8s.List(ctx, &msgs, client.InNamespace(ns), client.MatchingLabels{igv1.LabelChannel: "stream"})).To(Succeed())
		Expect(msgs.Items).NotTo(BeEmpty())
	})

	It("answers 5xx while the sink refuses, and the redelivery brings the same event ids", func() {
		rcv := startReceiver()
		const account = "17841400000000102"
		sinkChannel("flaky", account, rcv.url, igv1.IncomingObjectsStore)
		contact := newContact()
		body := delivery(entry(account,
			fromCustomer(account, contact, at(0), "message", obj{"mid": newMID(), "text": "one"}),
			fromCustomer(account, contact, at(time.Millisecond), "message", obj{"mid": newMID(), "text": "two"}),
		))

		rcv.answer.Store(http.StatusServiceUnavailable)
		Expect(post(body, acmeSecret)).To(Equal(http.StatusServiceUnavailable))
		first, acked := rcv.events()
		Expect(first).NotTo(BeEmpty())
		Expect(acked).To(BeEmpty())

		rcv.answer.Store(http.StatusOK)
		Expect(post(body, acmeSecret)).To(Equal(http.StatusOK))
		Expect(post(body, acmeSecret)).To(Equal(http.StatusOK))
		got, acked := rcv.events()
		// Each event of the delivery has one id, however often it came.
		Expect(idsOf(acked)).To(HaveLen(2))
		for id := range idsOf(got) {
			Expect(idsOf(acked)).To(HaveKey(id))
		}
	})

	It("answers 5xx when the sink times out or is unreachable", func() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		dead := "http://" + l.Addr().String() + "/"
		Expect(l.Close()).To(Succeed())
		const account = "17841400000000103"
		sinkChannel("dead", account, dead, igv1.IncomingObjectsStore)
		body := delivery(entry(account, fromCustomer(account, newContact(), at(0), "message", obj{"mid": newMID(), "text": "hello"})))
		Expect(post(body, acmeSecret)).To(Equal(http.StatusServiceUnavailable))
	})

	It("answers 5xx while the channel's sink does not resolve", func() {
		const account = "17841400000000104"
		sinkChannel("unresolved", account, "", igv1.IncomingObjectsStore)
		body := delivery(entry(account, fromCustomer(account, newContact(), at(0), "message", obj{"mid": newMID(), "text": "hello"})))
		Expect(post(body, acmeSecret)).To(Equal(http.StatusServiceUnavailable))
	})

	It("stores no InstagramMessage for incoming events of an object-less channel", func() {
		rcv := startReceiver()
		const account = "17841400000000105"
		sinkChannel("objectless", account, rcv.url, igv1.IncomingObjectsSkip)
		Expect(post(fixtureFor(account), acmeSecret)).To(Equal(http.StatusOK))
		_, acked := rcv.events()
		Expect(acked).To(HaveLen(16))

		var msgs igv1.InstagramMessageList
		Expect(k8s.List(ctx, &msgs, client.InNamespace(ns), client.MatchingLabels{igv1.LabelChannel: "objectless"})).To(Succeed())
		Expect(msgs.Items).To(BeEmpty())
		var comments igv1.InstagramCommentList
		Expect(k8s.List(ctx, &comments, client.InNamespace(ns), client.MatchingLabels{igv1.LabelChannel: "objectless"})).To(Succeed())
		Expect(comments.Items).To(BeEmpty())
	})
})
