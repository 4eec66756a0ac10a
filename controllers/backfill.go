package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/names"
)

// BackfillReconciler imports a channel's recent conversations once, when
// the channel with spec.backfill first becomes Ready. Messages are created
// under the names the receiver uses (names.IncomingMessageName), so the
// import and later webhooks for the same mid make one object whichever
// comes first; a business message the operator itself sent (labelled with
// its mid) is not imported again. The calls are paced at the Conversations
// API's 2/s per account. An interrupted import starts again and skips what
// exists; completion is recorded in the channel's
// instagram.leadchat.io/backfilled-at annotation.
type BackfillReconciler struct {
	client.Client
	APIReader client.Reader
	Clock     clock.Clock
	Instagram InstagramClients
	// RatePerSecond paces the calls of one account (default 2, the
	// Conversations API's limit).
	RatePerSecond float64

	targets  *InstagramMessageReconciler
	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// Conversations API limit per account (INSTAGRAM-API.md "Rate limits").
const (
	conversationsPerSecond = 2
	conversationsBurst     = 2
)

// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagrammessages,verbs=create
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramchannels,verbs=patch

// Reconcile imports the channel's history when it is due.
func (r *BackfillReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ch := &igv1.InstagramChannel{}
	if err := r.Get(ctx, req.NamespacedName, ch); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !backfillDue(ch) {
		return ctrl.Result{}, nil
	}
	if ready, _ := channelReadiness(ch, ch.Name); !ready || ch.Status.Account == nil {
		// The readiness watch brings it back.
		return ctrl.Result{}, nil
	}
	logger := log.FromContext(ctx).WithValues("channel", ch.Name, "namespace", ch.Namespace)
	target, why, err := r.targets.sendTarget(ctx, ch)
	if err != nil || why != "" {
		if why != "" {
			logger.Info("Backfill waits for the channel", "why", why)
		}
		return ctrl.Result{}, err
	}
	account := ch.Status.Account.UserID
	lim := r.limiter(account)
	call := func() error { return lim.Wait(ctx) }
	spec := ch.Spec.Backfill
	perConv := int(spec.MessagesPerConversation)
	if perConv <= 0 || perConv > 20 {
		perConv = 20
	}
	convs := int(spec.Conversations)
	if convs <= 0 {
		convs = 25
	}

	if err := call(); err != nil {
		return ctrl.Result{}, err
	}
	list, err := target.api.Conversations(ctx, target.token, convs)
	if err != nil {
		return r.failed(ctx, err)
	}
	imported, skipped := 0, 0
	for _, conv := range list {
		if err := call(); err != nil {
			return ctrl.Result{}, err
		}
		ids, err := target.api.ConversationMessages(ctx, target.token, conv.ID, perConv)
		if err != nil {
			return r.failed(ctx, err)
		}
		for _, id := range ids {
			// A message recorded already (by the receiver, by an earlier
			// run) needs no details.
			done, err := r.recorded(ctx, ch, id)
			if err != nil {
				return ctrl.Result{}, err
			}
			if done {
				skipped++
				continue
			}
			if err := call(); err != nil {
				return ctrl.Result{}, err
			}
			m, err := target.api.ConversationMessage(ctx, target.token, id)
			if err != nil {
				return r.failed(ctx, err)
			}
			created, err := r.importMessage(ctx, ch, account, m)
			if err != nil {
				return ctrl.Result{}, err
			}
			if created {
				imported++
			} else {
				skipped++
			}
		}
	}
	patch := client.MergeFrom(ch.DeepCopy())
	if ch.Annotations == nil {
		ch.Annotations = map[string]string{}
	}
	ch.Annotations[igv1.AnnotationBackfilledAt] = r.Clock.Now().UTC().Format(time.RFC3339)
	if err := r.Patch(ctx, ch, patch); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("record backfill: %w", err))
	}
	backfilledTotal.Add(float64(imported))
	logger.Info("Backfill done", "conversations", len(list), "imported", imported, "alreadyRecorded", skipped)
	return ctrl.Result{}, nil
}

// failed turns an Instagram error into the retry it needs: a rate limit
// waits what Instagram asked; anything else backs off exponentially.
func (r *BackfillReconciler) failed(ctx context.Context, err error) (ctrl.Result, error) {
	if instagram.IsClass(err, instagram.ClassRateLimited) {
		log.FromContext(ctx).Info("Backfill rate limited by Instagram", "retryAfter", instagram.RetryAfterOf(err))
		return ctrl.Result{RequeueAfter: max(instagram.RetryAfterOf(err), time.Second)}, nil
	}
	return ctrl.Result{}, fmt.Errorf("backfill: %w", err)
}

// backfillDue reports a channel whose backfill is asked for and not done.
func backfillDue(ch *igv1.InstagramChannel) bool {
	return ch.Spec.Backfill != nil && ch.Annotations[igv1.AnnotationBackfilledAt] == "" && ch.DeletionTimestamp.IsZero() && !ch.Spec.Suspend
}

