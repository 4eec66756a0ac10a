package controllers

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/replywindow"
)

// InstagramContactReconciler fills in what the receiver cannot: the
// customer's profile (it needs the channel's token), the window state when
// a window closes (no event marks that moment), and the contact's removal
// once no message and no open window is left.
//
// It caches contacts' metadata only (builder.OnlyMetadata): a reconcile
// reads the one contact it works on from the API server. Reconciles come
// from a contact's creation, a change of its labels or annotations (the
// receiver opening a window or lifting a profile refusal, a requestedAt
// request), its channel becoming ready, and the timers the reconcile itself
// sets for the next refresh, window change or retention check; status
// writes of the receiver wake nothing.
type InstagramContactReconciler struct {
	// Client reads channels, apps and Secrets from the cache, contacts'
	// metadata from the metadata cache, and writes.
	client.Client
	// APIReader reads contacts and messages without the cache.
	APIReader client.Reader
	Clock     clock.Clock
	Instagram InstagramClients
	Options   ContactOptions

	// targets resolves a channel's app and token as the message controller
	// does for a send.
	targets *InstagramMessageReconciler

	mu sync.Mutex
	// limiters holds one profile-lookup bucket per Instagram account.
	limiters map[string]*rate.Limiter
}

// contactConflictRequeue is the wait after a conflicting write, and
// maxContactConflicts how often a write is retried on a fresh copy first.
const (
	contactConflictRequeue = time.Second
	maxContactConflicts    = 5
)

// carryProfile copies what the profile step decided from one copy of a
// contact to a fresher one.
func carryProfile(from, to *igv1.InstagramContact) {
	to.Status.Profile = from.Status.Profile
	to.Status.LastHandledReconcileAt = from.Status.LastHandledReconcileAt
	if cond := meta.FindStatusCondition(from.Status.Conditions, igv1.ConditionProfileAvailable); cond != nil {
		meta.SetStatusCondition(&to.Status.Conditions, *cond)
	}
	setProfileLabel(to, from.Labels[igv1.LabelProfile])
}

// Reconcile brings one contact up to date.
func (r *InstagramContactReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &igv1.InstagramContact{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !c.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	logger := log.FromContext(ctx).WithValues("channel", c.Spec.ChannelRef.Name, "namespace", c.Namespace, "contact", c.Spec.ContactID)
	ctx = log.IntoContext(ctx, logger)
	opts := r.Options.withDefaults()
	now := r.Clock.Now()

	ch := &igv1.InstagramChannel{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.ChannelRef.Name}, ch); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("get channel: %w", err)
		}
		// The channel is gone: garbage collection takes the contact.
		return ctrl.Result{}, nil
	}

	base := c.DeepCopy()
	w := replywindow.Compute(replywindow.Of(&c.Status), now)
	replywindow.Apply(c, w)
	next := newSchedule(now)
	next.at(w.NextChange)

	remove, recheck, err := r.retention(ctx, c, ch, w)
	if err != nil {
		return ctrl.Result{}, err
	}
	if remove {
		logger.Info("Removing contact: no message and no open reply window left")
		err := r.Delete(ctx, c, client.Preconditions{UID: &c.UID, ResourceVersion: &c.ResourceVersion})
		if apierrors.IsConflict(err) {
			return ctrl.Result{RequeueAfter: contactConflictRequeue}, nil
		}
		if err == nil {
			contactsRemovedTotal.Inc()
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	next.at(recheck)

	res, stepErr := r.profile(ctx, c, ch, now, opts, next)
	c.Status.ObservedGeneration = c.Generation
	r.summarise(c, now)
	// The receiver writes the same contact at any time (every customer
	// message): on a conflict the profile's outcome is carried over to the
	// fresh copy rather than lost, which would cost another lookup.
	for attempt := 0; ; attempt++ {
		err := writeContact(ctx, r.Client, base, c)
		if err == nil {
			break
		}
		if !apierrors.IsConflict(err) || attempt >= maxContactConflicts {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: contactConflictRequeue}, nil
			}
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		fresh := &igv1.InstagramContact{}
		if err := r.APIReader.Get(ctx, req.NamespacedName, fresh); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		base = fresh.DeepCopy()
		carryProfile(c, fresh)
		replywindow.Apply(fresh, replywindow.Compute(replywindow.Of(&fresh.Status), now))
		fresh.Status.ObservedGeneration = fresh.Generation
		r.summarise(fresh, now)
		c = fresh
	}
	if stepErr != nil {
		return ctrl.Result{}, stepErr
	}
	if res.RequeueAfter > 0 {
		next.after(res.RequeueAfter)
	}
	return next.result(), nil
}

