// Package routing holds the rules the manager and the webhook receiver must
// agree on byte for byte: which channel serves an Instagram account (the
// manager sends from it and marks the others DuplicateAccount; the receiver
// writes that account's events into it) and which app a channel uses (whose
// secret must have signed a delivery for it). Both binaries import this
// package so the two sides cannot drift apart.
package routing

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// App identifies an app: Kind is InstagramApp or ClusterInstagramApp;
// Namespace is empty for a ClusterInstagramApp.
type App struct {
	Kind      string
	Namespace string
	Name      string
}

// String is "Kind/name" or "Kind/namespace/name".
func (a App) String() string {
	if a.Namespace == "" {
		return a.Kind + "/" + a.Name
	}
	return a.Kind + "/" + a.Namespace + "/" + a.Name
}

// AppOf is the app a channel uses. An empty kind is the API default,
// InstagramApp, which lives in the channel's namespace.
func AppOf(ch *igv1.InstagramChannel) App {
	if ch.Spec.AppRef.Kind == igv1.KindClusterInstagramApp {
		return App{Kind: igv1.KindClusterInstagramApp, Name: ch.Spec.AppRef.Name}
	}
	return App{Kind: igv1.KindInstagramApp, Namespace: ch.Namespace, Name: ch.Spec.AppRef.Name}
}

// ConnectedAt is when a channel connected its account: status.account's
// connectedAt, or for a channel connected before that field existed its
// creation (which keeps the order those installs had).
func ConnectedAt(ch *igv1.InstagramChannel) metav1.Time {
	if a := ch.Status.Account; a != nil && a.ConnectedAt != nil {
		return *a.ConnectedAt
	}
	return ch.CreationTimestamp
}

// Older orders the channels that claim one account: the first to connect
// wins, then the first created, ties broken by namespace and name, so every
// replica of either binary picks the same one.
func Older(a, b *igv1.InstagramChannel) bool {
	ca, cb := ConnectedAt(a), ConnectedAt(b)
	if !ca.Equal(&cb) {
		return ca.Before(&cb)
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// Admitted reports whether a channel may serve its account: not while its
// app refuses the channel's namespace (a ClusterInstagramApp whose
// namespaceSelector no longer matches), which the manager records as the
// channel's Ready reason NamespaceNotAllowed. Every other trouble (an
// invalid token awaiting re-authorization, a suspended channel, an app
// that is not Ready) keeps the channel admitted, so it keeps receiving
// its account's events.
func Admitted(ch *igv1.InstagramChannel) bool {
	c := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady)
	return c == nil || c.Reason != igv1.ReasonNamespaceNotAllowed
}

// Owner is the channel that serves an account among the channels whose
// status names it: the admitted one that connected first; nil for none.
func Owner(claimants []*igv1.InstagramChannel) *igv1.InstagramChannel {
	var best *igv1.InstagramChannel
	for _, ch := range claimants {
		if Admitted(ch) && (best == nil || Older(ch, best)) {
			best = ch
		}
	}
	return best
}
