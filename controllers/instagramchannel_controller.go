package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/conditions"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

// InstagramClients hands out the Instagram API of one Meta app;
// *instagram.Clients implements it, tests may inject their own.
type InstagramClients interface {
	ForApp(appID string) instagram.API
}

// ChannelOptions are the manager flags the channel controller uses.
type ChannelOptions struct {
	// TokenMinRefreshAge is the minimum age of a token before Instagram
	// accepts its refresh (--token-min-refresh-age, default 24h).
	TokenMinRefreshAge time.Duration
	// ClusterResourceNamespace holds the Secrets of ClusterInstagramApps.
	ClusterResourceNamespace string
	// ResyncInterval is how often a healthy channel compares its webhook
	// subscription with Instagram's view (default 10m, with jitter).
	ResyncInterval time.Duration
	// PublicURL is the receiver's external base URL (--public-url).
	PublicURL string
	// HashKey keys the fingerprint of initial token Secrets in status
	// (LoadOrCreateHashKey).
	HashKey []byte
}

// Defaults of ChannelOptions.
const (
	DefaultTokenMinRefreshAge = 24 * time.Hour
	DefaultResyncInterval     = 10 * time.Minute
)

func (r *InstagramChannelReconciler) opts() ChannelOptions { return r.Options.withDefaults() }

func (o ChannelOptions) withDefaults() ChannelOptions {
	if o.TokenMinRefreshAge <= 0 {
		o.TokenMinRefreshAge = DefaultTokenMinRefreshAge
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = DefaultResyncInterval
	}
	return o
}

// InstagramChannelReconciler connects one Instagram professional account per
// InstagramChannel: it resolves the app, adopts or exchanges a token, keeps
// it refreshed in the managed Secret, discovers the account, keeps the
// webhook subscription in place, and unsubscribes on delete.
type InstagramChannelReconciler struct {
	client.Client
	// APIReader reads referenced Secrets that are not labelled for the
	// cache yet.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	// Recorder is mgr.GetEventRecorder("instagramchannel-controller").
	Recorder  events.EventRecorder
	Clock     clock.Clock
	Instagram InstagramClients
	// Authorizer publishes how a person authorizes a channel without a
	// token (Business Login). Nil: the channel only says it waits.
	Authorizer Authorizer
	Options    ChannelOptions

	// checkedAt remembers, per channel UID, when the webhook subscription
	// was last compared with Instagram's view. In memory on purpose: the
	// periodic check must not write status every interval; after a restart
	// each channel is simply checked once more.
	checkedAt sync.Map
	// checkFailures counts consecutive failed checks per channel UID, for
	// their backoff.
	checkFailures sync.Map
	// profileCheckedAt is checkedAt for the messenger profile.
	profileCheckedAt sync.Map
}

// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramchannels,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramchannels/status,verbs=get;patch
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramchannels/finalizers,verbs=update
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramapps;clusterinstagramapps,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// halt stops the chain of steps: the channel cannot go further for now.
type halt struct {
	reason  string
	message string
	// stalled: only a human can help; no requeue, Stalled=True. A stalled
	// halt with retryAt comes back then without retrying anything, to renew
	// the published login link.
	stalled bool
	// retryAt: when to try again (zero: wait for a watched change).
	retryAt time.Time
}

// channelRun is the state of one reconcile. The token lives here only, for
// the duration of the reconcile; it is never stored anywhere else than the
// managed Secret.
type channelRun struct {
	ch       *igv1.InstagramChannel
	original *igv1.InstagramChannel
	now      time.Time

	app *resolvedApp
	api instagram.API

	token       string
	tokenSecret *corev1.Secret
	// tokenChanged: a new token was obtained in this reconcile, so the
	// account is looked up again and the subscription renewed.
	tokenChanged bool
	// accountFresh: Me was called with the current token in this reconcile.
	accountFresh bool
	// forceCheck: the requestedAt annotation asks for a full check.
	forceCheck bool
	// wakeAt collects when the steps want to run again.
	wakeAt []time.Time
}

