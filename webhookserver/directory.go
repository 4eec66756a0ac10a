package webhookserver

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
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
// holds apps, channels and only the app credentials the manager publishes
// into the operator's namespace, so both lookups stay in memory and cost no
// API call on the hot path.
type directory struct {
	cache            client.Reader
	clusterNamespace string
	// maxSharedSecrets bounds the secrets a delivery on the shared path is
	// checked against (see Options.MaxSharedPathSecrets).
	maxSharedSecrets int
}

// unsafeRead lists without deep copies: the lookups only read the cached
// objects and copy out the few strings they need.
var unsafeRead = client.UnsafeDisableDeepCopy

// credentials gathers the published credentials of every app, oldest
// publication first (ties by name), so that a bound on how many are tried
// keeps the apps that were there first. An app whose Secret is missing has
// nothing published and signs nothing we accept; its own Ready condition,
// set by the manager, tells the platform team why.
func (d *directory) credentials(ctx context.Context) ([]AppCredentials, error) {
	var list corev1.SecretList
	if err := d.cache.List(ctx, &list, client.InNamespace(d.clusterNamespace),
		client.MatchingLabels{igv1.LabelAppCredentials: "true"}, unsafeRead); err != nil {
		return nil, fmt.Errorf("list published app credentials: %w", err)
	}
	secrets := make([]*corev1.Secret, 0, len(list.Items))
	for i := range list.Items {
		secrets = append(secrets, &list.Items[i])
	}
	slices.SortFunc(secrets, func(a, b *corev1.Secret) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	out := make([]AppCredentials, 0, len(secrets))
	for _, s := range secrets {
		if c := published(s); c != nil {
			out = append(out, *c)
		}
	}
	return out, nil
}

// sharedCredentials are the credentials a delivery on the shared path is
// checked against: at most maxSharedSecrets secrets, whole apps only, so a
// forged POST costs a bounded number of HMACs however many apps tenants
// create. The rest are left out (skipped) and must use their own path.
func (d *directory) sharedCredentials(ctx context.Context) (apps []AppCredentials, skipped int, err error) {
	all, err := d.credentials(ctx)
	if err != nil {
		return nil, 0, err
	}
	budget := d.maxSharedSecrets
	for i := range all {
		n := len(all[i].Secrets)
		if n > budget {
			return apps, len(all) - i, nil
		}
		budget -= n
		apps = append(apps, all[i])
	}
	return apps, 0, nil
}

// appCredentials are the published credentials of one app, nil when there
// are none.
func (d *directory) appCredentials(ctx context.Context, app AppKey) (*AppCredentials, error) {
	var s corev1.Secret
	key := types.NamespacedName{Namespace: d.clusterNamespace, Name: names.AppCredentialsSecretName(app.Kind, app.Namespace, app.Name)}
	if err := d.cache.Get(ctx, key, &s, unsafeRead); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get published credentials of %s: %w", app, err)
	}
	c := published(&s)
	if c == nil || c.App != app {
		// A name collision or a Secret not written by the manager.
		return nil, nil
	}
	return c, nil
}

// coSigners are the apps other than signer whose secrets include the one
// that verified a delivery: several app objects may stand for one Meta app
// (a ClusterInstagramApp for the platform and an InstagramApp a team made
// for the same app ID), and each of them signed it. Finding them compares
// stored secrets with each other, never the body: no HMAC.
func coSigners(apps []AppCredentials, secret []byte, signer AppKey) []AppKey {
	var out []AppKey
	for i := range apps {
		if apps[i].App == signer {
			continue
		}
		for _, s := range apps[i].Secrets {
			if bytes.Equal(s, secret) {
				out = append(out, apps[i].App)
				break
			}
		}
	}
	return out
}

// published reads a published app-credentials Secret; nil when it is not one
// (wrong type or no app named).
func published(s *corev1.Secret) *AppCredentials {
	a := s.Annotations
	if s.Type != igv1.AppCredentialsSecretType || a[igv1.AnnotationAppName] == "" {
		return nil
	}
	app := AppKey{Kind: a[igv1.AnnotationAppKind], Namespace: a[igv1.AnnotationAppNamespace], Name: a[igv1.AnnotationAppName]}
	switch app.Kind {
	case igv1.KindClusterInstagramApp:
		app.Namespace = ""
	case igv1.KindInstagramApp:
		if app.Namespace == "" {
			return nil
		}
	default:
		return nil
	}
	c := &AppCredentials{App: app, VerifyToken: s.Data[igv1.AppSecretKeyVerifyToken]}
	for _, k := range []string{igv1.AppSecretKeyAppSecret, igv1.AppSecretKeyPreviousAppSecret} {
		if v := s.Data[k]; len(v) > 0 {
			c.Secrets = append(c.Secrets, v)
		}
	}
	return c
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
