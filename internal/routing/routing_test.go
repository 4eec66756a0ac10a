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

func connected(ch *igv1.InstagramChannel, at time.Time) *igv1.InstagramChannel {
	ch.Status.Account = &igv1.AccountStatus{UserID: "17841400000000001", ConnectedAt: &metav1.Time{Time: at}}
	return ch
}

func refused(ch *igv1.InstagramChannel) *igv1.InstagramChannel {
	ch.Status.Conditions = []metav1.Condition{{Type: igv1.ConditionReady, Status: metav1.ConditionFalse, Reason: igv1.ReasonNamespaceNotAllowed}}
	return ch
}

func awaitingLogin(ch *igv1.InstagramChannel) *igv1.InstagramChannel {
	ch.Status.Conditions = []metav1.Condition{{Type: igv1.ConditionReady, Status: metav1.ConditionFalse, Reason: igv1.ReasonTokenInvalid}}
	return ch
}

func TestOwner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		claimants []*igv1.InstagramChannel
		want      string
	}{
		"none": {want: ""},
		// A tenant's channel created long ago that gets a token for an
		// account another team connected first does not take it over.
		"first to connect, not first created": {claimants: []*igv1.InstagramChannel{
			connected(channel("old", "c", t0), t0.Add(48*time.Hour)),
			connected(channel("new", "c", t0.Add(24*time.Hour)), t0.Add(25*time.Hour)),
		}, want: "new/c"},
		"connected before connectedAt existed: by creation": {claimants: []*igv1.InstagramChannel{
			channel("b", "legacy", t0.Add(time.Hour)), channel("a", "legacy", t0.Add(2*time.Hour)),
		}, want: "b/legacy"},
		"a legacy owner keeps the account from a later connect": {claimants: []*igv1.InstagramChannel{
			connected(channel("z", "new", t0), t0.Add(time.Hour)), channel("a", "legacy", t0.Add(30*time.Minute)),
		}, want: "a/legacy"},
		"not while its app refuses its namespace": {claimants: []*igv1.InstagramChannel{
			refused(connected(channel("a", "first", t0), t0)), connected(channel("b", "second", t0), t0.Add(time.Hour)),
		}, want: "b/second"},
		"still while it awaits re-authorization": {claimants: []*igv1.InstagramChannel{
			awaitingLogin(connected(channel("a", "first", t0), t0)), connected(channel("b", "second", t0), t0.Add(time.Hour)),
		}, want: "a/first"},
		"only refused ones: nobody": {claimants: []*igv1.InstagramChannel{refused(channel("a", "x", t0))}, want: ""},
		"oldest wins":               {claimants: []*igv1.InstagramChannel{channel("b", "x", t0.Add(time.Second)), channel("z", "y", t0)}, want: "z/y"},
		"tie: namespace first":      {claimants: []*igv1.InstagramChannel{channel("b", "a", t0), channel("a", "z", t0)}, want: "a/z"},
		"tie: then name":            {claimants: []*igv1.InstagramChannel{channel("a", "z", t0), channel("a", "b", t0)}, want: "a/b"},
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
