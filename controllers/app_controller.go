package controllers

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/conditions"
	"github.com/leadchat/instagram-operator/internal/names"
)

// Paths the webhook receiver serves under --public-url.
const (
	WebhookPath  = igv1.WebhookPath
	CallbackPath = igv1.CallbackPath
)

// appSecretRefIndex indexes apps by the name of the Secret they reference.
const appSecretRefIndex = "spec.secretRef.name"

// appMissingSecretRetry is how often an app whose Secret is missing looks
// again: a Secret without the watch label is invisible to the cache, so its
// creation produces no event.
const appMissingSecretRetry = time.Minute

// AppObject is what InstagramApp and ClusterInstagramApp have in common.
type AppObject interface {
	client.Object
	GetConditions() []metav1.Condition
	SetConditions([]metav1.Condition)
	AppSpec() *igv1.AppSpec
	AppStatus() *igv1.AppStatus
}

// AppReconciler checks an app's credentials: the referenced Secret exists and
// holds appSecret and verifyToken. It publishes the URLs to paste into the
// Meta dashboard, and copies the keys the webhook receiver needs into a
// Secret of the operator's namespace (names.AppCredentialsSecretName): the
// receiver reads Secrets of that namespace only, so it has no access to the
// tenant namespaces where InstagramApp Secrets and channel tokens live. One
// reconciler type serves both kinds.
type AppReconciler struct {
	client.Client
	// APIReader reads a referenced Secret that is not yet labelled for the
	// cache.
	APIReader client.Reader
	// Cluster is true for ClusterInstagramApp.
	Cluster bool
	// ClusterResourceNamespace holds the Secrets of ClusterInstagramApps and
	// the app credentials published for the receiver.
	ClusterResourceNamespace string
	// PublicURL is the receiver's external base URL (--public-url).
	PublicURL string
	// Recorder is mgr.GetEventRecorder("instagramapp-controller"); nil
	// records no Events.
	Recorder events.EventRecorder
}

// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramapps;clusterinstagramapps,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramapps/status;clusterinstagramapps/status,verbs=get;patch
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramapps/finalizers;clusterinstagramapps/finalizers,verbs=update
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramchannels,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;patch;create;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

func (r *AppReconciler) newObject() AppObject {
	if r.Cluster {
		return &igv1.ClusterInstagramApp{}
	}
	return &igv1.InstagramApp{}
}

// secretNamespace is where the app's Secret lives.
func (r *AppReconciler) secretNamespace(app AppObject) string {
	if r.Cluster {
		return r.ClusterResourceNamespace
	}
	return app.GetNamespace()
}

