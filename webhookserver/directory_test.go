package webhookserver

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/routing"
)

func TestRoutingOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ch := func(ns, name string, created time.Time) *igv1.InstagramChannel {
		return &igv1.InstagramChannel{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(created)}}
	}
	tests := map[string]struct {
		a, b *igv1.InstagramChannel
		want bool
	}{
		"older wins over a smaller name": {ch("a", "z", t0), ch("a", "a", t0.Add(time.Second)), true},
		"newer loses":                    {ch("a", "a", t0.Add(time.Second)), ch("a", "z", t0), false},
		"same time: namespace decides":   {ch("a", "z", t0), ch("b", "a", t0), true},
		"same time and namespace: name":  {ch("a", "a", t0), ch("a", "b", t0), true},
		"identical is not older":         {ch("a", "a", t0), ch("a", "a", t0), false},
		// The manager once compared "namespace/name" as one string, which
		// orders "a-b/c" before "a/z" ('-' < '/'): the receiver wrote to
		// a/z while the manager let a-b/c send.
		"namespace compared alone": {ch("a", "z", t0), ch("a-b", "c", t0), true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := routing.Older(tc.a, tc.b); got != tc.want {
				t.Fatalf("routing.Older = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAppOf(t *testing.T) {
	tests := map[string]struct {
		ref  igv1.AppReference
		want AppKey
	}{
		"cluster app":         {igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"}, AppKey{Kind: igv1.KindClusterInstagramApp, Name: "acme"}},
		"namespaced app":      {igv1.AppReference{Kind: igv1.KindInstagramApp, Name: "own"}, AppKey{Kind: igv1.KindInstagramApp, Namespace: "team", Name: "own"}},
		"kind defaulted away": {igv1.AppReference{Name: "own"}, AppKey{Kind: igv1.KindInstagramApp, Namespace: "team", Name: "own"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ch := &igv1.InstagramChannel{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "c"}, Spec: igv1.InstagramChannelSpec{AppRef: tc.ref}}
			if got := appOf(ch); got != tc.want {
				t.Fatalf("appOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}
