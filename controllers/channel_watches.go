package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// appKind is spec.appRef.kind with its default applied.
func appKind(ch *igv1.InstagramChannel) string {
	if ch.Spec.AppRef.Kind == "" {
		return igv1.KindInstagramApp
	}
	return ch.Spec.AppRef.Kind
}

func appRefKey(kind, name string) string { return kind + "/" + name }

// requestSet collects reconcile requests without duplicates.
type requestSet struct {
	seen map[types.NamespacedName]bool
	reqs []reconcile.Request
}

func (s *requestSet) add(key types.NamespacedName) {
	if s.seen == nil {
		s.seen = map[types.NamespacedName]bool{}
	}
	if !s.seen[key] {
		s.seen[key] = true
		s.reqs = append(s.reqs, reconcile.Request{NamespacedName: key})
	}
}

func (s *requestSet) addChannels(list *igv1.InstagramChannelList) {
	for i := range list.Items {
		s.add(client.ObjectKeyFromObject(&list.Items[i]))
	}
}

// channelsForApp maps an InstagramApp or ClusterInstagramApp to the channels
// that use it.
func (r *InstagramChannelReconciler) channelsForApp(ctx context.Context, o client.Object) []reconcile.Request {
	var s requestSet
	r.addChannelsOfApp(ctx, &s, o)
	return s.reqs
}

func (r *InstagramChannelReconciler) addChannelsOfApp(ctx context.Context, s *requestSet, o client.Object) {
	var list igv1.InstagramChannelList
	opts := []client.ListOption{}
	switch o.(type) {
	case *igv1.ClusterInstagramApp:
		opts = append(opts, client.MatchingFields{ChannelAppRefIndex: appRefKey(igv1.KindClusterInstagramApp, o.GetName())})
	default:
		opts = append(opts, client.InNamespace(o.GetNamespace()),
			client.MatchingFields{ChannelAppRefIndex: appRefKey(igv1.KindInstagramApp, o.GetName())})
	}
	if err := r.List(ctx, &list, opts...); err != nil {
		log.FromContext(ctx).Error(err, "list channels of app", "app", o.GetName())
		return
	}
	s.addChannels(&list)
}

// channelsForSecret maps a watched Secret to the channels that manage it
// (token Secrets carry the channel label, login Secrets name it in annotations), reference it as their
// initial token, or use an app whose Secret it is.
func (r *InstagramChannelReconciler) channelsForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var s requestSet
	logger := log.FromContext(ctx)
	if name := o.GetLabels()[igv1.LabelChannel]; name != "" {
		s.add(types.NamespacedName{Namespace: o.GetNamespace(), Name: name})
	}
	if ch, ok := loginSecretChannel(o); ok && o.GetNamespace() == r.Options.ClusterResourceNamespace {
		s.add(ch)
	}

	var byInitial igv1.InstagramChannelList
	if err := r.List(ctx, &byInitial, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{ChannelInitialSecretIndex: o.GetName()}); err != nil {
		logger.Error(err, "list channels by initial token Secret")
	}
	s.addChannels(&byInitial)

	// Apps are few; listing them avoids depending on the app controller's
	// index.
	var apps igv1.InstagramAppList
	if err := r.List(ctx, &apps, client.InNamespace(o.GetNamespace())); err != nil {
		logger.Error(err, "list apps")
	}
	for i := range apps.Items {
		if apps.Items[i].Spec.SecretRef.Name == o.GetName() {
			r.addChannelsOfApp(ctx, &s, &apps.Items[i])
		}
	}
	if o.GetNamespace() == r.Options.ClusterResourceNamespace {
		var capps igv1.ClusterInstagramAppList
		if err := r.List(ctx, &capps); err != nil {
			logger.Error(err, "list cluster apps")
		}
		for i := range capps.Items {
			if capps.Items[i].Spec.SecretRef.Name == o.GetName() {
				r.addChannelsOfApp(ctx, &s, &capps.Items[i])
			}
		}
	}
	return s.reqs
}