// Reconcile follows the shape of every reconciler here: get, remember the
// original, handle deletion, add the finalizer, run the steps, patch status
// once if it changed.
func (r *AppReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	app := r.newObject()
	if err := r.Get(ctx, req.NamespacedName, app); err != nil {
		if apierrors.IsNotFound(err) {
			// Gone: so are its published credentials. This also sweeps what
			// an app deleted while the manager was down left behind: every
			// published Secret maps back to its app when the cache starts.
			return ctrl.Result{}, r.unpublish(ctx, req.Namespace, req.Name)
		}
		return ctrl.Result{}, err
	}
	original := app.DeepCopyObject().(AppObject)
	defer func() {
		if equality.Semantic.DeepEqual(original.AppStatus(), app.AppStatus()) {
			return
		}
		if err := r.Status().Patch(ctx, app, client.MergeFrom(original)); client.IgnoreNotFound(err) != nil && retErr == nil {
			retErr = fmt.Errorf("patch status: %w", err)
		}
	}()

	status := app.AppStatus()
	status.ObservedGeneration = app.GetGeneration()
	if !app.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, r.finalize(ctx, app, original)
	}
	if !controllerutil.ContainsFinalizer(app, igv1.AppFinalizer) {
		patch := client.MergeFromWithOptions(app.DeepCopyObject().(AppObject), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(app, igv1.AppFinalizer)
		if err := r.Patch(ctx, app, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
		// The patch answer carries the stored status; compare against it.
		original = app.DeepCopyObject().(AppObject)
		status = app.AppStatus()
		status.ObservedGeneration = app.GetGeneration()
	}
	status.WebhookURL, status.RedirectURL = PublicURLs(r.PublicURL, r.kind(), app.GetNamespace(), app.GetName())

	secret, reason, msg, err := r.checkSecret(ctx, app)
	if err == nil {
		if reason == "" {
			err = r.publish(ctx, app, secret)
		} else {
			// Credentials that are gone or refused sign nothing any more.
			err = r.unpublish(ctx, app.GetNamespace(), app.GetName())
		}
	}
	if err != nil {
		markCondition(app, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonProgressing, "reading the app Secret: "+err.Error())
		return ctrl.Result{}, err
	}
	if reason == "" {
		reason, msg = CheckPublicURL(r.PublicURL)
	}
	if reason != "" {
		markCondition(app, igv1.ConditionReady, metav1.ConditionFalse, reason, msg)
		markCondition(app, igv1.ConditionStalled, metav1.ConditionTrue, reason, msg)
		meta.RemoveStatusCondition(&status.Conditions, igv1.ConditionReconciling)
		if reason == igv1.ReasonSecretNotFound {
			return ctrl.Result{RequeueAfter: appMissingSecretRetry}, nil
		}
		return ctrl.Result{}, nil
	}
	markCondition(app, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady, "app credentials are present")
	meta.RemoveStatusCondition(&status.Conditions, igv1.ConditionStalled)
	meta.RemoveStatusCondition(&status.Conditions, igv1.ConditionReconciling)
	log.FromContext(ctx).V(1).Info("app credentials checked", "app", app.GetName())
	return ctrl.Result{}, nil
}

// finalize lets a deleted app go once no channel uses it. A channel's own
// finalizer needs the app to unsubscribe the account's webhooks, and every
// channel of a deleted app would drop to AppNotFound at once; so deletion
// waits, says which channels hold it (Reconciling=True with reason InUse,
// and a Warning Event), and completes when the last of them is gone.
func (r *AppReconciler) finalize(ctx context.Context, app, original AppObject) error {
	if !controllerutil.ContainsFinalizer(app, igv1.AppFinalizer) {
		return nil
	}
	users, err := r.channelsUsing(ctx, app)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		msg := fmt.Sprintf("deletion waits for %d channel(s) that use this app: %s; delete them first, or point their spec.appRef elsewhere", len(users), strings.Join(users, ", "))
		// Ready stays as it is: the channels keep working, and their own
		// finalizers need a Ready app to unsubscribe.
		previous := meta.FindStatusCondition(original.GetConditions(), igv1.ConditionReconciling)
		markCondition(app, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonInUse, msg)
		if r.Recorder != nil && (previous == nil || previous.Reason != igv1.ReasonInUse || previous.Message != msg) {
			r.Recorder.Eventf(app, nil, corev1.EventTypeWarning, igv1.EventDeletionBlocked, "Delete", "%s", msg)
		}
		log.FromContext(ctx).Info("app deletion waits for its channels", "app", app.GetName(), "channels", users)
		return nil
	}
	// Its published credentials go first: once the finalizer is gone the
	// app is too (a crash in between is swept by the NotFound path).
	if err := r.unpublish(ctx, app.GetNamespace(), app.GetName()); err != nil {
		return err
	}
	patch := client.MergeFromWithOptions(app.DeepCopyObject().(AppObject), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(app, igv1.AppFinalizer)
	if err := r.Patch(ctx, app, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("remove finalizer: %w", err)
	}
	return nil
}

// channelsUsing names (namespace/name) the channels whose spec.appRef is
// this app, sorted. Deletion is rare, so this reads the channel list rather
// than keeping an index.
func (r *AppReconciler) channelsUsing(ctx context.Context, app AppObject) ([]string, error) {
	var list igv1.InstagramChannelList
	var opts []client.ListOption
	if !r.Cluster {
		opts = append(opts, client.InNamespace(app.GetNamespace()))
	}
	if err := r.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	var out []string
	for i := range list.Items {
		ch := &list.Items[i]
		if r.usesApp(ch, app.GetNamespace(), app.GetName()) {
			out = append(out, ch.Namespace+"/"+ch.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// usesApp says whether a channel's appRef names the app of this
// reconciler's kind.
func (r *AppReconciler) usesApp(ch *igv1.InstagramChannel, namespace, name string) bool {
	if ch.Spec.AppRef.Name != name {
		return false
	}
	if r.Cluster {
		return appKind(ch) == igv1.KindClusterInstagramApp
	}
	return appKind(ch) == igv1.KindInstagramApp && ch.Namespace == namespace
}

// CheckPublicURL returns PublicURLMissing while the manager has no usable
// --public-url: without it the app publishes no webhook and redirect URLs,
// and one on a documentation domain (example.com, RFC 2606) is the shipped
// placeholder, which Meta can never reach.
func CheckPublicURL(publicURL string) (reason, message string) {
	const fix = "set publicURL in the operator's settings ConfigMap (the manager's --public-url) to the receiver's external https base URL"
	if publicURL == "" {
		return igv1.ReasonPublicURLMissing, "the manager has no --public-url, so there is no webhook or redirect URL to give Meta: " + fix
	}
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" {
		return igv1.ReasonPublicURLMissing, fmt.Sprintf("--public-url %q is not an absolute URL: %s", publicURL, fix)
	}
	host := strings.ToLower(u.Hostname())
	for _, doc := range []string{"example.com", "example.net", "example.org"} {
		if host == doc || strings.HasSuffix(host, "."+doc) {
			return igv1.ReasonPublicURLMissing, fmt.Sprintf("--public-url %s is a documentation placeholder that Meta cannot reach: %s", publicURL, fix)
		}
	}
	return "", ""
}

// checkSecret returns the app's Secret, or a reason and message when it is
// not usable, or an error when it could not be read.
func (r *AppReconciler) checkSecret(ctx context.Context, app AppObject) (secret *corev1.Secret, reason, message string, err error) {
	ref := types.NamespacedName{Namespace: r.secretNamespace(app), Name: app.AppSpec().SecretRef.Name}
	secret, err = r.getAppSecret(ctx, ref)
	if apierrors.IsNotFound(err) {
		return nil, igv1.ReasonSecretNotFound, fmt.Sprintf("Secret %s not found", ref), nil
	}
	if err != nil {
		return nil, "", "", err
	}
	reason, message, err = CheckAppSecret(secret)
	return secret, reason, message, err
}

// getAppSecret reads an app's Secret, labelling it for the cache unless it
// is refused anyway: a refused Secret must not be pulled into any cache.
func (r *AppReconciler) getAppSecret(ctx context.Context, ref types.NamespacedName) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := r.Get(ctx, ref, secret)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, ref, secret)
	}
	if err != nil {
		return nil, err
	}
	if refusedAsAppSecret(secret) {
		return secret, nil
	}
	return GetWatchedSecret(ctx, r.Client, r.APIReader, ref)
}

// CheckAppSecret returns a reason and message when an app Secret lacks a
// needed key or is not an app Secret at all; both empty when it is usable.
// Key names only, never values.
//
// A channel's token Secret (and the Secrets the operator itself writes) are
// refused whatever keys they hold: an app naming one would otherwise have
// its content copied next to the receiver, the one internet-facing part.
func CheckAppSecret(secret *corev1.Secret) (reason, message string, err error) {
	if refusedAsAppSecret(secret) {
		return igv1.ReasonSecretNotAppCredentials, fmt.Sprintf("Secret %s/%s is a Secret the operator writes (a channel token or a hand-over), not app credentials", secret.Namespace, secret.Name), nil
	}
	var missing []string
	for _, key := range []string{igv1.AppSecretKeyAppSecret, igv1.AppSecretKeyVerifyToken} {
		if len(secret.Data[key]) == 0 {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		return igv1.ReasonSecretKeyMissing, fmt.Sprintf("Secret %s/%s lacks key(s) %s", secret.Namespace, secret.Name, strings.Join(missing, ", ")), nil
	}
	return "", "", nil
}

// refusedAsAppSecret: the operator's own Secret types, and anything labelled
// as a channel's (token and login Secrets carry the channel label).
func refusedAsAppSecret(secret *corev1.Secret) bool {
	switch secret.Type {
	case igv1.TokenSecretType, igv1.LoginSecretType, igv1.AppCredentialsSecretType, corev1.SecretTypeServiceAccountToken:
		return true
	}
	_, channel := secret.Labels[igv1.LabelChannel]
	return channel
}

func (r *AppReconciler) kind() string {
	if r.Cluster {
		return igv1.KindClusterInstagramApp
	}
	return igv1.KindInstagramApp
}

// publishedKey is where the receiver's copy of an app's credentials lives.
func (r *AppReconciler) publishedKey(namespace, name string) types.NamespacedName {
	if r.Cluster {
		namespace = ""
	}
	return types.NamespacedName{
		Namespace: r.ClusterResourceNamespace,
		Name:      names.AppCredentialsSecretName(r.kind(), namespace, name),
	}
}

// publish writes the receiver's copy of the app's credentials: the keys a
// signature check and the handshake need, nothing else of the source
// Secret. Written only when it differs, so a quiet app makes no write.
func (r *AppReconciler) publish(ctx context.Context, app AppObject, source *corev1.Secret) error {
	key := r.publishedKey(app.GetNamespace(), app.GetName())
	data := map[string][]byte{}
	for _, k := range []string{igv1.AppSecretKeyAppSecret, igv1.AppSecretKeyPreviousAppSecret, igv1.AppSecretKeyVerifyToken} {
		if v := source.Data[k]; len(v) > 0 {
			data[k] = v
		}
	}
	appNamespace := app.GetNamespace()
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace,
			Name:      key.Name,
			Labels: map[string]string{
				igv1.LabelWatch:          "true",
				igv1.LabelAppCredentials: "true",
			},
			Annotations: map[string]string{
				igv1.AnnotationAppKind:      r.kind(),
				igv1.AnnotationAppNamespace: appNamespace,
				igv1.AnnotationAppName:      app.GetName(),
			},
		},
		Type: igv1.AppCredentialsSecretType,
		Data: data,
	}
	if r.Cluster {
		// A namespaced object may have a cluster-scoped owner: the copy goes
		// with the app even if the manager misses the deletion. (An
		// InstagramApp lives in another namespace, which an owner reference
		// cannot name; reconciling its absence removes the copy.)
		want.OwnerReferences = []metav1.OwnerReference{{
			APIVersion:         igv1.GroupVersion.String(),
			Kind:               igv1.KindClusterInstagramApp,
			Name:               app.GetName(),
			UID:                app.GetUID(),
			BlockOwnerDeletion: ptr.To(false),
		}}
	}
	existing := &corev1.Secret{}
	err := r.Get(ctx, key, existing)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, existing)
	}
	if apierrors.IsNotFound(err) {
		if err := r.Create(ctx, want); err != nil {
			return fmt.Errorf("publish credentials to Secret %s: %w", key, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get published credentials %s: %w", key, err)
	}
	if existing.Type != igv1.AppCredentialsSecretType {
		return fmt.Errorf("secret %s exists and is not of type %s; the operator will not overwrite it", key, igv1.AppCredentialsSecretType)
	}
	if equality.Semantic.DeepEqual(existing.Data, want.Data) &&
		subsetOf(want.Labels, existing.Labels) && subsetOf(want.Annotations, existing.Annotations) &&
		equality.Semantic.DeepEqual(existing.OwnerReferences, want.OwnerReferences) {
		return nil
	}
	patch := client.MergeFrom(existing.DeepCopy())
	existing.Data = want.Data
	existing.OwnerReferences = want.OwnerReferences
	if existing.Labels == nil {
		existing.Labels = map[string]string{}
	}
	maps.Copy(existing.Labels, want.Labels)
	if existing.Annotations == nil {
		existing.Annotations = map[string]string{}
	}
	maps.Copy(existing.Annotations, want.Annotations)
	if err := r.Patch(ctx, existing, patch); err != nil {
		return fmt.Errorf("update published credentials %s: %w", key, err)
	}
	return nil
}

// unpublish deletes the receiver's copy of an app's credentials, if any.
func (r *AppReconciler) unpublish(ctx context.Context, namespace, name string) error {
	key := r.publishedKey(namespace, name)
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	if err := r.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete published credentials %s: %w", key, err)
	}
	return nil
}

