package webhookserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/routing"
)

// ChannelUserIDIndex is the cache field index of InstagramChannel on
// status.account.userID, the key webhook entries are routed by.
const ChannelUserIDIndex = "status.account.userID"

// IndexChannelUserID is the indexer function of ChannelUserIDIndex. A channel
// that never had an account is not indexed and so cannot be routed to.
func IndexChannelUserID(obj client.Object) []string {
	ch, ok := obj.(*igv1.InstagramChannel)
	if !ok || ch.Status.Account == nil || ch.Status.Account.UserID == "" {
		return nil
	}
	return []string{ch.Status.Account.UserID}
}

// directory answers the receiver's two lookups from the informer cache: which
// apps (and secrets) exist, and which channel serves an account. The cache
// holds apps, channels and only the Secrets labelled for the operator, so both
// lookups stay in memory and cost no API call on the hot path.
type directory struct {
	cache            client.Reader
	clusterNamespace string
}

// unsafeRead lists without deep copies: the lookups only read the cached
// objects and copy out the few strings they need.
var unsafeRead = client.UnsafeDisableDeepCopy

// credentials gathers every app that has a readable Secret. An app whose
// Secret is missing (or not labelled for the cache) signs nothing we accept;
// its own Ready condition, set by the manager, tells the platform team why.
func (d *directory) credentials(ctx context.Context) ([]AppCredentials, error) {
	var clusterApps igv1.ClusterInstagramAppList
	if err := d.cache.List(ctx, &clusterApps, unsafeRead); err != nil {
		return nil, fmt.Errorf("list ClusterInstagramApps: %w", err)
	}
	var apps igv1.InstagramAppList
	if err := d.cache.List(ctx, &apps, unsafeRead); err != nil {
		return nil, fmt.Errorf("list InstagramApps: %w", err)
	}
	out := make([]AppCredentials, 0, len(clusterApps.Items)+len(apps.Items))
	for i := range clusterApps.Items {
		a := &clusterApps.Items[i]
		key := AppKey{Kind: igv1.KindClusterInstagramApp, Name: a.Name}
		c, err := d.load(ctx, key, types.NamespacedName{Namespace: d.clusterNamespace, Name: a.Spec.SecretRef.Name})
		if err != nil {
			return nil, err
		}
		if c != nil {
			out = append(out, *c)
		}
	}
	for i := range apps.Items {
		a := &apps.Items[i]
		key := AppKey{Kind: igv1.KindInstagramApp, Namespace: a.Namespace, Name: a.Name}
		c, err := d.load(ctx, key, types.NamespacedName{Namespace: a.Namespace, Name: a.Spec.SecretRef.Name})
		if err != nil {
			return nil, err
		}
		if c != nil {
			out = append(out, *c)
		}
	}
	return out, nil
}

func (d *directory) load(ctx context.Context, app AppKey, ref types.NamespacedName) (*AppCredentials, error) {
	if ref.Name == "" || ref.Namespace == "" {
		return nil, nil
	}
	var s corev1.Secret
	if err := d.cache.Get(ctx, ref, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get Secret of %s: %w", app, err)
	}
	c := &AppCredentials{App: app, VerifyToken: s.Data[igv1.AppSecretKeyVerifyToken]}
	for _, k := range []string{igv1.AppSecretKeyAppSecret, igv1.AppSecretKeyPreviousAppSecret} {
		if v := s.Data[k]; len(v) > 0 {
			c.Secrets = append(c.Secrets, v)
		}
	}
	return c, nil
}

// route is the channel an entry is written to.
type route struct {
	Namespace string
	Name      string
	UID       types.UID
	App       AppKey
	// sink is the channel's event sink; nil without one (sink.go).
	sink *routeSink
}

// channelFor finds the channel serving an Instagram account. When several
// channels claim one account (the manager marks all but one
// DuplicateAccount), the oldest wins, ties broken by namespace and name, the
// same rule the manager applies, so events land where the manager sends from.
// nil means no channel serves the account.
func (d *directory) channelFor(ctx context.Context, userID string) (*route, error) {
	if userID == "" {
		return nil, nil
	}
	var list igv1.InstagramChannelList
	if err := d.cache.List(ctx, &list, client.MatchingFields{ChannelUserIDIndex: userID}, unsafeRead); err != nil {
		return nil, fmt.Errorf("list channels by account: %w", err)
	}
	claimants := make([]*igv1.InstagramChannel, len(list.Items))
	for i := range list.Items {
		claimants[i] = &list.Items[i]
	}
	best := routing.Owner(claimants)
	if best == nil {
		return nil, nil
	}
	return &route{Namespace: best.Namespace, Name: best.Name, UID: best.UID, App: appOf(best), sink: sinkOf(best)}, nil
}

// appOf is the app a channel uses, as internal/routing decides it.
func appOf(ch *igv1.InstagramChannel) AppKey {
	return AppKey(routing.AppOf(ch))
}