// profile fetches the profile when the policy says it is due and records
// the outcome in c. A returned error is transient and retried with the
// controller's exponential backoff.
func (r *InstagramContactReconciler) profile(ctx context.Context, c *igv1.InstagramContact, ch *igv1.InstagramChannel, now time.Time, opts ContactOptions, next *schedule) (ctrl.Result, error) {
	d := decideProfile(c, now, opts)
	next.at(d.next)
	if !d.fetch {
		return ctrl.Result{}, nil
	}
	if ready, why := channelReadiness(ch, ch.Name); !ready || ch.Status.Account == nil {
		if why == "" {
			why = "the channel has no account yet"
		}
		// The channel watch wakes the contact once it is Ready.
		setProfileCondition(c, metav1.ConditionFalse, igv1.ReasonProfilePending, "waiting for the channel: "+why, now)
		return ctrl.Result{}, nil
	}
	if delay := r.reserve(ch.Status.Account.UserID, opts); delay > 0 {
		setProfileCondition(c, metav1.ConditionFalse, igv1.ReasonProfilePending, "waiting for the account's profile rate limit", now)
		return ctrl.Result{RequeueAfter: delay}, nil
	}
	target, why, err := r.targets.sendTarget(ctx, ch)
	if err != nil {
		return ctrl.Result{}, err
	}
	if why != "" {
		setProfileCondition(c, metav1.ConditionFalse, igv1.ReasonProfilePending, "waiting for the channel: "+why, now)
		return ctrl.Result{}, nil
	}
	log.FromContext(ctx).V(1).Info("Fetching profile", "why", d.why)
	p, err := target.api.Profile(ctx, target.token, c.Spec.ContactID)
	profileFetchesTotal.WithLabelValues(instagram.ResultOf(err)).Inc()
	checked := metav1.NewTime(now.UTC().Truncate(time.Second))
	c.Status.Profile.CheckedAt = &checked
	switch {
	case err == nil:
		applyProfile(c, p, now, opts)
		setProfileLabel(c, "")
		setProfileCondition(c, metav1.ConditionTrue, igv1.ReasonProfileFetched, "profile as Instagram reported it", now)
		c.Status.LastHandledReconcileAt = c.Annotations[igv1.AnnotationRequestedAt]
		next.at(decideProfile(c, now, opts).next)
		return ctrl.Result{}, nil
	case instagram.IsClass(err, instagram.ClassNoConsent):
		setProfileLabel(c, igv1.ProfileLabelConsentRequired)
		setProfileCondition(c, metav1.ConditionFalse, igv1.ReasonConsentRequired,
			"Instagram shares the profile only once the customer has messaged the account or tapped an ice breaker or menu item (code 230); fetched again when they write", now)
		c.Status.LastHandledReconcileAt = c.Annotations[igv1.AnnotationRequestedAt]
		return ctrl.Result{}, nil
	case instagram.IsClass(err, instagram.ClassUserUnavailable):
		setProfileLabel(c, igv1.ProfileLabelUnavailable)
		setProfileCondition(c, metav1.ConditionFalse, igv1.ReasonProfileUnavailable,
			"Instagram cannot show this profile: the customer blocked the account or deleted theirs ("+err.Error()+"); fetched again when they write", now)
		c.Status.LastHandledReconcileAt = c.Annotations[igv1.AnnotationRequestedAt]
		return ctrl.Result{}, nil
	case instagram.IsClass(err, instagram.ClassRateLimited):
		setProfileCondition(c, metav1.ConditionFalse, igv1.ReasonProfilePending, "rate limited by Instagram: "+err.Error(), now)
		return ctrl.Result{RequeueAfter: max(instagram.RetryAfterOf(err), time.Second)}, nil
	default:
		setProfileCondition(c, metav1.ConditionFalse, igv1.ReasonProfilePending, "profile lookup failed: "+err.Error(), now)
		return ctrl.Result{}, fmt.Errorf("fetch profile: %w", err)
	}
}

