package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// resolvedApp is what a channel needs from its app. appSecret is a
// credential: it never leaves this struct except towards Instagram.
type resolvedApp struct {
	kind      string
	name      string
	appID     string
	appSecret string
	// redirectURL is the app's published OAuth redirect URL.
	redirectURL string
}

// reconcileApp resolves spec.appRef: the app must exist, be Ready, admit the
// channel's namespace, and its Secret must hold appSecret.
func (r *InstagramChannelReconciler) reconcileApp(ctx context.Context, run *channelRun) (*halt, error) {
	app, h, err := r.resolveApp(ctx, run.ch)
	if h != nil || err != nil {
		return h, err
	}
	run.app = app
	run.api = r.Instagram.ForApp(app.appID)
	return nil, nil
}

// resolveApp is shared by reconcile and finalize.
func (r *InstagramChannelReconciler) resolveApp(ctx context.Context, ch *igv1.InstagramChannel) (*resolvedApp, *halt, error) {
	kind, name := appKind(ch), ch.Spec.AppRef.Name
	var (
		obj             AppObject
		secretNamespace string
	)
	switch kind {
	case igv1.KindClusterInstagramApp:
		obj = &igv1.ClusterInstagramApp{}
		secretNamespace = r.Options.ClusterResourceNamespace
	default:
		obj = &igv1.InstagramApp{}
		secretNamespace = ch.Namespace
	}
	key := types.NamespacedName{Name: name}
	if kind == igv1.KindInstagramApp {
		key.Namespace = ch.Namespace
	}
	if err := r.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			// Not stalled: with Argo CD or kustomize the app may simply
			// arrive after the channel; its creation triggers a reconcile.
			return nil, &halt{reason: igv1.ReasonAppNotFound, message: fmt.Sprintf("%s %q not found", kind, name)}, nil
		}
		return nil, nil, fmt.Errorf("get %s %s: %w", kind, name, err)
	}

	if kind == igv1.KindClusterInstagramApp {
		h, err := r.checkNamespaceAllowed(ctx, ch.Namespace, obj.AppSpec().NamespaceSelector, name)
		if h != nil || err != nil {
			return nil, h, err
		}
	}

	ready := meta.FindStatusCondition(obj.GetConditions(), igv1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue {
		msg := fmt.Sprintf("%s %q is not Ready", kind, name)
		if ready != nil && ready.Message != "" {
			msg += ": " + ready.Message
		}
		// The app controller marks missing credentials Stalled: then so is
		// the channel. Otherwise the app is still being checked.
		stalled := meta.IsStatusConditionTrue(obj.GetConditions(), igv1.ConditionStalled)
		return nil, &halt{reason: igv1.ReasonAppNotReady, message: msg, stalled: stalled}, nil
	}

	secretKey := types.NamespacedName{Namespace: secretNamespace, Name: obj.AppSpec().SecretRef.Name}
	secret, err := GetWatchedSecret(ctx, r.Client, r.APIReader, secretKey)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &halt{reason: igv1.ReasonAppNotReady, message: fmt.Sprintf("Secret %s of %s %q not found", secretKey, kind, name)}, nil
		}
		return nil, nil, fmt.Errorf("get app Secret: %w", err)
	}
	appSecret := string(secret.Data[igv1.AppSecretKeyAppSecret])
	if appSecret == "" {
		return nil, &halt{
			reason:  igv1.ReasonAppCredentialsInvalid,
			message: fmt.Sprintf("Secret %s of %s %q lacks key %s", secretKey, kind, name, igv1.AppSecretKeyAppSecret),
			stalled: true,
		}, nil
	}
	return &resolvedApp{
		kind:        kind,
		name:        name,
		appID:       obj.AppSpec().AppID,
		appSecret:   appSecret,
		redirectURL: obj.AppStatus().RedirectURL,
	}, nil, nil
}

// checkNamespaceAllowed applies a ClusterInstagramApp's namespaceSelector to
// the labels of the channel's namespace; nil or empty admits every namespace.
func (r *InstagramChannelReconciler) checkNamespaceAllowed(ctx context.Context, namespace string, sel *metav1.LabelSelector, appName string) (*halt, error) {
	if sel == nil {
		return nil, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return &halt{
			reason:  igv1.ReasonInvalidNamespaceFilter,
			message: fmt.Sprintf("ClusterInstagramApp %q has an invalid namespaceSelector: %v", appName, err),
			stalled: true,
		}, nil
	}
	if selector.Empty() {
		return nil, nil
	}
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		return nil, fmt.Errorf("get namespace %s: %w", namespace, err)
	}
	if !selector.Matches(labels.Set(ns.Labels)) {
		return &halt{
			reason:  igv1.ReasonNamespaceNotAllowed,
			message: fmt.Sprintf("ClusterInstagramApp %q does not admit namespace %q (namespaceSelector %s)", appName, namespace, selector.String()),
			stalled: true,
		}, nil
	}
	return nil, nil
}