func subsetOf(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// PublicURLs derives an app's webhook callback URL (its own path, see
// names.AppWebhookPath) and the OAuth redirect URL from the receiver's
// public base URL; both empty when it is not set.
func PublicURLs(publicURL, kind, namespace, name string) (webhookURL, redirectURL string) {
	if publicURL == "" {
		return "", ""
	}
	u, err := url.Parse(publicURL)
	if err != nil {
		return "", ""
	}
	base := strings.TrimSuffix(u.String(), "/")
	return base + names.AppWebhookPath(kind, namespace, name), base + CallbackPath
}

// GetWatchedSecret reads a Secret the operator references. The cache only
// holds Secrets labelled instagram.leadchat.io/watch=true, so a Secret that
// is not there yet is read once through the API server and labelled, after
// which its changes arrive through the watch. roleLabels are further labels
// (value "true") the Secret must carry, such as the app-credentials label
// that lets the webhook receiver cache app Secrets and nothing else.
func GetWatchedSecret(ctx context.Context, cached client.Client, live client.Reader, key types.NamespacedName, roleLabels ...string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := cached.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) {
		err = live.Get(ctx, key, secret)
	}
	if err != nil {
		return nil, err
	}
	want := append([]string{igv1.LabelWatch}, roleLabels...)
	var missing []string
	for _, l := range want {
		if secret.Labels[l] != "true" {
			missing = append(missing, l)
		}
	}
	if len(missing) == 0 {
		return secret, nil
	}
	patch := client.MergeFrom(secret.DeepCopy())
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	for _, l := range missing {
		secret.Labels[l] = "true"
	}
	if err := cached.Patch(ctx, secret, patch); err != nil {
		return nil, fmt.Errorf("label Secret %s for watching: %w", key, err)
	}
	return secret, nil
}

