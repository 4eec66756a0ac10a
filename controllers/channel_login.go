package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

// The login hand-over. The receiver may not touch tenant namespaces, so it
// hands a completed Business Login to the manager through a Secret of type
// igv1.LoginSecretType in the operator's namespace
// (Options.ClusterResourceNamespace), named names.LoginSecretName and
// annotated with the channel's namespace, name and UID. An owner reference
// cannot cross namespaces, so the manager deletes the Secret once it has
// consumed it, and the channel's finalizer deletes one left behind.

// loginSecretFor reports whether a login Secret is for ch: the right type,
// and annotations naming ch. A channel deleted and created again under the
// same name has another UID, so a login meant for its predecessor is not
// taken.
func loginSecretFor(s *corev1.Secret, ch *igv1.InstagramChannel) bool {
	a := s.Annotations
	if s.Type != igv1.LoginSecretType || a[igv1.AnnotationChannelNamespace] != ch.Namespace || a[igv1.AnnotationChannelName] != ch.Name {
		return false
	}
	uid, ok := a[igv1.AnnotationChannelUID]
	return !ok || types.UID(uid) == ch.UID
}

// loginSecretKey is where the receiver hands over a login for ch.
func (r *InstagramChannelReconciler) loginSecretKey(ch *igv1.InstagramChannel) types.NamespacedName {
	return types.NamespacedName{Namespace: r.Options.ClusterResourceNamespace, Name: names.LoginSecretName(ch.Namespace, ch.Name)}
}

// deleteLeftoverLogin removes a login Secret of ch that was never consumed
// (the channel goes away between the callback and the next reconcile).
func (r *InstagramChannelReconciler) deleteLeftoverLogin(ctx context.Context, ch *igv1.InstagramChannel) error {
	key := r.loginSecretKey(ch)
	s := &corev1.Secret{}
	if err := r.Get(ctx, key, s); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !loginSecretFor(s, ch) {
		return nil
	}
	return r.deleteLoginSecret(ctx, s)
}

// loginSecretChannel is the channel a login Secret is for, if it is one.
func loginSecretChannel(o client.Object) (types.NamespacedName, bool) {
	s, ok := o.(*corev1.Secret)
	if !ok || s.Type != igv1.LoginSecretType {
		return types.NamespacedName{}, false
	}
	ns, name := s.Annotations[igv1.AnnotationChannelNamespace], s.Annotations[igv1.AnnotationChannelName]
	if ns == "" || name == "" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: ns, Name: name}, true
}

// sweepLogin deletes the login Secret handed over for a channel that no
// longer exists.
func (r *InstagramChannelReconciler) sweepLogin(ctx context.Context, channel types.NamespacedName) error {
	s := &corev1.Secret{}
	key := types.NamespacedName{Namespace: r.Options.ClusterResourceNamespace, Name: names.LoginSecretName(channel.Namespace, channel.Name)}
	if err := r.Get(ctx, key, s); err != nil {
		return client.IgnoreNotFound(err)
	}
	if got, ok := loginSecretChannel(s); !ok || got != channel {
		return nil
	}
	return r.deleteLoginSecret(ctx, s)
}
