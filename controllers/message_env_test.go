package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
)

// messageEnv is one namespace with a Ready channel whose state the test sets
// directly (app, managed token Secret, Ready condition), a fake Instagram
// on a loopback httptest server, a fake clock and a message reconciler
// driven by calling Reconcile. The reconciler reads through an uncached
// client, so every Reconcile sees what the previous one wrote.
type messageEnv struct {
	ctx     context.Context
	ns      string
	clock   *clocktesting.FakeClock
	ig      *fake.Server
	refuse  *refusingTransport
	clients *instagram.Clients
	rec     *events.FakeRecorder
	r       *InstagramMessageReconciler
	// writes counts the reconciler's writes to the API server.
	writes atomic.Int32

	appID, userID, token string
	channel              string
	// igURL and srvURL are the fake Instagram's address.
	igURL  string
	srvURL string
}

// limitedClients are clients of the fake with the given per-account
// limits (zero: Instagram's defaults) and no per-app limit.
func (e *messageEnv) limitedClients(limits instagram.AccountLimits) *instagram.Clients {
	return instagram.NewClients(instagram.Config{
		GraphURL: e.srvURL, APIURL: e.srvURL, OAuthURL: e.srvURL,
		HTTPClient:    &http.Client{Transport: e.refuse},
		RatePerSecond: -1, Clock: e.clock, AccountLimits: limits,
	})
}

const (
	msgTestContact = "5512340000000001"
	msgTestChannel = "support"
)

var msgEnvCounter atomic.Int32

func newMessageEnv() *messageEnv {
	GinkgoHelper()
	e := &messageEnv{channel: msgTestChannel}
	var cancel context.CancelFunc
	e.ctx, cancel = context.WithCancel(suiteCtx)

	e.ns = newTestNamespace(e.ctx, "igmsg-")
	var srv *httptest.Server
	e.clock, e.ig, srv = newFakeInstagram()
	n := msgEnvCounter.Add(1)
	e.appID = fmt.Sprintf("%d", 700000+n)
	e.userID = fmt.Sprintf("1784140%010d", n)
	e.ig.AddApp(e.appID, "app-secret-"+e.ns)
	e.ig.AddAccount(fake.Account{UserID: e.userID, ID: "9" + e.userID, Username: "shop", AccountType: "BUSINESS"})
	e.ig.AddCustomer(fake.Customer{IGSID: msgTestContact, Name: "Customer"})
	e.token = e.ig.IssueLongLivedToken(e.appID, e.userID)

	e.igURL = srv.URL
	e.refuse = &refusingTransport{next: http.DefaultTransport}
	e.srvURL = srv.URL
	e.clients = e.limitedClients(instagram.AccountLimits{})
	e.rec = events.NewFakeRecorder(100)
	e.r = e.newReconciler()

	e.createChannel(e.channel, nil)
	e.setChannelReady(e.channel, true, igv1.ReasonReady, "connected")

	DeferCleanup(func() {
		e.expectNoTokenLeaks()
		cancel()
		srv.Close()
		e.ig.Close()
	})
	return e
}