// markCondition sets one condition with the object's generation.
func markCondition(obj interface {
	client.Object
	GetConditions() []metav1.Condition
	SetConditions([]metav1.Condition)
}, condType string, status metav1.ConditionStatus, reason, message string) {
	conds := obj.GetConditions()
	conditions.Set(&conds, obj.GetGeneration(), condType, status, reason, message, time.Time{})
	obj.SetConditions(conds)
}

// SetupWithManager registers the reconciler, its index and its watches.
func (r *AppReconciler) SetupWithManager(mgr ctrl.Manager) error {
	obj := r.newObject()
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), obj, appSecretRefIndex, func(o client.Object) []string {
		return []string{o.(AppObject).AppSpec().SecretRef.Name}
	}); err != nil {
		return fmt.Errorf("index apps by secret: %w", err)
	}
	name := "instagramapp"
	if r.Cluster {
		name = "clusterinstagramapp"
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(name).
		For(obj, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			// Deletion must reach finalize even where it bumps no generation.
			predicate.NewPredicateFuncs(func(o client.Object) bool { return !o.GetDeletionTimestamp().IsZero() }),
		))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.appsForSecret)).
		// A deleted app waits for its channels: each channel's change
		// (its deletion above all) wakes the app it names.
		Watches(&igv1.InstagramChannel{}, handler.EnqueueRequestsFromMapFunc(r.appForChannel), builder.WithPredicates(channelLeftAppPredicate())).
		Complete(r)
}