// applyProfile copies what Instagram reported; what it omitted is cleared,
// never kept from an older answer or guessed.
func applyProfile(c *igv1.InstagramContact, p *instagram.Profile, now time.Time, opts ContactOptions) {
	fetched := metav1.NewTime(now.UTC().Truncate(time.Second))
	out := igv1.ContactProfile{
		Name:               clip(p.Name, 1024),
		Username:           clip(p.Username, 256),
		FollowerCount:      p.FollowerCount,
		FollowsBusiness:    p.IsUserFollowBusiness,
		FollowedByBusiness: p.IsBusinessFollowUser,
		Verified:           p.IsVerifiedUser,
		FetchedAt:          &fetched,
		CheckedAt:          &fetched,
	}
	if len(p.ProfilePic) <= 8192 {
		out.ProfilePictureURL = p.ProfilePic
	}
	if exp := pictureExpiry(out.ProfilePictureURL, now, opts.PictureTTL); !exp.IsZero() {
		t := metav1.NewTime(exp.Truncate(time.Second))
		out.ProfilePictureExpiresAt = &t
	}
	c.Status.Profile = out
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func setProfileLabel(c *igv1.InstagramContact, v string) {
	if c.Labels[igv1.LabelProfile] == v {
		return
	}
	c.Labels = maps.Clone(c.Labels)
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	if v == "" {
		delete(c.Labels, igv1.LabelProfile)
		return
	}
	c.Labels[igv1.LabelProfile] = v
}

func setProfileCondition(c *igv1.InstagramContact, status metav1.ConditionStatus, reason, message string, now time.Time) {
	setContactCondition(c, igv1.ConditionProfileAvailable, status, reason, message, now)
}

func setContactCondition(c *igv1.InstagramContact, t string, status metav1.ConditionStatus, reason, message string, now time.Time) {
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
		Type: t, Status: status, Reason: reason, Message: message,
		ObservedGeneration: c.Generation, LastTransitionTime: metav1.NewTime(now.UTC().Truncate(time.Second)),
	})
}

// summarise derives Ready, Reconciling and Stalled from ProfileAvailable:
// Ready once the profile is known; Stalled while only the customer can
// change that (no consent yet, blocked, deleted); Reconciling while the
// operator is still at it.
func (r *InstagramContactReconciler) summarise(c *igv1.InstagramContact, now time.Time) {
	p := meta.FindStatusCondition(c.Status.Conditions, igv1.ConditionProfileAvailable)
	if p == nil {
		return
	}
	switch {
	case p.Status == metav1.ConditionTrue:
		setContactCondition(c, igv1.ConditionReady, metav1.ConditionTrue, p.Reason, p.Message, now)
		meta.RemoveStatusCondition(&c.Status.Conditions, igv1.ConditionReconciling)
		meta.RemoveStatusCondition(&c.Status.Conditions, igv1.ConditionStalled)
	case profileUnavailable(c):
		setContactCondition(c, igv1.ConditionReady, metav1.ConditionFalse, p.Reason, p.Message, now)
		setContactCondition(c, igv1.ConditionStalled, metav1.ConditionTrue, p.Reason, p.Message, now)
		meta.RemoveStatusCondition(&c.Status.Conditions, igv1.ConditionReconciling)
	default:
		setContactCondition(c, igv1.ConditionReady, metav1.ConditionFalse, p.Reason, p.Message, now)
		setContactCondition(c, igv1.ConditionReconciling, metav1.ConditionTrue, p.Reason, p.Message, now)
		meta.RemoveStatusCondition(&c.Status.Conditions, igv1.ConditionStalled)
	}
}

