package webhookserver_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
	ws "github.com/leadchat/instagram-operator/webhookserver"

	"github.com/leadchat/instagram-operator/internal/testenv"
)

// Fixtures shared by every spec: one ClusterInstagramApp ("acme") serving
// channel "support", one namespaced InstagramApp ("own") serving channel
// "sales", which is suspended and has an invalid token.
const (
	clusterNS = "operator-system"
	ns        = "team-a"

	acmeSecret     = "acme-app-secret"
	acmePrevious   = "acme-previous-secret"
	acmeVerify     = "acme-verify-token"
	ownSecret      = "own-app-secret"
	ownVerify      = "own-verify-token"
	supportAccount = "17841400000000001"
	salesAccount   = "17841400000000002"
	orphanAccount  = "17841400000000009"
)

var (
	testEnv    *envtest.Environment
	cfg        *rest.Config
	k8s        client.Client
	k8sWatch   client.WithWatch
	mgrCache   client.Reader
	srv        *ws.Server
	baseURL    string
	fakeClock  *clocktesting.FakePassiveClock
	t0         = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	cancelMgr  context.CancelFunc
	mgrDone    chan error
	supportUID string

	// failWrites makes the next N writes of the receiver fail with 503, as
	// an overloaded API server would.
	failWrites atomic.Int32
	// beforeMIDList runs once, right before the receiver's next list of
	// outgoing messages by mid; the echo race specs put the manager's
	// writes there.
	beforeMIDList atomic.Pointer[func()]
)

func TestWebhookServer(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "webhookserver suite")
}

var _ = BeforeSuite(func() {
	// CI runs on two shared cores: give informers and managers time to
	// catch up, so only a wrong answer fails a spec, never a slow one.
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: testenv.AssetsDir(),
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(igv1.AddToScheme(scheme))
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  ws.CacheOptions(clusterNS),
		Client:                 ws.ClientOptions(),
	})
	Expect(err).NotTo(HaveOccurred())

	direct, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	k8sWatch, mgrCache = direct, mgr.GetCache()
	failing := func() error {
		if failWrites.Add(-1) >= 0 {
			return apierrors.NewServiceUnavailable("injected failure")
		}
		return nil
	}
	writer := interceptor.NewClient(direct, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := failing(); err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			if err := failing(); err != nil {
				return err
			}
			return c.Patch(ctx, obj, p, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			if err := failing(); err != nil {
				return err
			}
			return c.SubResource(sub).Patch(ctx, obj, p, opts...)
		},
	})
	live := interceptor.NewClient(direct, interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			lo := (&client.ListOptions{}).ApplyOptions(opts)
			if lo.LabelSelector != nil {
				if _, ok := lo.LabelSelector.RequiresExactMatch(igv1.LabelMID); ok {
					if hook := beforeMIDList.Swap(nil); hook != nil {
						(*hook)()
					}
				}
			}
			return c.List(ctx, list, opts...)
		},
	})

	fakeClock = clocktesting.NewFakePassiveClock(t0.Add(time.Minute))
	srv = ws.New(ws.Options{
		Client:                   writer,
		Cache:                    mgr.GetCache(),
		APIReader:                live,
		ClusterResourceNamespace: clusterNS,
		BindAddress:              "127.0.0.1:0",
		Clock:                    fakeClock,
		Logger:                   logf.Log.WithName("webhookserver"),
		// Every spec posts from 127.0.0.1 and many post forgeries on
		// purpose: the per-client limit has its own specs, each with a
		// receiver of its own (receiverWith).
		SignatureFailureBurst: 1 << 20,
		// Specs publish apps of their own, some within the same second as
		// the fixtures: the shared path's bound (TestSharedPathBound) must
		// not decide here which fixture app a delivery is checked against.
		MaxSharedPathSecrets: 1000,
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancelMgr = cancel
	Expect(srv.SetupWithManager(ctx, mgr)).To(Succeed())
	mgrDone = make(chan error, 1)
	go func() {
		defer GinkgoRecover()
		mgrDone <- mgr.Start(ctx)
	}()
	Eventually(srv.Addr).WithTimeout(30 * time.Second).ShouldNot(BeNil())
	baseURL = "http://" + srv.Addr().String()

	createFixtures(ctx, mgr.GetCache())
})

