package controllers

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clienttesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	fakeclient "sigs.k8s.io/controller-runtime/pkg/client/fake"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

// BenchmarkSendThroughput measures messages sent per second through the
// whole send path (Sending guard, Instagram call over loopback HTTP, outcome,
// finishing labels) against the fake Instagram and an in-memory API server.
// "limiter=default" runs with the client's per-app rate limit, which is what
// bounds a real manager; "limiter=off" shows the controller's own cost.
func BenchmarkSendThroughput(b *testing.B) {
	for _, bc := range []struct {
		name string
		rate float64
	}{
		{"limiter=default", 0},
		{"limiter=off", -1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchmarkSend(b, bc.rate)
		})
	}
}

func benchmarkSend(b *testing.B, ratePerSecond float64) {
	const (
		ns, channel, appID, userID = "bench", "support", "800000001", "17841400000009999"
	)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	if err := igv1.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now().UTC().Truncate(time.Second))
	ig := fake.New(fake.Options{Clock: clk})
	srv := httptest.NewServer(ig)
	b.Cleanup(func() {
		srv.Close()
		ig.Close()
	})
	ig.AddApp(appID, "bench-secret")
	ig.AddAccount(fake.Account{UserID: userID, Username: "bench"})
	token := ig.IssueLongLivedToken(appID, userID)

	ch := &igv1.InstagramChannel{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: channel, UID: "channel-uid"},
		Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindInstagramApp, Name: "acme"}},
		Status: igv1.InstagramChannelStatus{Conditions: []metav1.Condition{{
			Type: igv1.ConditionReady, Status: metav1.ConditionTrue, Reason: igv1.ReasonReady, LastTransitionTime: metav1.Now(),
		}}},
	}
	app := &igv1.InstagramApp{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"},
		Spec:       igv1.AppSpec{AppID: appID, SecretRef: igv1.LocalObjectReference{Name: "acme-app"}},
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ch.TokenSecretName(), Labels: map[string]string{igv1.LabelWatch: "true"}},
		Data:       map[string][]byte{igv1.TokenSecretKeyAccessToken: []byte(token)},
	}
	// A plain object tracker: the default one rebuilds a REST mapper on
	// every patch, which would dominate the figures.
	tracker := clienttesting.NewObjectTracker(scheme, serializer.NewCodecFactory(scheme).UniversalDecoder())
	cl := fakeclient.NewClientBuilder().WithScheme(scheme).WithObjectTracker(tracker).
		WithObjects(ch, app, secret).
		WithStatusSubresource(&igv1.InstagramMessage{}, &igv1.InstagramChannel{}).
		Build()
	r := &InstagramMessageReconciler{
		Client: cl, APIReader: cl, Scheme: scheme, Clock: clk,
		Instagram: instagram.NewClients(instagram.Config{
			GraphURL: srv.URL, APIURL: srv.URL, OAuthURL: srv.URL, Clock: clk, RatePerSecond: ratePerSecond,
		}),
	}

	ctx := context.Background()
	reqs := make([]ctrl.Request, b.N)
	for i := range reqs {
		m := &igv1.InstagramMessage{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("m-%d", i), CreationTimestamp: metav1.NewTime(clk.Now())},
			Spec: igv1.InstagramMessageSpec{
				ChannelRef: igv1.ChannelReference{Name: channel}, Direction: igv1.DirectionOutgoing,
				ContactID: "5512340000000001", Text: "benchmark",
			},
		}
		if err := cl.Create(ctx, m); err != nil {
			b.Fatal(err)
		}
		reqs[i] = ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: m.Name}}
	}

	b.ResetTimer()
	start := time.Now()
	for _, req := range reqs {
		if _, err := r.Reconcile(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()

	if got := len(ig.Sent()); got != b.N {
		b.Fatalf("sent %d messages, want %d", got, b.N)
	}
	last := &igv1.InstagramMessage{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: reqs[b.N-1].Name}, last); err != nil {
		b.Fatal(err)
	}
	if last.Status.Phase != igv1.PhaseSent {
		b.Fatalf("last message is %s, want Sent", last.Status.Phase)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