// newReconciler builds a reconciler with a client of its own (as a second
// manager would have), counting its writes.
func (e *messageEnv) newReconciler() *InstagramMessageReconciler {
	GinkgoHelper()
	base, err := client.NewWithWatch(cfg, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
	count := func() { e.writes.Add(1) }
	cl := interceptor.NewClient(base, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			count()
			return c.Create(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			count()
			return c.Patch(ctx, obj, patch, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			count()
			return c.Update(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			count()
			return c.Delete(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			count()
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	return &InstagramMessageReconciler{
		Client:    cl,
		APIReader: base,
		Scheme:    testScheme,
		Clock:     e.clock,
		Instagram: e.clients,
		Recorder:  e.rec,
	}
}

// createChannel creates an app, a channel and its managed token Secret, as
// the app and channel controllers would have left them.
func (e *messageEnv) createChannel(name string, mutate func(*igv1.InstagramChannel)) *igv1.InstagramChannel {
	GinkgoHelper()
	app := &igv1.InstagramApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "acme-" + name},
		Spec:       igv1.AppSpec{AppID: e.appID, SecretRef: igv1.LocalObjectReference{Name: "acme-app"}},
	}
	Expect(k8sClient.Create(e.ctx, app)).To(Succeed())
	ch := &igv1.InstagramChannel{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindInstagramApp, Name: app.Name}},
	}
	if mutate != nil {
		mutate(ch)
	}
	Expect(k8sClient.Create(e.ctx, ch)).To(Succeed())
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: e.ns, Name: ch.TokenSecretName(),
			Labels: map[string]string{igv1.LabelWatch: "true", igv1.LabelChannel: name},
		},
		Type: igv1.TokenSecretType,
		StringData: map[string]string{
			igv1.TokenSecretKeyAccessToken: e.token,
			igv1.TokenSecretKeyUserID:      e.userID,
			igv1.TokenSecretKeyExpiresAt:   e.clock.Now().Add(fake.LongLivedTTL).Format(time.RFC3339),
		},
	}
	Expect(k8sClient.Create(e.ctx, secret)).To(Succeed())
	return ch
}

// rotateToken gives the channel a new token, as a refresh or a new login
// does.
func (e *messageEnv) rotateToken() {
	GinkgoHelper()
	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: e.ns, Name: (&igv1.InstagramChannel{ObjectMeta: metav1.ObjectMeta{Name: e.channel}}).TokenSecretName()}
	Expect(k8sClient.Get(e.ctx, key, secret)).To(Succeed())
	e.token = e.ig.IssueLongLivedToken(e.appID, e.userID)
	secret.Data[igv1.TokenSecretKeyAccessToken] = []byte(e.token)
	Expect(k8sClient.Update(e.ctx, secret)).To(Succeed())
}

// setChannelReady sets the channel's Ready condition as the channel
// controller would.
func (e *messageEnv) setChannelReady(name string, ready bool, reason, message string) {
	GinkgoHelper()
	ch := &igv1.InstagramChannel{}
	Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: name}, ch)).To(Succeed())
	st := metav1.ConditionFalse
	if ready {
		st = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&ch.Status.Conditions, metav1.Condition{
		Type: igv1.ConditionReady, Status: st, Reason: reason, Message: message, ObservedGeneration: ch.Generation,
	})
	ch.Status.ObservedGeneration = ch.Generation
	ch.Status.Account = &igv1.AccountStatus{UserID: e.userID, Username: "shop"}
	Expect(k8sClient.Status().Update(e.ctx, ch)).To(Succeed())
}

// outgoing creates an outgoing message as a workload would: spec only, no
// labels.
func (e *messageEnv) outgoing(text string, mutate ...func(*igv1.InstagramMessage)) *igv1.InstagramMessage {
	GinkgoHelper()
	m := &igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, GenerateName: "reply-"},
		Spec: igv1.InstagramMessageSpec{
			ChannelRef: igv1.ChannelReference{Name: e.channel},
			Direction:  igv1.DirectionOutgoing,
			ContactID:  msgTestContact,
			Text:       text,
		},
	}
	for _, f := range mutate {
		f(m)
	}
	Expect(k8sClient.Create(e.ctx, m)).To(Succeed())
	return m
}

func (e *messageEnv) request(name string) ctrl.Request {
	return ctrl.Request{NamespacedName: types.NamespacedName{Namespace: e.ns, Name: name}}
}

// reconcile runs one Reconcile of the message and expects no error.
func (e *messageEnv) reconcile(name string) ctrl.Result {
	GinkgoHelper()
	res, err := e.r.Reconcile(e.ctx, e.request(name))
	Expect(err).NotTo(HaveOccurred())
	return res
}

func (e *messageEnv) get(name string) *igv1.InstagramMessage {
	GinkgoHelper()
	m := &igv1.InstagramMessage{}
	Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: name}, m)).To(Succeed())
	return m
}