// channelLeftAppPredicate lets through the channel events after which an
// app may no longer be in use: deletion (requested or done) and a changed
// spec.appRef. Status updates, by far the most frequent, do not wake apps.
func channelLeftAppPredicate() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldCh, ok1 := e.ObjectOld.(*igv1.InstagramChannel)
			newCh, ok2 := e.ObjectNew.(*igv1.InstagramChannel)
			if !ok1 || !ok2 {
				return true
			}
			return oldCh.Spec.AppRef != newCh.Spec.AppRef ||
				oldCh.DeletionTimestamp.IsZero() != newCh.DeletionTimestamp.IsZero()
		},
	}
}

// appForChannel maps a channel to the app of this reconciler's kind that
// its spec.appRef names.
func (r *AppReconciler) appForChannel(_ context.Context, o client.Object) []reconcile.Request {
	ch, ok := o.(*igv1.InstagramChannel)
	if !ok || ch.Spec.AppRef.Name == "" {
		return nil
	}
	switch kind := appKind(ch); {
	case r.Cluster && kind == igv1.KindClusterInstagramApp:
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: ch.Spec.AppRef.Name}}}
	case !r.Cluster && kind == igv1.KindInstagramApp:
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ch.Namespace, Name: ch.Spec.AppRef.Name}}}
	}
	return nil
}

// appsForSecret maps a watched Secret to the apps that reference it.
func (r *AppReconciler) appsForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	if o.GetNamespace() == r.ClusterResourceNamespace && o.GetAnnotations()[igv1.AnnotationAppKind] != "" {
		// A published copy: its app, which may be gone (then the copy goes).
		a := o.GetAnnotations()
		if a[igv1.AnnotationAppKind] != r.kind() {
			return nil
		}
		req := reconcile.Request{NamespacedName: types.NamespacedName{Name: a[igv1.AnnotationAppName]}}
		if !r.Cluster {
			req.Namespace = a[igv1.AnnotationAppNamespace]
		}
		return []reconcile.Request{req}
	}
	opts := []client.ListOption{client.MatchingFields{appSecretRefIndex: o.GetName()}}
	var reqs []reconcile.Request
	if r.Cluster {
		if o.GetNamespace() != r.ClusterResourceNamespace {
			return nil
		}
		var list igv1.ClusterInstagramAppList
		if err := r.List(ctx, &list, opts...); err != nil {
			return nil
		}
		for _, a := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: a.Name}})
		}
		return reqs
	}
	var list igv1.InstagramAppList
	if err := r.List(ctx, &list, append(opts, client.InNamespace(o.GetNamespace()))...); err != nil {
		return nil
	}
	for _, a := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: a.Namespace, Name: a.Name}})
	}
	return reqs
}