// reserve takes one profile lookup from the account's bucket and returns
// how long to wait first (0: go now). A wait gives the token back: the
// contact is requeued instead of holding a worker.
func (r *InstagramContactReconciler) reserve(account string, opts ContactOptions) time.Duration {
	r.mu.Lock()
	lim, ok := r.limiters[account]
	if !ok {
		if r.limiters == nil {
			r.limiters = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(rate.Limit(opts.ProfileRatePerSecond), opts.ProfileBurst)
		r.limiters[account] = lim
	}
	r.mu.Unlock()
	// Wall time: the bucket paces real calls.
	now := time.Now()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// retention decides whether the contact goes: no reply window may be open
// and none of its messages is left. Its messages are listed by label,
// metadata only.
func (r *InstagramContactReconciler) retention(ctx context.Context, c *igv1.InstagramContact, ch *igv1.InstagramChannel, w replywindow.Windows) (remove bool, recheck time.Time, err error) {
	state := igv1.WindowState(w.State)
	if state == igv1.WindowOpen || state == igv1.WindowHumanAgent || !w.NextChange.IsZero() {
		return false, time.Time{}, nil
	}
	last := c.CreationTimestamp.Time
	for _, t := range []*metav1.MicroTime{c.Status.LastMessageAt, c.Status.LastAnsweredAt, c.Status.Window.RefusedAt} {
		if t != nil && t.After(last) {
			last = t.Time
		}
	}
	now := r.Clock.Now()
	if quiet := last.Add(replywindow.HumanAgent); now.Before(quiet) {
		return false, quiet, nil
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(igv1.GroupVersion.WithKind("InstagramMessageList"))
	if err := r.APIReader.List(ctx, list, client.InNamespace(c.Namespace), client.MatchingLabels{
		igv1.LabelChannel: c.Spec.ChannelRef.Name, igv1.LabelContact: c.Spec.ContactID,
	}); err != nil {
		return false, time.Time{}, fmt.Errorf("list messages of contact: %w", err)
	}
	var newest time.Time
	for i := range list.Items {
		if t := list.Items[i].CreationTimestamp.Time; t.After(newest) {
			newest = t
		}
	}
	var retain time.Duration
	if ch.Spec.MessageRetention != nil {
		retain = ch.Spec.MessageRetention.Duration
	}
	remove, recheck = contactRetention(state, !w.NextChange.IsZero(), last, now, len(list.Items), newest, retain)
	if !recheck.IsZero() {
		// The message sweep runs on its own interval: look shortly after.
		recheck = recheck.Add(DefaultRetentionInterval)
	}
	return remove, recheck, nil
}

// writeContact writes what changed between base and c: the status, then
// the labels, each under an optimistic lock.
func writeContact(ctx context.Context, w client.Client, base, c *igv1.InstagramContact) error {
	labels := c.Labels
	if !equalStatus(base, c) {
		if err := w.Status().Patch(ctx, c, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return err
		}
	}
	if maps.Equal(labels, base.Labels) {
		return nil
	}
	before := c.DeepCopy()
	before.Labels = base.Labels
	c.Labels = labels
	return w.Patch(ctx, c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// schedule collects the times a reconcile must look again and keeps the
// earliest.
type schedule struct {
	now, next time.Time
}

func newSchedule(now time.Time) *schedule { return &schedule{now: now} }

func (s *schedule) at(t time.Time) {
	if t.IsZero() {
		return
	}
	if s.next.IsZero() || t.Before(s.next) {
		s.next = t
	}
}

func (s *schedule) after(d time.Duration) { s.at(s.now.Add(d)) }

func (s *schedule) result() ctrl.Result {
	if s.next.IsZero() {
		return ctrl.Result{}
	}
	// A little past the moment, so the next look finds it passed.
	return ctrl.Result{RequeueAfter: max(s.next.Sub(s.now), 0) + 100*time.Millisecond}
}

// SetupWithManager registers the controller: contacts as metadata only,
// and channels whose readiness changed.
func (r *InstagramContactReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	r.targets = &InstagramMessageReconciler{Client: r.Client, APIReader: r.APIReader, Instagram: r.Instagram, Clock: r.Clock}
	opts := r.Options.withDefaults()
	return ctrl.NewControllerManagedBy(mgr).
		Named("instagramcontact").
		For(&igv1.InstagramContact{}, builder.OnlyMetadata, builder.WithPredicates(contactMetadataChangedPredicate())).
		Watches(&igv1.InstagramChannel{}, handler.EnqueueRequestsFromMapFunc(r.contactsOfChannel),
			builder.WithPredicates(channelReadinessChangedPredicate())).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}).
		Complete(r)
}

// contactMetadataChangedPredicate passes a contact's creation and changes of
// its labels or annotations; the receiver's status writes (every customer
// message) pass no event.
func contactMetadataChangedPredicate() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return !maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) ||
				!maps.Equal(e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations())
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return true },
	}
}

// contactsOfChannel maps a channel to its contacts, from the metadata cache.
func (r *InstagramContactReconciler) contactsOfChannel(ctx context.Context, o client.Object) []reconcile.Request {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(igv1.GroupVersion.WithKind("InstagramContactList"))
	if err := r.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingLabels{igv1.LabelChannel: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "list contacts of channel", "channel", o.GetName(), "namespace", o.GetNamespace())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}