func (run *channelRun) wake(t time.Time) {
	if !t.IsZero() {
		run.wakeAt = append(run.wakeAt, t)
	}
}

// Reconcile follows the Flux shape: get, remember the original, defer the
// status patch, handle deletion, add the finalizer, honour suspend, run the
// ordered steps, summarise Ready.
func (r *InstagramChannelReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	ch := &igv1.InstagramChannel{}
	if err := r.Get(ctx, req.NamespacedName, ch); err != nil {
		if apierrors.IsNotFound(err) {
			// A login handed over for a channel that is gone (its
			// finalizer removed by hand) has no owner to take it along.
			return ctrl.Result{}, r.sweepLogin(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	// Token exchanges and refreshes are not idempotent: decide on the
	// stored status, not on a cache that may not have seen the last patch
	// yet. One read per reconcile; reconciles are rare.
	if err := r.APIReader.Get(ctx, req.NamespacedName, ch); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	logger := log.FromContext(ctx).WithValues("channel", ch.Name, "namespace", ch.Namespace)
	ctx = log.IntoContext(ctx, logger)

	run := &channelRun{ch: ch, original: ch.DeepCopy(), now: r.now()}
	defer func() {
		if err := r.patchStatus(ctx, run.original, ch); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	migrateStatus(&ch.Status)

	if !ch.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, run)
	}
	if !controllerutil.ContainsFinalizer(ch, igv1.ChannelFinalizer) {
		patch := client.MergeFromWithOptions(ch.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(ch, igv1.ChannelFinalizer)
		if err := r.Patch(ctx, ch, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
		// The patch answer carries the stored status; keep comparing against it.
		run.original = ch.DeepCopy()
	}

	ch.Status.ObservedGeneration = ch.Generation
	if requested, ok := ch.Annotations[igv1.AnnotationRequestedAt]; ok && requested != ch.Status.LastHandledReconcileAt {
		run.forceCheck = true
		ch.Status.LastHandledReconcileAt = requested
	}

	if ch.Spec.Suspend {
		r.setCondition(run, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonSuspended, "reconciliation is suspended: no Instagram calls, no refresh")
		meta.RemoveStatusCondition(&ch.Status.Conditions, igv1.ConditionReconciling)
		meta.RemoveStatusCondition(&ch.Status.Conditions, igv1.ConditionStalled)
		return ctrl.Result{}, nil
	}

	sinkHalt, err := r.reconcileSink(ctx, run)
	if err != nil {
		return r.summarise(ctx, run, nil, err)
	}
	h, err := r.runSteps(ctx, run)
	if h == nil && err == nil {
		h = sinkHalt
	}
	return r.summarise(ctx, run, h, err)
}

// runSteps runs the ordered steps; the first one that halts ends the chain.
func (r *InstagramChannelReconciler) runSteps(ctx context.Context, run *channelRun) (*halt, error) {
	steps := []func(context.Context, *channelRun) (*halt, error){
		r.reconcileApp,
		r.reconcileToken,
		r.reconcileScopes,
		r.reconcileAccount,
		r.reconcileSubscription,
		r.reconcileProfile,
	}
	for _, step := range steps {
		if h, err := step(ctx, run); h != nil || err != nil {
			return h, err
		}
	}
	return nil, nil
}

// summarise sets Ready, Reconciling and Stalled from the outcome of the
// steps, following kstatus: Reconciling while work goes on without a human,
// Stalled when only a human can help, Ready when everything works.
func (r *InstagramChannelReconciler) summarise(ctx context.Context, run *channelRun, h *halt, err error) (ctrl.Result, error) {
	ch := run.ch
	switch {
	case err != nil:
		// An API server error: controller-runtime retries with backoff.
		if meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady) == nil {
			r.setCondition(run, igv1.ConditionReady, metav1.ConditionUnknown, igv1.ReasonProgressing, "reconciliation in progress")
		}
		r.setCondition(run, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonProgressing, err.Error())
		meta.RemoveStatusCondition(&ch.Status.Conditions, igv1.ConditionStalled)
		return ctrl.Result{}, err
	case h != nil && h.stalled:
		r.setCondition(run, igv1.ConditionReady, metav1.ConditionFalse, h.reason, h.message)
		r.setCondition(run, igv1.ConditionStalled, metav1.ConditionTrue, h.reason, h.message)
		meta.RemoveStatusCondition(&ch.Status.Conditions, igv1.ConditionReconciling)
		log.FromContext(ctx).Info("channel needs a human", "reason", h.reason, "message", h.message)
		if h.retryAt.IsZero() {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{RequeueAfter: max(h.retryAt.Sub(run.now), time.Second)}, nil
	case h != nil:
		r.setCondition(run, igv1.ConditionReady, metav1.ConditionFalse, h.reason, h.message)
		r.setCondition(run, igv1.ConditionReconciling, metav1.ConditionTrue, h.reason, h.message)
		meta.RemoveStatusCondition(&ch.Status.Conditions, igv1.ConditionStalled)
		run.wake(h.retryAt)
	default:
		username := ""
		if ch.Status.Account != nil {
			username = ch.Status.Account.Username
		}
		msg := fmt.Sprintf("connected as @%s; webhooks subscribed", username)
		if ch.Status.Token != nil && ch.Status.Token.ExpiresAt != nil {
			msg += "; token valid until " + formatTime(ch.Status.Token.ExpiresAt.Time)
		} else {
			msg += "; token expiry not known yet"
		}
		r.setCondition(run, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady, msg)
		meta.RemoveStatusCondition(&ch.Status.Conditions, igv1.ConditionReconciling)
		meta.RemoveStatusCondition(&ch.Status.Conditions, igv1.ConditionStalled)
		// A periodic resync notices drift (a Secret edited by hand, a
		// subscription removed in the dashboard) even without events.
		run.wake(run.now.Add(ResyncAfter(r.opts().ResyncInterval, string(ch.UID))))
	}
	return ctrl.Result{RequeueAfter: r.requeueAfter(run)}, nil
}

// requeueAfter is the wait until the earliest wake-up any step asked for.
func (r *InstagramChannelReconciler) requeueAfter(run *channelRun) time.Duration {
	var next time.Time
	for _, t := range run.wakeAt {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if next.IsZero() {
		return 0
	}
	// A wake-up in the past still waits a second: never a hot loop.
	return max(next.Sub(run.now), time.Second)
}

// statusPatchAttempts bounds the re-applications of a status patch that
// lost an optimistic-lock race.
const statusPatchAttempts = 3

// patchStatus writes the status only when it changed, as a merge patch
// locked on the resourceVersion that was read. Another writer may change
// the channel's conditions meanwhile (the message controller stops a
// channel whose token Instagram refused on a send): on a conflict the
// channel is read again and only the conditions this reconcile changed are
// applied over the stored ones (conditions.Merge), so neither writer
// clobbers the other. The other status fields are this controller's alone.
func (r *InstagramChannelReconciler) patchStatus(ctx context.Context, original, ch *igv1.InstagramChannel) error {
	if equality.Semantic.DeepEqual(original.Status, ch.Status) {
		return nil
	}
	base, desired := original, ch.DeepCopy()
	for attempt := 1; ; attempt++ {
		err := r.Status().Patch(ctx, ch, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		if err == nil || !apierrors.IsConflict(err) || attempt == statusPatchAttempts {
			if err != nil {
				return client.IgnoreNotFound(fmt.Errorf("patch status: %w", err))
			}
			return nil
		}
		fresh := &igv1.InstagramChannel{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(ch), fresh); err != nil {
			return client.IgnoreNotFound(fmt.Errorf("patch status: %w", err))
		}
		merged := fresh.DeepCopy()
		merged.Status = *desired.Status.DeepCopy()
		merged.Status.Conditions = conditions.Merge(fresh.Status.Conditions, original.Status.Conditions, desired.Status.Conditions)
		base = fresh
		merged.DeepCopyInto(ch)
		if equality.Semantic.DeepEqual(fresh.Status, ch.Status) {
			return nil
		}
	}
}

// setCondition sets a condition with the object's generation; the
// transition time comes from the injected clock.
func (r *InstagramChannelReconciler) setCondition(run *channelRun, condType string, status metav1.ConditionStatus, reason, message string) {
	conditions.Set(&run.ch.Status.Conditions, run.ch.Generation, condType, status, reason, message, run.now)
}

// event records an Event on the channel. Notes never carry a token.
func (r *InstagramChannelReconciler) event(ch *igv1.InstagramChannel, eventType, reason, action, note string, args ...any) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(ch, nil, eventType, reason, action, note, args...)
}

// eventOnTransition records an Event only when the Ready reason changes to
// reason, so a channel that stays in one state does not repeat itself.
func (r *InstagramChannelReconciler) eventOnTransition(run *channelRun, eventType, reason, action, readyReason, note string, args ...any) {
	if c := meta.FindStatusCondition(run.original.Status.Conditions, igv1.ConditionReady); c != nil && c.Reason == readyReason && c.ObservedGeneration == run.ch.Generation {
		return
	}
	r.event(run.ch, eventType, reason, action, note, args...)
}

func (r *InstagramChannelReconciler) now() time.Time {
	c := r.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	// The API server stores seconds; computing in seconds keeps the status
	// stable between reconciles.
	return c.Now().UTC().Truncate(time.Second)
}

// Field indexes of InstagramChannel, registered by SetupWithManager.
const (
	// ChannelAppRefIndex holds "<kind>/<name>" of spec.appRef.
	ChannelAppRefIndex = "instagramchannel.spec.appRef"
	// ChannelInitialSecretIndex holds spec.initialTokenSecretRef.name.
	ChannelInitialSecretIndex = "instagramchannel.spec.initialTokenSecretRef.name"
	// ChannelUserIDIndex holds status.account.userID.
	ChannelUserIDIndex = "instagramchannel.status.account.userID"
)

// setupIndexes registers the field indexes the reconciler lists by.
func setupIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	indexes := map[string]client.IndexerFunc{
		ChannelAppRefIndex: func(o client.Object) []string {
			ch := o.(*igv1.InstagramChannel)
			return []string{appRefKey(appKind(ch), ch.Spec.AppRef.Name)}
		},
		ChannelInitialSecretIndex: func(o client.Object) []string {
			ch := o.(*igv1.InstagramChannel)
			if ch.Spec.InitialTokenSecretRef == nil {
				return nil
			}
			return []string{ch.Spec.InitialTokenSecretRef.Name}
		},
		ChannelUserIDIndex: func(o client.Object) []string {
			ch := o.(*igv1.InstagramChannel)
			if ch.Status.Account == nil || ch.Status.Account.UserID == "" {
				return nil
			}
			return []string{ch.Status.Account.UserID}
		},
	}
	for field, fn := range indexes {
		if err := indexer.IndexField(ctx, &igv1.InstagramChannel{}, field, fn); err != nil {
			return fmt.Errorf("index channels by %s: %w", field, err)
		}
	}
	return nil
}

// SetupWithManager registers the field indexes, the controller and its
// watches: the channel itself (spec and annotation changes), its app, the
// Secrets it references or manages, namespace labels (ClusterInstagramApp
// namespace selectors) and the channels sharing its account.
func (r *InstagramChannelReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := setupIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	r.Options = r.opts()
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("instagramchannel").
		For(&igv1.InstagramChannel{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, tokenRefusedPredicate()))).
		Watches(&igv1.InstagramApp{}, handler.EnqueueRequestsFromMapFunc(r.channelsForApp), builder.WithPredicates(appChangedPredicate())).
		Watches(&igv1.ClusterInstagramApp{}, handler.EnqueueRequestsFromMapFunc(r.channelsForApp), builder.WithPredicates(appChangedPredicate())).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.channelsForSecret)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.channelsForNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&igv1.InstagramChannel{}, handler.EnqueueRequestsFromMapFunc(r.channelsSharingAccount),
			builder.WithPredicates(accountChangedPredicate())).
		Complete(r)
}