// channelsForNamespace maps a Namespace whose labels changed to its channels
// that use a ClusterInstagramApp (its namespaceSelector may now differ).
func (r *InstagramChannelReconciler) channelsForNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	ns, ok := o.(*corev1.Namespace)
	if !ok {
		return nil
	}
	var list igv1.InstagramChannelList
	if err := r.List(ctx, &list, client.InNamespace(ns.Name)); err != nil {
		log.FromContext(ctx).Error(err, "list channels of namespace", "namespace", ns.Name)
		return nil
	}
	var s requestSet
	for i := range list.Items {
		if appKind(&list.Items[i]) == igv1.KindClusterInstagramApp {
			s.add(client.ObjectKeyFromObject(&list.Items[i]))
		}
	}
	return s.reqs
}

// channelsSharingAccount maps a channel to the other channels serving the
// same account, so a duplicate takes over when the owner goes away.
func (r *InstagramChannelReconciler) channelsSharingAccount(ctx context.Context, o client.Object) []reconcile.Request {
	ch, ok := o.(*igv1.InstagramChannel)
	if !ok || ch.Status.Account == nil || ch.Status.Account.UserID == "" {
		return nil
	}
	var list igv1.InstagramChannelList
	if err := r.List(ctx, &list, client.MatchingFields{ChannelUserIDIndex: ch.Status.Account.UserID}); err != nil {
		log.FromContext(ctx).Error(err, "list channels by account")
		return nil
	}
	var s requestSet
	for i := range list.Items {
		if list.Items[i].UID != ch.UID {
			s.add(client.ObjectKeyFromObject(&list.Items[i]))
		}
	}
	return s.reqs
}

// appChangedPredicate lets through the app events a channel acts on: the
// app's spec or status changed, or it was created or deleted. Metadata
// alone (the app controller adding its finalizer, labels) changes nothing
// for a channel and would only reconcile every channel of the app again.
func appChangedPredicate() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldApp, ok1 := e.ObjectOld.(AppObject)
			newApp, ok2 := e.ObjectNew.(AppObject)
			if !ok1 || !ok2 {
				return true
			}
			return !equality.Semantic.DeepEqual(oldApp.AppSpec(), newApp.AppSpec()) ||
				!equality.Semantic.DeepEqual(oldApp.AppStatus(), newApp.AppStatus()) ||
				oldApp.GetDeletionTimestamp().IsZero() != newApp.GetDeletionTimestamp().IsZero()
		},
	}
}

// accountChangedPredicate lets through the channel events that can change
// who owns an account: deletion, and a changed account or Ready reason.
func accountChangedPredicate() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldCh, ok1 := e.ObjectOld.(*igv1.InstagramChannel)
			newCh, ok2 := e.ObjectNew.(*igv1.InstagramChannel)
			if !ok1 || !ok2 {
				return false
			}
			return accountUserID(oldCh) != accountUserID(newCh) ||
				oldCh.DeletionTimestamp.IsZero() != newCh.DeletionTimestamp.IsZero()
		},
	}
}

func accountUserID(ch *igv1.InstagramChannel) string {
	if ch.Status.Account == nil {
		return ""
	}
	return ch.Status.Account.UserID
}

// tokenRefusedPredicate passes a channel update that closed the token gate
// (Authorized turned False/TokenInvalid): the message controller does that
// when a send is answered 190, and the channel then publishes its login
// link at once. The channel's own refusals pass too; that reconcile is
// gated and makes no Instagram call.
func tokenRefusedPredicate() predicate.Funcs {
	refused := func(o client.Object) bool {
		ch, ok := o.(*igv1.InstagramChannel)
		if !ok {
			return false
		}
		c := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionAuthorized)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == igv1.ReasonTokenInvalid
	}
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		UpdateFunc:  func(e event.UpdateEvent) bool { return !refused(e.ObjectOld) && refused(e.ObjectNew) },
	}
}