// recorded reports whether mid is already an object of the channel: the
// receiver's (or an import's) under its deterministic name, or an own send
// carrying its mid label.
func (r *BackfillReconciler) recorded(ctx context.Context, ch *igv1.InstagramChannel, mid string) (bool, error) {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(igv1.GroupVersion.WithKind("InstagramMessage"))
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ch.Namespace, Name: names.IncomingMessageName(ch.Name, mid)}, meta)
	switch {
	case err == nil:
		return true, nil
	case !apierrors.IsNotFound(err):
		return false, fmt.Errorf("look up message: %w", err)
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(igv1.GroupVersion.WithKind("InstagramMessageList"))
	if err := r.APIReader.List(ctx, list, client.InNamespace(ch.Namespace), client.MatchingLabels{
		igv1.LabelChannel: ch.Name, igv1.LabelMID: names.MIDHash(mid),
	}); err != nil {
		return false, fmt.Errorf("look up own send: %w", err)
	}
	return len(list.Items) > 0, nil
}

// importMessage creates the object of one imported message, as the receiver
// would have recorded it: a customer's as incoming, the business's as an
// outgoing echo that is already sent. It reports false when the object
// exists already.
func (r *BackfillReconciler) importMessage(ctx context.Context, ch *igv1.InstagramChannel, account string, m *instagram.ConversationMessage) (bool, error) {
	outgoing := m.FromID == account
	contact := m.FromID
	if outgoing {
		if len(m.ToIDs) == 0 {
			return false, nil
		}
		contact = m.ToIDs[0]
	}
	if !validIGSID(contact) {
		return false, nil
	}
	obj := &igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{
			Name:      names.IncomingMessageName(ch.Name, m.ID),
			Namespace: ch.Namespace,
			Labels: map[string]string{
				igv1.LabelChannel:    ch.Name,
				igv1.LabelContact:    contact,
				igv1.LabelDirection:  igv1.DirectionLabelIncoming,
				igv1.LabelEvent:      igv1.EventLabelMessage,
				igv1.LabelBackfilled: "true",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: igv1.GroupVersion.String(), Kind: "InstagramChannel",
				Name: ch.Name, UID: ch.UID, Controller: ptr.To(true),
			}},
		},
		Spec: igv1.InstagramMessageSpec{
			ChannelRef: igv1.ChannelReference{Name: ch.Name},
			Direction:  igv1.DirectionIncoming,
			ContactID:  contact,
			Text:       clip(m.Text, 8192),
		},
	}
	phase := igv1.PhaseReceived
	if outgoing {
		obj.Spec.Direction, obj.Spec.Echo = igv1.DirectionOutgoing, true
		obj.Labels[igv1.LabelDirection] = igv1.DirectionLabelOutgoing
		obj.Labels[igv1.LabelEvent] = igv1.EventLabelEcho
		obj.Labels[igv1.LabelDone] = "true"
		phase = igv1.PhaseSent
	}
	if err := r.Create(ctx, obj); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return false, fmt.Errorf("create imported message: %w", err)
	}
	now := r.Clock.Now()
	base := obj.DeepCopy()
	s := &obj.Status
	s.Phase = phase
	s.MessageID = m.ID
	s.Timestamp = ptr.To(metav1.NewTime(m.CreatedTime))
	s.EventTime = ptr.To(metav1.NewMicroTime(m.CreatedTime))
	s.ReceivedAt = ptr.To(metav1.NewMicroTime(now.UTC()))
	if outgoing {
		s.IsEcho = true
		s.SentAt = s.Timestamp
	}
	s.ObservedGeneration = obj.Generation
	setMessageCondition(obj, igv1.ConditionReady, metav1.ConditionTrue, string(phase), "Imported from the Conversations API", now)
	// The receiver writes a first status only where none is: a webhook
	// that won the race keeps its own.
	if err := r.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsConflict(err) {
		return true, client.IgnoreNotFound(fmt.Errorf("record imported message: %w", err))
	}
	return true, nil
}

func validIGSID(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (r *BackfillReconciler) limiter(account string) *rate.Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.limiters == nil {
		r.limiters = map[string]*rate.Limiter{}
	}
	lim, ok := r.limiters[account]
	if !ok {
		perSecond := r.RatePerSecond
		if perSecond <= 0 {
			perSecond = conversationsPerSecond
		}
		lim = rate.NewLimiter(rate.Limit(perSecond), conversationsBurst)
		r.limiters[account] = lim
	}
	return lim
}

// SetupWithManager registers the controller: channels whose backfill is
// due, when they appear or their readiness changes.
func (r *BackfillReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	r.targets = &InstagramMessageReconciler{Client: r.Client, APIReader: r.APIReader, Instagram: r.Instagram, Clock: r.Clock}
	due := func(o client.Object) bool {
		ch, ok := o.(*igv1.InstagramChannel)
		return ok && backfillDue(ch)
	}
	readiness := channelReadinessChangedPredicate()
	return ctrl.NewControllerManagedBy(mgr).
		Named("backfill").
		For(&igv1.InstagramChannel{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(e event.CreateEvent) bool { return due(e.Object) },
			UpdateFunc: func(e event.UpdateEvent) bool {
				return due(e.ObjectNew) && (readiness.Update(e) || e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
					e.ObjectOld.GetAnnotations()[igv1.AnnotationBackfilledAt] != "")
			},
			DeleteFunc:  func(event.DeleteEvent) bool { return false },
			GenericFunc: func(e event.GenericEvent) bool { return due(e.Object) },
		})).
		Complete(r)
}
