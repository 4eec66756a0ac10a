package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
)

// channelEnv is one channel test's world: a namespace, a cache restricted
// like the manager's (Secrets labelled watch=true only) with the channel
// indexes, a client that counts API writes, a fake Instagram on a loopback
// httptest server, a fake clock, captured Events and logs. Reconcile is
// driven directly.
type channelEnv struct {
	ctx    context.Context
	ns     string
	clock  *clocktesting.FakeClock
	ig     *fake.Server
	cache  cache.Cache
	cl     client.Client
	writes atomic.Int32
	// failSecretWrites makes the next N Secret patches fail, as an API
	// server under load would.
	failSecretWrites atomic.Int32
	// beforeStatusPatch, when set, runs once before the reconciler's next
	// status write: another writer acting between its read and its write.
	beforeStatusPatch atomic.Pointer[func()]
	rec               *events.FakeRecorder
	r                 *InstagramChannelReconciler

	mu     sync.Mutex
	logs   strings.Builder
	events []string

	appID, appSecret string
	// tokens handed out by the test, checked for leaks at the end.
	tokens []string
}

var (
	envCounter  atomic.Int32
	userCounter atomic.Int64
)

const (
	testAppName       = "acme"
	testAppSecretName = "acme-app"
)

func newChannelEnv() *channelEnv {
	GinkgoHelper()
	e := &channelEnv{}
	var cancel context.CancelFunc
	e.ctx, cancel = context.WithCancel(suiteCtx)

	e.ns = newTestNamespace(e.ctx, "igch-")
	var srv *httptest.Server
	e.clock, e.ig, srv = newFakeInstagram()

	var err error
	cacheOpts := CacheOptions()
	cacheOpts.Scheme = testScheme
	e.cache, err = cache.New(cfg, cacheOpts)
	Expect(err).NotTo(HaveOccurred())
	Expect(setupIndexes(e.ctx, e.cache)).To(Succeed())
	go func() { _ = e.cache.Start(e.ctx) }()
	Expect(e.cache.WaitForCacheSync(e.ctx)).To(BeTrue())

	base, err := client.NewWithWatch(cfg, client.Options{Scheme: testScheme, Cache: &client.CacheOptions{Reader: e.cache}})
	Expect(err).NotTo(HaveOccurred())
	count := func() { e.writes.Add(1) }
	e.cl = interceptor.NewClient(base, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			count()
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			count()
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			count()
			if _, ok := obj.(*corev1.Secret); ok && e.failSecretWrites.Add(-1) >= 0 {
				return apierrors.NewServiceUnavailable("injected Secret write failure")
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			count()
			return c.Delete(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			count()
			if hook := e.beforeStatusPatch.Swap(nil); hook != nil {
				(*hook)()
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			count()
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
	})

	e.rec = events.NewFakeRecorder(500)
	e.appID = fmt.Sprintf("%d", 900000+envCounter.Add(1))
	e.appSecret = "app-secret-" + e.ns
	e.r = &InstagramChannelReconciler{
		Client:    e.cl,
		APIReader: k8sClient,
		Scheme:    testScheme,
		Recorder:  e.rec,
		Clock:     e.clock,
		Instagram: instagram.NewClients(instagram.Config{
			GraphURL: srv.URL, APIURL: srv.URL, OAuthURL: srv.URL,
			RatePerSecond: -1, Clock: e.clock,
		}),
		Options: ChannelOptions{ClusterResourceNamespace: e.ns},
	}

	DeferCleanup(func() {
		e.expectNoTokenLeaks()
		cancel()
		srv.Close()
		e.ig.Close()
	})
	return e
}

// logCtx carries a logger that writes into e.logs, verbosity 1 included.
func (e *channelEnv) logCtx() context.Context {
	logger := funcr.New(func(prefix, args string) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.logs.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 1})
	return log.IntoContext(e.ctx, logger)
}

// reconcile waits until the cache has caught up with the API server, runs
// one Reconcile and collects its Events.
func (e *channelEnv) reconcile(name string) ctrl.Result {
	GinkgoHelper()
	e.syncCache()
	res, err := e.r.Reconcile(e.logCtx(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: e.ns, Name: name}})
	Expect(err).NotTo(HaveOccurred())
	e.drainEvents()
	return res
}

func (e *channelEnv) drainEvents() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		select {
		case ev := <-e.rec.Events:
			e.events = append(e.events, ev)
		default:
			return append([]string(nil), e.events...)
		}
	}
}

// eventsWith returns the recorded Events ("Type Reason note") starting with prefix.
func (e *channelEnv) eventsWith(prefix string) []string {
	var out []string
	for _, ev := range e.drainEvents() {
		if strings.HasPrefix(ev, prefix) {
			out = append(out, ev)
		}
	}
	return out
}

