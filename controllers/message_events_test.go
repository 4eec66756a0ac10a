package controllers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/sink"
)

func TestSinkBackoff(t *testing.T) {
	tests := map[string]struct {
		policy  igv1.BackoffPolicy
		delay   time.Duration
		attempt int32
		want    time.Duration
	}{
		"exponential first":  {igv1.BackoffExponential, time.Second, 1, time.Second},
		"exponential fourth": {igv1.BackoffExponential, time.Second, 4, 8 * time.Second},
		"linear third":       {igv1.BackoffLinear, 500 * time.Millisecond, 3, 1500 * time.Millisecond},
		"capped":             {igv1.BackoffExponential, time.Minute, 30, 10 * time.Minute},
		"huge attempt":       {igv1.BackoffExponential, time.Second, 5000, 10 * time.Minute},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := backoff(tc.policy, tc.delay, tc.attempt); got != tc.want {
				t.Errorf("backoff = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDeliveryPolicyDefaults(t *testing.T) {
	retry, policy, delay := deliveryPolicy(nil)
	if diff := cmp.Diff([]any{int32(5), igv1.BackoffExponential, time.Second}, []any{retry, policy, delay}); diff != "" {
		t.Error(diff)
	}
	retry, policy, delay = deliveryPolicy(&igv1.SinkDelivery{Retry: ptr.To(int32(0)), BackoffPolicy: igv1.BackoffLinear, BackoffDelay: &metav1.Duration{Duration: 3 * time.Second}})
	if diff := cmp.Diff([]any{int32(0), igv1.BackoffLinear, 3 * time.Second}, []any{retry, policy, delay}); diff != "" {
		t.Error(diff)
	}
}

func TestOutcomeType(t *testing.T) {
	tests := map[string]struct {
		dir   igv1.Direction
		echo  bool
		phase igv1.Phase
		want  string
	}{
		"sent":     {igv1.DirectionOutgoing, false, igv1.PhaseSent, sink.TypeMessageSent},
		"read":     {igv1.DirectionOutgoing, false, igv1.PhaseRead, sink.TypeMessageSent},
		"failed":   {igv1.DirectionOutgoing, false, igv1.PhaseFailed, sink.TypeMessageFailed},
		"sending":  {igv1.DirectionOutgoing, false, igv1.PhaseSending, ""},
		"echo":     {igv1.DirectionOutgoing, true, igv1.PhaseSent, ""},
		"incoming": {igv1.DirectionIncoming, false, igv1.PhaseReceived, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := &igv1.InstagramMessage{Spec: igv1.InstagramMessageSpec{Direction: tc.dir, Echo: tc.echo}, Status: igv1.InstagramMessageStatus{Phase: tc.phase}}
			if got := outcomeType(m); got != tc.want {
				t.Errorf("outcomeType = %q, want %q", got, tc.want)
			}
		})
	}
}

// sdkReceiver is a CloudEvents receiver built with the SDK on loopback.
type sdkReceiver struct {
	url    string
	answer atomic.Int32
	mu     sync.Mutex
	acked  []cloudevents.Event
	calls  atomic.Int32
}

func newSDKReceiver() *sdkReceiver {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	c, err := cloudevents.NewClientHTTP(cehttp.WithListener(l))
	Expect(err).NotTo(HaveOccurred())
	r := &sdkReceiver{url: "http://" + l.Addr().String() + "/"}
	ctx, cancel := context.WithCancel(context.Background())
	DeferCleanup(cancel)
	go func() {
		defer GinkgoRecover()
		_ = c.StartReceiver(ctx, func(_ context.Context, ev cloudevents.Event) protocol.Result {
			r.calls.Add(1)
			if code := int(r.answer.Load()); code != 0 {
				return cehttp.NewResult(code, "refused by the test")
			}
			r.mu.Lock()
			r.acked = append(r.acked, ev)
			r.mu.Unlock()
			return nil
		})
	}()
	return r
}

func (r *sdkReceiver) events() []cloudevents.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]cloudevents.Event(nil), r.acked...)
}

