package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

// DefaultCommentDriftInterval is how often a comment's spec.hidden is
// compared with Instagram's view.
const DefaultCommentDriftInterval = 10 * time.Minute

// InstagramCommentReconciler applies what a workload asks of a comment:
// spec.delete (once), spec.publicReply (once: a reply interrupted after it
// may have been posted is reported ReplyUnknown, never posted again) and
// spec.hidden (kept true at Instagram: compared every DriftInterval,
// repaired when someone changed it in the app). Condition Synced says
// whether Instagram shows what the spec asks. Comments without any of
// these fields are never acted on and cost no call.
type InstagramCommentReconciler struct {
	client.Client
	// APIReader reads the token Secret when it is not cached yet.
	APIReader client.Reader
	Clock     clock.Clock
	Instagram InstagramClients
	// Recorder is mgr.GetEventRecorder("instagramcomment-controller"); nil
	// records nothing.
	Recorder events.EventRecorder
	// DriftInterval defaults to DefaultCommentDriftInterval.
	DriftInterval time.Duration
}

// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramcomments,verbs=get;list;watch
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramcomments/status,verbs=get;patch

// wantsActions reports whether the spec asks anything of Instagram.
func wantsActions(c *igv1.InstagramComment) bool {
	return c.Spec.Hidden != nil || c.Spec.PublicReply != nil || c.Spec.Delete
}

// commentActionCheck is the first reason an action cannot be applied, in
// the order a person would fix them; "" when it can.
func commentActionCheck(c *igv1.InstagramComment, ch *igv1.InstagramChannel) (reason, why string) {
	if ready, why := channelReadiness(ch, c.Spec.ChannelRef.Name); !ready {
		return igv1.ReasonChannelNotReady, why
	}
	if !slices.Contains(ch.Spec.Scopes, igv1.ScopeManageComments) {
		return igv1.ReasonScopeMissing, fmt.Sprintf("channel %q lacks scope %s in spec.scopes, which comment moderation and replies need", ch.Name, igv1.ScopeManageComments)
	}
	if c.Spec.PublicReply != nil && !c.Spec.Delete && publicReplyID(c.Status.Actions) == "" {
		switch {
		case c.Spec.ParentID != "":
			return igv1.ReasonNotAllowed, "spec.publicReply: Instagram takes replies to top-level comments only; this comment is a reply"
		case c.Spec.Live:
			return igv1.ReasonNotAllowed, "spec.publicReply: Instagram takes no replies to live comments"
		case c.Status.Actions != nil && c.Status.Actions.Hidden != nil && *c.Status.Actions.Hidden:
			// With spec.hidden and spec.publicReply set together the reply
			// is posted first, before the comment is hidden.
			return igv1.ReasonNotAllowed, "spec.publicReply: Instagram takes no replies to hidden comments, and this one is hidden already"
		}
	}
	return "", ""
}