func versions[T client.Object](items []T) map[string]string {
	out := map[string]string{}
	for _, o := range items {
		out[o.GetName()] = o.GetResourceVersion()
	}
	return out
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// syncCache waits until the cache holds what the API server holds for the
// namespace: channels, apps and watched Secrets.
func (e *channelEnv) syncCache() {
	GinkgoHelper()
	watched := client.MatchingLabels{igv1.LabelWatch: "true"}
	Eventually(func(g Gomega) {
		var live, cached igv1.InstagramChannelList
		g.Expect(k8sClient.List(e.ctx, &live, client.InNamespace(e.ns))).To(Succeed())
		g.Expect(e.cache.List(e.ctx, &cached, client.InNamespace(e.ns))).To(Succeed())
		g.Expect(versions(ptrs(cached.Items))).To(Equal(versions(ptrs(live.Items))))

		var liveS, cachedS corev1.SecretList
		g.Expect(k8sClient.List(e.ctx, &liveS, client.InNamespace(e.ns), watched)).To(Succeed())
		g.Expect(e.cache.List(e.ctx, &cachedS, client.InNamespace(e.ns), watched)).To(Succeed())
		g.Expect(versions(ptrs(cachedS.Items))).To(Equal(versions(ptrs(liveS.Items))))

		var liveA, cachedA igv1.InstagramAppList
		g.Expect(k8sClient.List(e.ctx, &liveA, client.InNamespace(e.ns))).To(Succeed())
		g.Expect(e.cache.List(e.ctx, &cachedA, client.InNamespace(e.ns))).To(Succeed())
		g.Expect(versions(ptrs(cachedA.Items))).To(Equal(versions(ptrs(liveA.Items))))
	}).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(Succeed())
}

// createApp creates the InstagramApp, its Secret, and the app in the fake;
// the app is marked Ready as the app controller would.
func (e *channelEnv) createApp() {
	GinkgoHelper()
	e.ig.AddApp(e.appID, e.appSecret)
	Expect(k8sClient.Create(e.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: testAppSecretName},
		Data: map[string][]byte{
			igv1.AppSecretKeyAppSecret:   []byte(e.appSecret),
			igv1.AppSecretKeyVerifyToken: []byte("verify-me"),
		},
	})).To(Succeed())
	app := &igv1.InstagramApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: testAppName},
		Spec:       igv1.AppSpec{AppID: e.appID, SecretRef: igv1.LocalObjectReference{Name: testAppSecretName}},
	}
	Expect(k8sClient.Create(e.ctx, app)).To(Succeed())
	markAppReady(e.ctx, app)
}

func markAppReady(ctx context.Context, app AppObject) {
	GinkgoHelper()
	conds := app.GetConditions()
	meta.SetStatusCondition(&conds, metav1.Condition{
		Type: igv1.ConditionReady, Status: metav1.ConditionTrue, Reason: igv1.ReasonReady,
		Message: "app credentials are present", ObservedGeneration: app.GetGeneration(),
	})
	app.SetConditions(conds)
	Expect(k8sClient.Status().Update(ctx, app)).To(Succeed())
}

func (e *channelEnv) newAccount(username string) fake.Account {
	acc := fake.Account{
		UserID:      fmt.Sprintf("1784%011d", userCounter.Add(1)),
		ID:          fmt.Sprintf("2600%011d", userCounter.Load()),
		Username:    username,
		Name:        strings.ToUpper(username[:1]) + username[1:],
		AccountType: "BUSINESS",
	}
	e.ig.AddAccount(acc)
	return acc
}

func (e *channelEnv) shortLived(userID string) string {
	t := e.ig.IssueShortLivedToken(e.appID, userID)
	e.tokens = append(e.tokens, t)
	return t
}

func (e *channelEnv) longLived(userID string) string {
	t := e.ig.IssueLongLivedToken(e.appID, userID)
	e.tokens = append(e.tokens, t)
	return t
}

// initialSecret creates a user-owned Secret without the watch label, as a
// person would.
func (e *channelEnv) initialSecret(name, token string, extra map[string]string) {
	GinkgoHelper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Data:       map[string][]byte{igv1.TokenSecretKeyAccessToken: []byte(token)},
	}
	for k, v := range extra {
		s.Data[k] = []byte(v)
	}
	Expect(k8sClient.Create(e.ctx, s)).To(Succeed())
}

func (e *channelEnv) updateSecret(name string, data map[string]string) {
	GinkgoHelper()
	s := &corev1.Secret{}
	Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: name}, s)).To(Succeed())
	patch := client.MergeFrom(s.DeepCopy())
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	Expect(k8sClient.Patch(e.ctx, s, patch)).To(Succeed())
}

// loginSecret is what the OAuth callback writes after a completed login.
func (e *channelEnv) loginSecret(channel, token string) {
	GinkgoHelper()
	Expect(k8sClient.Create(e.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: e.ns, Name: names.LoginSecretName(e.ns, channel),
			Labels: map[string]string{igv1.LabelWatch: "true"},
			Annotations: map[string]string{
				igv1.AnnotationChannelNamespace: e.ns,
				igv1.AnnotationChannelName:      channel,
			},
		},
		Type: igv1.LoginSecretType,
		Data: map[string][]byte{igv1.TokenSecretKeyAccessToken: []byte(token)},
	})).To(Succeed())
}