var _ = Describe("Outcome emitter", func() {
	var (
		ctx    context.Context
		ns     string
		clk    *clocktesting.FakeClock
		rec    *events.FakeRecorder
		em     *OutcomeEmitter
		main   *sdkReceiver
		dead   *sdkReceiver
		msgKey client.ObjectKey
	)

	// setup creates a channel whose sink (resolved, as the manager does) is
	// main, with dead as its dead-letter sink, and a Failed outgoing message.
	setup := func(retry int32, withDeadLetter bool) {
		ctx = suiteCtx
		ns = newTestNamespace(ctx, "igsink-")
		clk = clocktesting.NewFakeClock(time.Now().UTC().Truncate(time.Second))
		rec = events.NewFakeRecorder(50)
		main, dead = newSDKReceiver(), newSDKReceiver()
		em = &OutcomeEmitter{Client: k8sClient, Recorder: rec, Clock: clk, Sender: sink.NewSender(sink.Options{Clock: clk})}
		em.init()

		ch := &igv1.InstagramChannel{
			ObjectMeta: metav1.ObjectMeta{Name: "support", Namespace: ns},
			Spec: igv1.InstagramChannelSpec{
				AppRef: igv1.AppReference{Name: "app"},
				Sink: &igv1.SinkSpec{Destination: igv1.Destination{URI: main.url}, Delivery: &igv1.SinkDelivery{
					Retry: ptr.To(retry), BackoffDelay: &metav1.Duration{Duration: 2 * time.Second},
				}},
			},
		}
		if withDeadLetter {
			ch.Spec.Sink.Delivery.DeadLetterSink = &igv1.Destination{URI: dead.url}
		}
		Expect(k8sClient.Create(ctx, ch)).To(Succeed())
		ch.Status.SinkURI = main.url
		ch.Status.Sink = &igv1.SinkStatus{URI: main.url}
		if withDeadLetter {
			ch.Status.Sink.DeadLetterSinkURI = dead.url
		}
		Expect(k8sClient.Status().Update(ctx, ch)).To(Succeed())

		msg := &igv1.InstagramMessage{
			ObjectMeta: metav1.ObjectMeta{Name: "reply", Namespace: ns, Labels: map[string]string{igv1.LabelChannel: "support"}},
			Spec: igv1.InstagramMessageSpec{ChannelRef: igv1.ChannelReference{Name: "support"}, Direction: igv1.DirectionOutgoing,
				ContactID: "5512340000000001", Text: "hello"},
		}
		Expect(k8sClient.Create(ctx, msg)).To(Succeed())
		msg.Status.Phase = igv1.PhaseFailed
		msg.Status.Reason = igv1.ReasonOutsideWindow
		meta.SetStatusCondition(&msg.Status.Conditions, metav1.Condition{Type: igv1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: igv1.ReasonOutsideWindow, Message: "outside the window", LastTransitionTime: metav1.NewTime(clk.Now())})
		Expect(k8sClient.Status().Update(ctx, msg)).To(Succeed())
		msgKey = client.ObjectKeyFromObject(msg)
		Expect(em.Pending(ctx, msg)).To(BeTrue())
	}

	done := func() bool {
		GinkgoHelper()
		var m igv1.InstagramMessage
		Expect(k8sClient.Get(ctx, msgKey, &m)).To(Succeed())
		return m.Labels[igv1.LabelDone] == "true"
	}

	It("delivers the outcome, then finishes the message", func() {
		setup(5, true)
		Expect(em.process(ctx, msgKey)).To(BeZero())
		got := main.events()
		Expect(got).To(HaveLen(1))
		ev := got[0]
		Expect(ev.Type()).To(Equal(sink.TypeMessageFailed))
		Expect(ev.Source()).To(Equal(sink.Source(ns, "support")))
		Expect(ev.Subject()).To(Equal("5512340000000001"))
		Expect(ev.Extensions()).To(HaveKeyWithValue(sink.ExtensionPartitionKey, ns+"/support/5512340000000001"))
		Expect(string(ev.Data())).To(ContainSubstring(`"reason":"OutsideWindow"`))
		Expect(done()).To(BeTrue())
		Expect(dead.events()).To(BeEmpty())
	})

	It("sends a refused (4xx) outcome to the dead-letter sink at once, with a Warning Event", func() {
		setup(5, true)
		main.answer.Store(http.StatusBadRequest)
		Expect(em.process(ctx, msgKey)).To(BeZero())
		Expect(main.calls.Load()).To(Equal(int32(1)))
		got := dead.events()
		Expect(got).To(HaveLen(1))
		Expect(got[0].Type()).To(Equal(sink.TypeMessageFailed))
		Expect(got[0].Extensions()).To(HaveKeyWithValue("knativeerrorcode", "400"))
		Expect(done()).To(BeTrue())
		Expect(rec.Events).To(Receive(ContainSubstring(igv1.ReasonSinkDeadLettered)))
	})

	It("retries a 5xx with the channel's backoff, then dead-letters it past the retry budget", func() {
		setup(2, true)
		main.answer.Store(http.StatusServiceUnavailable)
		Expect(em.process(ctx, msgKey)).To(Equal(2 * time.Second))
		Expect(em.process(ctx, msgKey)).To(Equal(4 * time.Second))
		Expect(done()).To(BeFalse())
		Expect(dead.events()).To(BeEmpty())
		// The retry budget (2) is spent: the third failure goes to the
		// dead-letter sink.
		Expect(em.process(ctx, msgKey)).To(BeZero())
		Expect(main.calls.Load()).To(Equal(int32(3)))
		Expect(dead.events()).To(HaveLen(1))
		Expect(done()).To(BeTrue())
	})

	It("keeps the message unfinished while the dead-letter sink fails too, and counts a loss only without one", func() {
		setup(0, true)
		main.answer.Store(http.StatusBadRequest)
		dead.answer.Store(http.StatusServiceUnavailable)
		Expect(em.process(ctx, msgKey)).To(BeNumerically(">", 0))
		Expect(done()).To(BeFalse())
		dead.answer.Store(0)
		Expect(em.process(ctx, msgKey)).To(BeZero())
		Expect(dead.events()).To(HaveLen(1))
		Expect(done()).To(BeTrue())
	})

	It("waits for a dead-letter sink that does not resolve yet, rather than losing the outcome", func() {
		setup(0, true)
		var ch igv1.InstagramChannel
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "support"}, &ch)).To(Succeed())
		ch.Status.Sink.DeadLetterSinkURI = ""
		Expect(k8sClient.Status().Update(ctx, &ch)).To(Succeed())
		main.answer.Store(http.StatusBadRequest)
		Expect(em.process(ctx, msgKey)).To(BeNumerically(">", 0))
		Expect(done()).To(BeFalse())
		Expect(rec.Events).NotTo(Receive())
	})

	It("records a lost outcome without a dead-letter sink", func() {
		setup(0, false)
		main.answer.Store(http.StatusForbidden)
		Expect(em.process(ctx, msgKey)).To(BeZero())
		Expect(done()).To(BeTrue())
		Expect(rec.Events).To(Receive(ContainSubstring(igv1.ReasonSinkEventLost)))
	})

	It("gives the same event id when an outcome is delivered again (after a restart)", func() {
		setup(5, true)
		Expect(em.process(ctx, msgKey)).To(BeZero())
		var m igv1.InstagramMessage
		Expect(k8sClient.Get(ctx, msgKey, &m)).To(Succeed())
		a, err := outcomeEvent(&m, outcomeType(&m), clk.Now())
		Expect(err).NotTo(HaveOccurred())
		clk.Step(time.Hour)
		b, err := outcomeEvent(&m, outcomeType(&m), clk.Now())
		Expect(err).NotTo(HaveOccurred())
		Expect(a.ID()).To(Equal(b.ID()))
		Expect(main.events()[0].ID()).To(Equal(a.ID()))
	})
})