// setPhase writes a status as a previous process would have left it.
func (e *messageEnv) setPhase(name string, phase igv1.Phase) {
	GinkgoHelper()
	m := e.get(name)
	patch := client.MergeFrom(m.DeepCopy())
	m.Status.Phase = phase
	Expect(k8sClient.Status().Patch(e.ctx, m, patch)).To(Succeed())
}

// setSending puts a message in Sending with lease, as a manager that
// called Instagram leaves it.
func (e *messageEnv) setSending(name string, lease *igv1.SendLease) {
	GinkgoHelper()
	m := e.get(name)
	patch := client.MergeFrom(m.DeepCopy())
	m.Status.Phase = igv1.PhaseSending
	m.Status.SendLease = lease
	Expect(k8sClient.Status().Patch(e.ctx, m, patch)).To(Succeed())
}

// reconcileWith runs one reconcile of another reconciler (a second
// manager).
func (e *messageEnv) reconcileWith(r *InstagramMessageReconciler, name string) ctrl.Result {
	GinkgoHelper()
	res, err := r.Reconcile(e.ctx, e.request(name))
	Expect(err).NotTo(HaveOccurred())
	return res
}

// messagesWithMID lists every object of the namespace recording mid: the
// outgoing one (status.messageID) and any echo the receiver wrote.
func (e *messageEnv) messagesWithMID(mid string) []string {
	GinkgoHelper()
	var list igv1.InstagramMessageList
	Expect(k8sClient.List(e.ctx, &list, client.InNamespace(e.ns))).To(Succeed())
	var out []string
	for _, m := range list.Items {
		if m.Status.MessageID == mid {
			out = append(out, m.Name)
		}
	}
	return out
}

// receiverEcho plays the receiver's side of the echo protocol for mid:
// create the echo object, then look for the outgoing message by its mid
// label (without a cache) and delete the echo when it is there. It returns
// whether the echo object survived.
func (e *messageEnv) receiverEcho(mid string) bool {
	GinkgoHelper()
	echo := &igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: e.ns, Name: names.IncomingMessageName(e.channel, mid),
			Labels: map[string]string{
				igv1.LabelChannel: e.channel, igv1.LabelContact: msgTestContact,
				igv1.LabelDirection: igv1.DirectionLabelIncoming,
			},
		},
		Spec: igv1.InstagramMessageSpec{
			ChannelRef: igv1.ChannelReference{Name: e.channel},
			Direction:  igv1.DirectionIncoming,
			ContactID:  msgTestContact,
			Text:       "echo",
		},
	}
	Expect(k8sClient.Create(e.ctx, echo)).To(Succeed())
	echo.Status.Phase, echo.Status.MessageID, echo.Status.IsEcho = igv1.PhaseReceived, mid, true
	Expect(k8sClient.Status().Update(e.ctx, echo)).To(Succeed())

	var list igv1.InstagramMessageList
	Expect(k8sClient.List(e.ctx, &list, client.InNamespace(e.ns),
		client.MatchingLabels{igv1.LabelChannel: e.channel, igv1.LabelMID: names.MIDHash(mid)})).To(Succeed())
	for _, m := range list.Items {
		if m.Spec.Direction == igv1.DirectionOutgoing {
			Expect(k8sClient.Delete(e.ctx, echo, client.Preconditions{UID: &echo.UID})).To(Succeed())
			return false
		}
	}
	return true
}

