package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/names"
	"github.com/leadchat/instagram-operator/internal/replywindow"
)

// The reply-window check of the send path: a message to a contact whose
// recorded windows are closed fails before any call, and Instagram's answer
// to a send corrects the record. The message controller calls
// checkReplyWindow before a send and observeReplyWindow after it.

// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramcontacts,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramcontacts/status,verbs=get;patch

// Values of the window label of instagram_messages_refused_total.
const (
	refusedStandard   = "standard"
	refusedHumanAgent = "human_agent"
)

// windowRefusal decides whether the record refuses a send of spec at now,
// which window is closed, and the message that says when it closed and
// whether HUMAN_AGENT would help. A contact not recorded (nil), a message
// that opts out, and a window the record cannot tell are left to
// Instagram. A private reply to a comment needs no messaging window (it has
// its own: 7 days after the comment, checked by the comment rules).
func windowRefusal(c *igv1.InstagramContact, spec *igv1.InstagramMessageSpec, now time.Time) (refuse bool, window, message string) {
	if c == nil || spec.SkipWindowCheck || spec.PrivateReplyTo != nil {
		return false, "", ""
	}
	w := replywindow.Compute(replywindow.Of(&c.Status), now)
	tagged := spec.Tag == igv1.TagHumanAgent
	if w.Allows(tagged) {
		return false, "", ""
	}
	last := lastEvents(&c.Status.Window)
	std, ha := stamp(w.StandardClosesAt), stamp(w.HumanAgentClosesAt)
	switch {
	case tagged:
		return true, refusedHumanAgent, fmt.Sprintf("the 7-day HUMAN_AGENT window closed at %s (%s): the customer must write first; spec.skipWindowCheck lets Instagram decide", ha, last)
	case w.State == replywindow.HumanAgentOnly:
		return true, refusedStandard, fmt.Sprintf("the 24-hour window closed at %s (%s); HUMAN_AGENT would help: a new message with spec.tag HUMAN_AGENT (needs Meta's Human Agent feature) may be sent until %s; spec.skipWindowCheck lets Instagram decide", std, last, ha)
	default:
		return true, refusedStandard, fmt.Sprintf("the 24-hour window closed at %s and the 7-day HUMAN_AGENT window at %s (%s): HUMAN_AGENT would not help, the customer must write first; spec.skipWindowCheck lets Instagram decide", std, ha, last)
	}
}

// lastEvents names the recorded events the windows were computed from.
func lastEvents(w *igv1.ReplyWindow) string {
	var out string
	add := func(s string) {
		if out != "" {
			out += "; "
		}
		out += s
	}
	if w.OpenedAt != nil {
		add("the customer's last message at " + stamp(w.OpenedAt.Time))
	}
	if w.UnconfirmedAt != nil {
		add("their last " + w.UnconfirmedBy + " at " + stamp(w.UnconfirmedAt.Time))
	}
	if w.RefusedAt != nil {
		add("Instagram refused a send at " + stamp(w.RefusedAt.Time))
	}
	if out == "" {
		return "no customer event recorded"
	}
	return out
}

// stamp formats a time for a message; "unknown" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}

// checkReplyWindow fails msg with OutsideWindow, without calling Instagram,
// when its contact's recorded windows are closed. done reports that it did
// (or that it must look again), and the caller returns res, err.
func (r *InstagramMessageReconciler) checkReplyWindow(ctx context.Context, msg *igv1.InstagramMessage, now time.Time) (res ctrl.Result, done bool, err error) {
	if msg.Spec.SkipWindowCheck {
		return ctrl.Result{}, false, nil
	}
	c := &igv1.InstagramContact{}
	key := types.NamespacedName{Namespace: msg.Namespace, Name: names.ContactName(msg.Spec.ChannelRef.Name, msg.Spec.ContactID)}
	if err := r.APIReader.Get(ctx, key, c); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, false, nil
		}
		return ctrl.Result{}, true, fmt.Errorf("get contact %s: %w", key.Name, err)
	}
	refuse, window, why := windowRefusal(c, &msg.Spec, now)
	if !refuse {
		return ctrl.Result{}, false, nil
	}
	res, err = r.writeLocked(ctx, msg, failedStatus(sendOutcome{reason: igv1.ReasonOutsideWindow, message: why}, now))
	if err == nil && res.RequeueAfter == 0 && msg.Status.Phase == igv1.PhaseFailed {
		messagesRefusedTotal.WithLabelValues(window).Inc()
		log.FromContext(ctx).Info("send refused: reply window closed", "message", msg.Name, "window", window)
	}
	return res, true, err
}

// observeReplyWindow lets Instagram's answer to a send correct the contact:
// a refusal as outside the window (2534022) closes the recorded window at
// once; a success the record would have refused is counted and logged. A
// failure to record the correction is logged only: the send's outcome is
// what matters.
func (r *InstagramMessageReconciler) observeReplyWindow(ctx context.Context, msg *igv1.InstagramMessage, sendErr error) {
	if msg.Spec.PrivateReplyTo != nil {
		// A private reply says nothing about the messaging window.
		return
	}
	logger := log.FromContext(ctx)
	refused := instagram.IsClass(sendErr, instagram.ClassOutsideWindow)
	if sendErr != nil && !refused {
		return
	}
	key := types.NamespacedName{Namespace: msg.Namespace, Name: names.ContactName(msg.Spec.ChannelRef.Name, msg.Spec.ContactID)}
	tagged := msg.Spec.Tag == igv1.TagHumanAgent
	now := r.now()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c := &igv1.InstagramContact{}
		if err := r.APIReader.Get(ctx, key, c); err != nil {
			return err
		}
		allowed := replywindow.Compute(replywindow.Of(&c.Status), now).Allows(tagged)
		if !refused {
			if !allowed {
				windowCorrectionsTotal.WithLabelValues(correctionSentWhileClosed).Inc()
				logger.Info("Instagram accepted a send the contact's record says is outside the reply window",
					"message", msg.Name, "contact", c.Name, "window", c.Status.Window.State)
			}
			return nil
		}
		if allowed {
			windowCorrectionsTotal.WithLabelValues(correctionRefusedWhileOpen).Inc()
			logger.Info("Instagram refused a send as outside the reply window the contact's record says is open; closing it",
				"message", msg.Name, "contact", c.Name, "window", c.Status.Window.State)
		}
		base := c.DeepCopy()
		at := metav1.NewMicroTime(now.UTC().Truncate(time.Microsecond))
		c.Status.Window.RefusedAt = &at
		c.Status.Window.RefusedHumanAgent = tagged
		replywindow.Apply(c, replywindow.Compute(replywindow.Of(&c.Status), now))
		return writeContact(ctx, r.Client, base, c)
	})
	if err != nil && !apierrors.IsNotFound(err) {
		logger.Error(err, "record Instagram's answer on the contact", "message", msg.Name, "contact", key.Name)
	}
}