var _ = Describe("Sink resolution", func() {
	var (
		ctx context.Context
		ns  string
		r   *InstagramChannelReconciler
	)
	BeforeEach(func() {
		ctx = suiteCtx
		ns = newTestNamespace(ctx, "igsinkref-")
		r = &InstagramChannelReconciler{Client: k8sClient, APIReader: k8sClient, Scheme: testScheme}
	})

	resolve := func(d igv1.Destination) (*igv1.InstagramChannel, *halt) {
		GinkgoHelper()
		ch := &igv1.InstagramChannel{
			ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: ns, Generation: 1},
			Spec:       igv1.InstagramChannelSpec{Sink: &igv1.SinkSpec{Destination: d}},
		}
		run := &channelRun{ch: ch, original: ch.DeepCopy(), now: time.Now().UTC().Truncate(time.Second)}
		h, err := r.reconcileSink(ctx, run)
		Expect(err).NotTo(HaveOccurred())
		return ch, h
	}
	condition := func(ch *igv1.InstagramChannel) (metav1.ConditionStatus, string) {
		c := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionSinkProvided)
		Expect(c).NotTo(BeNil())
		return c.Status, c.Reason
	}

	It("takes a uri as it is", func() {
		ch, h := resolve(igv1.Destination{URI: "https://events.example.com/in"})
		Expect(h).To(BeNil())
		Expect(ch.Status.SinkURI).To(Equal("https://events.example.com/in"))
		st, reason := condition(ch)
		Expect(st).To(Equal(metav1.ConditionTrue))
		Expect(reason).To(Equal(igv1.ReasonSinkResolved))
	})

	It("addresses a core Service by its cluster DNS name, with a relative uri", func() {
		ch, h := resolve(igv1.Destination{Ref: &igv1.KReference{APIVersion: "v1", Kind: "Service", Name: "crm"}, URI: "/events"})
		Expect(h).To(BeNil())
		Expect(ch.Status.SinkURI).To(Equal("http://crm." + ns + ".svc.cluster.local/events"))
	})

	It("reads status.address.url of an Addressable", func() {
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": "brokers.eventing.test.leadchat.io"},
			"spec": map[string]any{
				"group": "eventing.test.leadchat.io", "scope": "Namespaced",
				"names": map[string]any{"plural": "brokers", "singular": "broker", "kind": "Broker", "listKind": "BrokerList"},
				"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
					"subresources": map[string]any{"status": map[string]any{}},
					"schema":       map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
			},
		}}
		err := k8sClient.Create(ctx, crd)
		Expect(client.IgnoreAlreadyExists(err)).To(Succeed())
		broker := &unstructured.Unstructured{}
		broker.SetAPIVersion("eventing.test.leadchat.io/v1")
		broker.SetKind("Broker")
		broker.SetNamespace(ns)
		broker.SetName("default")
		Eventually(func() error { return k8sClient.Create(ctx, broker) }).Should(Succeed())
		ref := igv1.Destination{Ref: &igv1.KReference{APIVersion: "eventing.test.leadchat.io/v1", Kind: "Broker", Name: "default"}}

		ch, h := resolve(ref)
		Expect(h).NotTo(BeNil())
		Expect(h.stalled).To(BeFalse())
		Expect(ch.Status.SinkURI).To(BeEmpty())
		_, reason := condition(ch)
		Expect(reason).To(Equal(igv1.ReasonSinkNotAddressable))

		Expect(unstructured.SetNestedField(broker.Object, "http://broker-ingress.knative-eventing.svc.cluster.local/"+ns+"/default", "status", "address", "url")).To(Succeed())
		Expect(k8sClient.Status().Update(ctx, broker)).To(Succeed())
		ch, h = resolve(ref)
		Expect(h).To(BeNil())
		Expect(ch.Status.SinkURI).To(Equal("http://broker-ingress.knative-eventing.svc.cluster.local/" + ns + "/default"))
	})

	It("says SinkNotFound for a missing object or an unknown kind", func() {
		for _, ref := range []*igv1.KReference{
			{APIVersion: "v1", Kind: "ConfigMap", Name: "absent"},
			{APIVersion: "eventing.knative.dev/v1", Kind: "Broker", Name: "default"},
		} {
			ch, h := resolve(igv1.Destination{Ref: ref})
			Expect(h).NotTo(BeNil())
			_, reason := condition(ch)
			Expect(reason).To(Equal(igv1.ReasonSinkNotFound), ref.Kind)
		}
	})

	It("keeps a resolved sink in use while only its dead-letter sink does not resolve", func() {
		ch := &igv1.InstagramChannel{
			ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: ns, Generation: 1},
			Spec: igv1.InstagramChannelSpec{Sink: &igv1.SinkSpec{
				Destination: igv1.Destination{URI: "https://events.example.com/"},
				Delivery: &igv1.SinkDelivery{DeadLetterSink: &igv1.Destination{
					Ref: &igv1.KReference{APIVersion: "v1", Kind: "ConfigMap", Name: "absent"}}},
			}},
		}
		run := &channelRun{ch: ch, original: ch.DeepCopy(), now: time.Now().UTC().Truncate(time.Second)}
		h, err := r.reconcileSink(ctx, run)
		Expect(err).NotTo(HaveOccurred())
		Expect(h).NotTo(BeNil())
		Expect(ch.Status.SinkURI).To(Equal("https://events.example.com/"))
		Expect(ch.Status.Sink.DeadLetterSinkURI).To(BeEmpty())
		c := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionSinkProvided)
		Expect(c.Reason).To(Equal(igv1.ReasonSinkNotFound))
		Expect(c.Message).To(HavePrefix("dead-letter sink: "))
	})

	It("stalls on a ref to another namespace and on unparseable CA certificates", func() {
		for _, d := range []igv1.Destination{
			{Ref: &igv1.KReference{APIVersion: "v1", Kind: "Service", Name: "crm", Namespace: "other"}},
			{URI: "https://events.example.com/", CACerts: "not a certificate"},
		} {
			ch, h := resolve(d)
			Expect(h).NotTo(BeNil())
			Expect(h.stalled).To(BeTrue())
			st, reason := condition(ch)
			Expect(st).To(Equal(metav1.ConditionFalse))
			Expect(reason).To(Equal(igv1.ReasonSinkInvalid))
			Expect(ch.Status.SinkURI).To(BeEmpty())
		}
	})

	It("refuses a bad sink at admission, naming the field", func() {
		tests := map[string]struct {
			sink igv1.SinkSpec
			want string
		}{
			"not http(s)":          {igv1.SinkSpec{Destination: igv1.Destination{URI: "ftp://files.example.com/"}}, "uri must be an http or https URL"},
			"relative without ref": {igv1.SinkSpec{Destination: igv1.Destination{URI: "/events"}}, "a relative uri needs a ref"},
			"neither ref nor uri":  {igv1.SinkSpec{Destination: igv1.Destination{CACerts: "x"}}, "a sink needs ref or uri"},
			"timeout too long": {igv1.SinkSpec{Destination: igv1.Destination{URI: "https://e.example.com/"},
				Delivery: &igv1.SinkDelivery{Timeout: &metav1.Duration{Duration: time.Minute}}}, "timeout must be between 100ms and 30s"},
			"unknown mode": {igv1.SinkSpec{Destination: igv1.Destination{URI: "https://e.example.com/"}, IncomingObjects: "Sometimes"}, "spec.sink.incomingObjects"},
		}
		i := 0
		for name, tc := range tests {
			i++
			ch := &igv1.InstagramChannel{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bad-sink-%d", i), Namespace: ns},
				Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Name: "app"}, Sink: &tc.sink},
			}
			err := k8sClient.Create(ctx, ch)
			Expect(err).To(HaveOccurred(), name)
			Expect(err.Error()).To(ContainSubstring(tc.want), name)
		}
	})
})
