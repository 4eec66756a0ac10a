package routing

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func channel(ns, name string, created time.Time) *igv1.InstagramChannel {
	return &igv1.InstagramChannel{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(created)}}
}

func TestOwner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		claimants []*igv1.InstagramChannel
		want      string
	}{
		"none":                 {want: ""},
		"oldest wins":          {claimants: []*igv1.InstagramChannel{channel("b", "x", t0.Add(time.Second)), channel("z", "y", t0)}, want: "z/y"},
		"tie: namespace first": {claimants: []*igv1.InstagramChannel{channel("b", "a", t0), channel("a", "z", t0)}, want: "a/z"},
		"tie: then name":       {claimants: []*igv1.InstagramChannel{channel("a", "z", t0), channel("a", "b", t0)}, want: "a/b"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ""
			if o := Owner(tc.claimants); o != nil {
				got = o.Namespace + "/" + o.Name
			}
			if got != tc.want {
				t.Fatalf("Owner = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAppOf(t *testing.T) {
	tests := map[string]struct {
		ref  igv1.AppReference
		want string
	}{
		"default kind is namespaced": {ref: igv1.AppReference{Name: "own"}, want: "InstagramApp/team/own"},
		"namespaced":                 {ref: igv1.AppReference{Kind: igv1.KindInstagramApp, Name: "own"}, want: "InstagramApp/team/own"},
		"cluster":                    {ref: igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"}, want: "ClusterInstagramApp/acme"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ch := channel("team", "c", time.Time{})
			ch.Spec.AppRef = tc.ref
			if got := AppOf(ch).String(); got != tc.want {
				t.Fatalf("AppOf = %q, want %q", got, tc.want)
			}
		})
	}
}