func (r *InstagramCommentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &igv1.InstagramComment{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !wantsActions(c) || !c.DeletionTimestamp.IsZero() || (c.Status.DeletedAt != nil && !c.Spec.Delete) {
		// Nothing asked, or Instagram reported it removed: nothing to keep.
		return ctrl.Result{}, nil
	}
	if a := c.Status.Actions; a != nil && a.DeletedAt != nil {
		return ctrl.Result{}, nil
	}
	logger := log.FromContext(ctx).WithValues("channel", c.Spec.ChannelRef.Name, "namespace", c.Namespace)
	ctx = log.IntoContext(ctx, logger)

	ch := &igv1.InstagramChannel{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.ChannelRef.Name}, ch); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		ch = nil
	}
	if reason, why := commentActionCheck(c, ch); reason != "" {
		stalled := reason != igv1.ReasonChannelNotReady
		if err := r.setSynced(ctx, c, metav1.ConditionFalse, reason, why, stalled); err != nil {
			return ctrl.Result{}, err
		}
		if !stalled {
			return ctrl.Result{RequeueAfter: time.Minute}, nil
		}
		return ctrl.Result{}, nil
	}
	target, why, err := (&InstagramMessageReconciler{Client: r.Client, APIReader: r.APIReader, Instagram: r.Instagram}).sendTarget(ctx, ch)
	if err != nil {
		return ctrl.Result{}, err
	}
	if why != "" {
		return ctrl.Result{RequeueAfter: time.Minute}, r.setSynced(ctx, c, metav1.ConditionFalse, igv1.ReasonChannelNotReady, why, false)
	}
	id := c.Spec.CommentID

	if c.Spec.Delete {
		if err := target.api.DeleteComment(ctx, target.token, id); err != nil {
			return r.failed(ctx, c, "delete", err)
		}
		r.event(c, "Normal", "Deleted", "deleted the comment at Instagram")
		return ctrl.Result{}, r.patchActions(ctx, c, func(a *igv1.CommentActionsStatus) { a.DeletedAt = r.nowTime() }, metav1.ConditionTrue, "Deleted", "deleted at Instagram")
	}

	if c.Spec.PublicReply != nil && publicReplyID(c.Status.Actions) == "" {
		if c.Status.Actions != nil && c.Status.Actions.PublicReplyStartedAt != nil {
			// A previous attempt may have posted it: never post twice.
			return ctrl.Result{}, r.setSynced(ctx, c, metav1.ConditionFalse, igv1.ReasonReplyUnknown,
				"a public reply was interrupted after it may have reached Instagram; it is not posted again: check the post and remove spec.publicReply or reply by hand", true)
		}
		// Persisted first, under the lock: of two reconcilers only one
		// posts.
		if err := r.patchActionsLocked(ctx, c, func(a *igv1.CommentActionsStatus) { a.PublicReplyStartedAt = r.nowTime() }); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: conflictRequeue}, nil
			}
			return ctrl.Result{}, err
		}
		replyID, err := target.api.ReplyToComment(context.WithoutCancel(ctx), target.token, id, c.Spec.PublicReply.Text)
		if err != nil {
			var ie *instagram.Error
			if errors.As(err, &ie) && ie.NotDelivered {
				// Surely not posted: the next attempt may post.
				if perr := r.patchActions(ctx, c, func(a *igv1.CommentActionsStatus) { a.PublicReplyStartedAt = nil }, "", "", ""); perr != nil {
					return ctrl.Result{}, perr
				}
			}
			return r.failed(ctx, c, "reply", err)
		}
		r.event(c, "Normal", "Replied", "posted the public reply")
		if err := r.patchActions(ctx, c, func(a *igv1.CommentActionsStatus) { a.PublicReplyID = replyID }, "", "", ""); err != nil {
			return ctrl.Result{}, err
		}
	}

	interval := r.DriftInterval
	if interval <= 0 {
		interval = DefaultCommentDriftInterval
	}
	if want := c.Spec.Hidden; want != nil {
		a := c.Status.Actions
		now := r.now()
		if a != nil && a.Hidden != nil && *a.Hidden == *want && a.CheckedAt != nil && now.Before(a.CheckedAt.Add(interval)) {
			return ctrl.Result{RequeueAfter: a.CheckedAt.Add(interval).Sub(now)}, r.setSynced(ctx, c, metav1.ConditionTrue, igv1.ReasonSynced, syncedMessage(c), false)
		}
		got, err := target.api.Comment(ctx, target.token, id)
		if err != nil {
			return r.failed(ctx, c, "read", err)
		}
		if got.Hidden != *want {
			if err := target.api.HideComment(ctx, target.token, id, *want); err != nil {
				return r.failed(ctx, c, "hide", err)
			}
			r.event(c, "Normal", "HiddenApplied", fmt.Sprintf("set hidden=%t at Instagram", *want))
		}
		hidden := *want
		err = r.patchActions(ctx, c, func(a *igv1.CommentActionsStatus) { a.Hidden, a.CheckedAt = &hidden, r.nowTime() },
			metav1.ConditionTrue, igv1.ReasonSynced, syncedMessage(c))
		return ctrl.Result{RequeueAfter: interval}, err
	}
	return ctrl.Result{}, r.setSynced(ctx, c, metav1.ConditionTrue, igv1.ReasonSynced, syncedMessage(c), false)
}

func syncedMessage(c *igv1.InstagramComment) string {
	switch {
	case c.Spec.Hidden != nil && *c.Spec.Hidden:
		return "hidden at Instagram"
	case c.Spec.Hidden != nil:
		return "shown at Instagram"
	}
	return "public reply posted"
}

func publicReplyID(a *igv1.CommentActionsStatus) string {
	if a == nil {
		return ""
	}
	return a.PublicReplyID
}