var _ = AfterSuite(func() {
	if cancelMgr != nil {
		cancelMgr()
		Eventually(mgrDone).WithTimeout(30 * time.Second).Should(Receive(BeNil()))
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

func createFixtures(ctx context.Context, cache client.Reader) {
	for _, n := range []string{clusterNS, ns} {
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})).To(Succeed())
	}
	// What the manager publishes for the receiver: each app's credentials
	// in a Secret of the operator's namespace.
	publishApp(ctx, igv1.KindClusterInstagramApp, "", "acme", map[string]string{
		igv1.AppSecretKeyAppSecret:         acmeSecret,
		igv1.AppSecretKeyPreviousAppSecret: acmePrevious,
		igv1.AppSecretKeyVerifyToken:       acmeVerify,
	})
	publishApp(ctx, igv1.KindInstagramApp, ns, "own", map[string]string{igv1.AppSecretKeyAppSecret: ownSecret, igv1.AppSecretKeyVerifyToken: ownVerify})
	Expect(k8s.Create(ctx, &igv1.ClusterInstagramApp{
		ObjectMeta: metav1.ObjectMeta{Name: "acme"},
		Spec:       igv1.AppSpec{AppID: "1001", SecretRef: igv1.LocalObjectReference{Name: "acme"}},
	})).To(Succeed())
	Expect(k8s.Create(ctx, &igv1.InstagramApp{
		ObjectMeta: metav1.ObjectMeta{Name: "own", Namespace: ns},
		Spec:       igv1.AppSpec{AppID: "1002", SecretRef: igv1.LocalObjectReference{Name: "own"}},
	})).To(Succeed())

	support := &igv1.InstagramChannel{
		ObjectMeta: metav1.ObjectMeta{Name: "support", Namespace: ns},
		Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"}},
	}
	Expect(k8s.Create(ctx, support)).To(Succeed())
	support.Status.Account = &igv1.AccountStatus{UserID: supportAccount, Username: "acme.support"}
	Expect(k8s.Status().Update(ctx, support)).To(Succeed())
	supportUID = string(support.UID)

	// A channel in trouble: suspended, token invalid. It must still record.
	sales := &igv1.InstagramChannel{
		ObjectMeta: metav1.ObjectMeta{Name: "sales", Namespace: ns},
		Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindInstagramApp, Name: "own"}, Suspend: true},
	}
	Expect(k8s.Create(ctx, sales)).To(Succeed())
	sales.Status.Account = &igv1.AccountStatus{UserID: salesAccount}
	sales.Status.Conditions = []metav1.Condition{{
		Type: igv1.ConditionStalled, Status: metav1.ConditionTrue, Reason: igv1.ReasonTokenInvalid,
		Message: "code 190 subcode 460", LastTransitionTime: metav1.Now(),
	}}
	Expect(k8s.Status().Update(ctx, sales)).To(Succeed())

	// A channel that never had an account: nothing can be routed to it.
	Expect(k8s.Create(ctx, &igv1.InstagramChannel{
		ObjectMeta: metav1.ObjectMeta{Name: "pending", Namespace: ns},
		Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"}},
	})).To(Succeed())

	Eventually(func(g Gomega) {
		for _, acct := range []string{supportAccount, salesAccount} {
			var l igv1.InstagramChannelList
			g.Expect(cache.List(ctx, &l, client.MatchingFields{ws.ChannelUserIDIndex: acct})).To(Succeed())
			g.Expect(l.Items).To(HaveLen(1))
		}
		var s corev1.Secret
		g.Expect(cache.Get(ctx, publishedKey(igv1.KindInstagramApp, ns, "own"), &s)).To(Succeed())
		g.Expect(cache.Get(ctx, publishedKey(igv1.KindClusterInstagramApp, "", "acme"), &s)).To(Succeed())
		var apps igv1.InstagramAppList
		g.Expect(cache.List(ctx, &apps)).To(Succeed())
		g.Expect(apps.Items).To(HaveLen(1))
		var capps igv1.ClusterInstagramAppList
		g.Expect(cache.List(ctx, &capps)).To(Succeed())
		g.Expect(capps.Items).To(HaveLen(1))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// publishedKey is where the manager publishes an app's credentials.
func publishedKey(kind, namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: clusterNS, Name: names.AppCredentialsSecretName(kind, namespace, name)}
}

// publishApp writes what the manager's app controller publishes for an app.
func publishApp(ctx context.Context, kind, namespace, name string, data map[string]string) *corev1.Secret {
	GinkgoHelper()
	key := publishedKey(kind, namespace, name)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: key.Name, Namespace: key.Namespace,
			Labels: map[string]string{igv1.LabelWatch: "true", igv1.LabelAppCredentials: "true"},
			Annotations: map[string]string{
				igv1.AnnotationAppKind: kind, igv1.AnnotationAppNamespace: namespace, igv1.AnnotationAppName: name,
			},
		},
		Type:       igv1.AppCredentialsSecretType,
		StringData: data,
	}
	Expect(k8s.Create(ctx, s)).To(Succeed())
	return s
}

// sign is Meta's X-Hub-Signature-256 value for body.
func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// post delivers body signed with secret ("" sends no signature) and returns
// the status code.
func post(body []byte, secret string) int {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodPost, baseURL+ws.WebhookPath, bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set(ws.SignatureHeader, sign(secret, body))
	}
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

type obj = map[string]any

// delivery is an "instagram" envelope of entries.
func delivery(entries ...obj) []byte {
	b, err := json.Marshal(obj{"object": "instagram", "entry": entries})
	Expect(err).NotTo(HaveOccurred())
	return b
}

func entry(account string, items ...obj) obj {
	return obj{"id": account, "time": t0.UnixMilli(), "messaging": items}
}

// at is t0 plus d, in Meta's milliseconds.
func at(d time.Duration) int64 { return t0.Add(d).UnixMilli() }

// fromCustomer is an item the customer sent to the business.
func fromCustomer(account, customer string, ts int64, kv ...any) obj {
	o := obj{"sender": obj{"id": customer}, "recipient": obj{"id": account}, "timestamp": ts}
	for i := 0; i < len(kv); i += 2 {
		o[kv[i].(string)] = kv[i+1]
	}
	return o
}

// fromBusiness is an item the business sent to the customer (an echo).
func fromBusiness(account, customer string, ts int64, kv ...any) obj {
	o := fromCustomer(account, customer, ts, kv...)
	o["sender"], o["recipient"] = obj{"id": account}, obj{"id": customer}
	return o
}

var seq atomic.Int64

// newContact is a fresh customer IGSID, so specs never share a conversation.
func newContact() string { return fmt.Sprintf("55123400%08d", seq.Add(1)) }

// newMID is a fresh mid.
func newMID() string { return fmt.Sprintf("aWdfZAG1faWQ6%08d", seq.Add(1)) }