// drainEvents returns the Events recorded so far.
func (e *messageEnv) drainEvents() []string {
	var out []string
	for {
		select {
		case ev := <-e.rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// expectNoTokenLeaks checks that the token appears in no message object
// and no Event.
func (e *messageEnv) expectNoTokenLeaks() {
	GinkgoHelper()
	var list igv1.InstagramMessageList
	Expect(k8sClient.List(context.Background(), &list, client.InNamespace(e.ns))).To(Succeed())
	raw, err := json.Marshal(list)
	Expect(err).NotTo(HaveOccurred())
	Expect(string(raw)).NotTo(ContainSubstring(e.token))
	for _, ev := range e.drainEvents() {
		Expect(ev).NotTo(ContainSubstring(e.token))
	}
}

func expectMessageCondition(m *igv1.InstagramMessage, condType string, st metav1.ConditionStatus, reason string) {
	GinkgoHelper()
	c := meta.FindStatusCondition(m.Status.Conditions, condType)
	Expect(c).NotTo(BeNil(), "condition %s missing", condType)
	Expect(c.Status).To(Equal(st), "condition %s", condType)
	Expect(c.Reason).To(Equal(reason), "condition %s", condType)
	Expect(c.ObservedGeneration).To(Equal(m.Generation), "condition %s observedGeneration", condType)
}

// messageKstatus is what kstatus (kubectl wait, Argo CD, Flux) makes of a
// message.
func messageKstatus(m *igv1.InstagramMessage) status.Status {
	GinkgoHelper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(m)
	Expect(err).NotTo(HaveOccurred())
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	Expect(err).NotTo(HaveOccurred())
	return res.Status
}

func sentCount(result string) float64 {
	return testutil.ToFloat64(messagesSentTotal.WithLabelValues(result))
}

// refusingTransport refuses the next n connections before any byte is
// written, as a closed port does.
type refusingTransport struct {
	n    atomic.Int32
	next http.RoundTripper
}

func (t *refusingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	t.n.Store(0)
	return t.next.RoundTrip(req)
}

// hookedClients runs afterSend between Instagram's answer to a send and the
// reconciler seeing it: the moment an echo webhook can overtake the answer.
// beforeReserve, when set, runs as a send starts waiting for the rate
// limit.
type hookedClients struct {
	InstagramClients
	afterSend     func(mid string)
	beforeReserve func()
}

func (h hookedClients) ForApp(appID string) instagram.API {
	return hookedAPI{API: h.InstagramClients.ForApp(appID), afterSend: h.afterSend, beforeReserve: h.beforeReserve}
}

type hookedAPI struct {
	instagram.API
	afterSend     func(mid string)
	beforeReserve func()
}

func (h hookedAPI) Reserve(ctx context.Context) (context.Context, error) {
	if h.beforeReserve != nil {
		h.beforeReserve()
	}
	return h.API.Reserve(ctx)
}

func (h hookedAPI) SendMessage(ctx context.Context, token string, req instagram.SendRequest) (*instagram.SendResult, error) {
	res, err := h.API.SendMessage(ctx, token, req)
	if err == nil && h.afterSend != nil {
		h.afterSend(res.MessageID)
	}
	return res, err
}

// hasLabels reports whether m carries every label of want.
func hasLabels(m *igv1.InstagramMessage, want map[string]string) bool {
	for k, v := range want {
		if m.Labels[k] != v {
			return false
		}
	}
	return true
}

func labelsOf(m *igv1.InstagramMessage) labels.Set { return labels.Set(m.Labels) }

// receiverEchoByAnyMID plays the receiver's side for a further mid of a
// split send: create the echo object, then look for the outgoing message by
// the mid label or the per-mid label, and delete the echo when found. It
// returns whether the echo object survived.
func (e *messageEnv) receiverEchoByAnyMID(mid string) bool {
	GinkgoHelper()
	if !e.receiverEcho(mid) {
		return false
	}
	var list igv1.InstagramMessageList
	Expect(k8sClient.List(e.ctx, &list, client.InNamespace(e.ns),
		client.MatchingLabels{igv1.LabelChannel: e.channel}, client.HasLabels{names.MIDLabelKey(mid)})).To(Succeed())
	for _, m := range list.Items {
		if m.Spec.Direction == igv1.DirectionOutgoing {
			echo := &igv1.InstagramMessage{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: names.IncomingMessageName(e.channel, mid)}}
			Expect(k8sClient.Delete(e.ctx, echo)).To(Succeed())
			return false
		}
	}
	return true
}