func withInitial(secret string) func(*igv1.InstagramChannel) {
	return func(ch *igv1.InstagramChannel) {
		ch.Spec.InitialTokenSecretRef = &igv1.SecretKeySelector{Name: secret}
	}
}

func (e *channelEnv) newChannel(name string, mutate ...func(*igv1.InstagramChannel)) *igv1.InstagramChannel {
	GinkgoHelper()
	ch := &igv1.InstagramChannel{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindInstagramApp, Name: testAppName}},
	}
	for _, m := range mutate {
		m(ch)
	}
	Expect(k8sClient.Create(e.ctx, ch)).To(Succeed())
	return ch
}

func (e *channelEnv) channel(name string) *igv1.InstagramChannel {
	GinkgoHelper()
	ch := &igv1.InstagramChannel{}
	Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: name}, ch)).To(Succeed())
	return ch
}

func (e *channelEnv) secret(name string) *corev1.Secret {
	GinkgoHelper()
	s := &corev1.Secret{}
	Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: name}, s)).To(Succeed())
	return s
}

func (e *channelEnv) secretGone(name string) bool {
	err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: name}, &corev1.Secret{})
	return apierrors.IsNotFound(err)
}

func (e *channelEnv) annotate(name, value string) {
	GinkgoHelper()
	ch := e.channel(name)
	patch := client.MergeFrom(ch.DeepCopy())
	if ch.Annotations == nil {
		ch.Annotations = map[string]string{}
	}
	ch.Annotations[igv1.AnnotationRequestedAt] = value
	Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
}

// adopt creates the app, an account, an initial Secret with a short-lived
// token and the channel, and reconciles it to Ready.
func (e *channelEnv) adopt(name string, mutate ...func(*igv1.InstagramChannel)) fake.Account {
	GinkgoHelper()
	e.createApp()
	acc := e.newAccount("acme_" + name)
	e.initialSecret(name+"-seed", e.shortLived(acc.UserID), nil)
	e.newChannel(name, append([]func(*igv1.InstagramChannel){withInitial(name + "-seed")}, mutate...)...)
	e.reconcile(name)
	expectCondition(e.channel(name), igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
	return acc
}

func expectCondition(ch *igv1.InstagramChannel, condType string, st metav1.ConditionStatus, reason string) *metav1.Condition {
	GinkgoHelper()
	c := meta.FindStatusCondition(ch.Status.Conditions, condType)
	Expect(c).NotTo(BeNil(), "condition %s missing; conditions: %+v", condType, ch.Status.Conditions)
	Expect(c.Status).To(Equal(st), "condition %s: %s", condType, c.Message)
	Expect(c.Reason).To(Equal(reason), "condition %s: %s", condType, c.Message)
	Expect(c.ObservedGeneration).To(Equal(ch.Generation))
	return c
}

func expectNoCondition(ch *igv1.InstagramChannel, condType string) {
	GinkgoHelper()
	Expect(meta.FindStatusCondition(ch.Status.Conditions, condType)).To(BeNil(), "condition %s should be absent", condType)
}

// kstatusOf is what kstatus (kubectl wait, Argo CD, Flux) makes of the channel.
func kstatusOf(ch *igv1.InstagramChannel) status.Status {
	GinkgoHelper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(ch)
	Expect(err).NotTo(HaveOccurred())
	res, err := status.Compute(&unstructured.Unstructured{Object: m})
	Expect(err).NotTo(HaveOccurred())
	return res.Status
}

func defaultFields() []string {
	return []string{"message_reactions", "messages", "messaging_postbacks", "messaging_seen"}
}

// expectNoTokenLeaks checks that no token handed out by the test, and no
// token the controller obtained, appears in a log line, an Event or a
// channel's status.
func (e *channelEnv) expectNoTokenLeaks() {
	GinkgoHelper()
	tokens := append([]string(nil), e.tokens...)
	var secrets corev1.SecretList
	Expect(k8sClient.List(e.ctx, &secrets, client.InNamespace(e.ns))).To(Succeed())
	for _, s := range secrets.Items {
		if t := string(s.Data[igv1.TokenSecretKeyAccessToken]); t != "" {
			tokens = append(tokens, t)
		}
	}
	var channels igv1.InstagramChannelList
	Expect(k8sClient.List(e.ctx, &channels, client.InNamespace(e.ns))).To(Succeed())
	statusJSON, err := json.Marshal(channels.Items)
	Expect(err).NotTo(HaveOccurred())

	e.mu.Lock()
	logs := e.logs.String()
	evs := strings.Join(e.events, "\n")
	e.mu.Unlock()
	for _, t := range tokens {
		Expect(logs).NotTo(ContainSubstring(t), "token in a log line")
		Expect(evs).NotTo(ContainSubstring(t), "token in an Event")
		Expect(string(statusJSON)).NotTo(ContainSubstring(t), "token in a channel")
	}
}