// failed reports an Instagram error of an action: one that needs a human
// (token, permission, a refusal) is Stalled; others are retried with
// backoff.
func (r *InstagramCommentReconciler) failed(ctx context.Context, c *igv1.InstagramComment, action string, err error) (ctrl.Result, error) {
	msg := fmt.Sprintf("%s: %v", action, err)
	switch instagram.ClassOf(err) {
	case instagram.ClassTokenInvalid, instagram.ClassPermissionDenied, instagram.ClassBadRequest:
		reason := igv1.ReasonBadRequest
		switch instagram.ClassOf(err) {
		case instagram.ClassTokenInvalid:
			reason = igv1.ReasonTokenInvalid
		case instagram.ClassPermissionDenied:
			reason = igv1.ReasonPermissionDenied
		}
		r.event(c, "Warning", reason, msg)
		return ctrl.Result{}, r.setSynced(ctx, c, metav1.ConditionFalse, reason, msg, true)
	}
	if perr := r.setSynced(ctx, c, metav1.ConditionFalse, igv1.ReasonInstagramError, msg, false); perr != nil {
		return ctrl.Result{}, perr
	}
	return ctrl.Result{}, fmt.Errorf("comment %s: %w", action, err)
}

// setSynced writes the Synced (and Stalled) condition when it changed.
func (r *InstagramCommentReconciler) setSynced(ctx context.Context, c *igv1.InstagramComment, st metav1.ConditionStatus, reason, message string, stalled bool) error {
	return r.patchActions(ctx, c, nil, st, reason, message, stalled)
}

// patchActions applies mutate to status.actions and, when reason is set,
// the Synced condition; it writes only a change, as a merge patch (the
// receiver writes other status fields of the same object).
func (r *InstagramCommentReconciler) patchActions(ctx context.Context, c *igv1.InstagramComment, mutate func(*igv1.CommentActionsStatus), st metav1.ConditionStatus, reason, message string, stalled ...bool) error {
	base := c.DeepCopy()
	if mutate != nil {
		if c.Status.Actions == nil {
			c.Status.Actions = &igv1.CommentActionsStatus{}
		}
		mutate(c.Status.Actions)
	}
	if reason != "" {
		// The status now describes this generation (spec.hidden and the
		// other fields included): kstatus and Argo CD read it so. The
		// receiver's Ready (recorded) holds for it too.
		c.Status.ObservedGeneration = c.Generation
		if ready := meta.FindStatusCondition(c.Status.Conditions, igv1.ConditionReady); ready != nil {
			ready.ObservedGeneration = c.Generation
		}
		r.setCondition(c, igv1.ConditionSynced, st, reason, message)
		if len(stalled) > 0 && stalled[0] {
			r.setCondition(c, igv1.ConditionStalled, metav1.ConditionTrue, reason, message)
		} else {
			meta.RemoveStatusCondition(&c.Status.Conditions, igv1.ConditionStalled)
		}
	}
	if equality.Semantic.DeepEqual(base.Status, c.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, c, client.MergeFrom(base)); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("patch comment status: %w", err))
	}
	return nil
}

// patchActionsLocked is patchActions under an optimistic lock.
func (r *InstagramCommentReconciler) patchActionsLocked(ctx context.Context, c *igv1.InstagramComment, mutate func(*igv1.CommentActionsStatus)) error {
	base := c.DeepCopy()
	if c.Status.Actions == nil {
		c.Status.Actions = &igv1.CommentActionsStatus{}
	}
	mutate(c.Status.Actions)
	return r.Status().Patch(ctx, c, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

func (r *InstagramCommentReconciler) setCondition(c *igv1.InstagramComment, condType string, st metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{
		Type: condType, Status: st, Reason: reason, Message: message,
		ObservedGeneration: c.Generation, LastTransitionTime: metav1.NewTime(r.now()),
	})
}

func (r *InstagramCommentReconciler) event(c *igv1.InstagramComment, typ, reason, note string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(c, nil, typ, reason, "Moderate", "%s", note)
	}
}

func (r *InstagramCommentReconciler) now() time.Time {
	c := r.Clock
	if c == nil {
		c = clock.RealClock{}
	}
	return c.Now().UTC().Truncate(time.Second)
}

func (r *InstagramCommentReconciler) nowTime() *metav1.Time { return &metav1.Time{Time: r.now()} }

// SetupWithManager registers the controller: comments are reconciled when
// they appear and when their spec changes (the receiver's status writes and
// this controller's own need no reconcile; the drift check requeues).
func (r *InstagramCommentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("instagramcomment").
		For(&igv1.InstagramComment{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
