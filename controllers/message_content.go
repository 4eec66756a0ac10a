package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/names"
)

// The content of an outgoing message as Instagram's Send API takes it. Every
// kind of content and every sender action goes through the same send path
// (message_send.go): this file only says what is sent.

// buildSendRequest is the Instagram request for an outgoing message's spec:
// a pure function of the spec, the channel's account and, for a reaction,
// the mid of the message reacted to (resolved from spec.senderAction).
// The admission rules (CEL) have already refused what Instagram would
// refuse; the client checks again before any call.
func buildSendRequest(spec *igv1.InstagramMessageSpec, accountID, reactedMID string) instagram.SendRequest {
	req := instagram.SendRequest{
		AccountID:   accountID,
		RecipientID: spec.ContactID,
		HumanAgent:  spec.Tag == igv1.TagHumanAgent,
		ReplyTo:     spec.ReplyTo,
	}
	if a := spec.SenderAction; a != nil {
		req.Action = &instagram.SenderAction{Action: string(a.Action), MessageID: reactedMID, Reaction: a.Reaction}
		return req
	}
	m := &instagram.MessageContent{Text: spec.Text}
	for _, q := range spec.QuickReplies {
		m.QuickReplies = append(m.QuickReplies, instagram.QuickReply{
			ContentType: string(q.ContentType), Title: q.Title, Payload: q.Payload,
		})
	}
	switch {
	case len(spec.Attachments) > 0 && allImages(spec.Attachments):
		for _, a := range spec.Attachments {
			m.Images = append(m.Images, instagram.Image{URL: a.URL, AttachmentID: a.AttachmentID})
		}
	case len(spec.Attachments) > 0:
		m.Attachment = &instagram.Attachment{Type: spec.Attachments[0].Type, URL: spec.Attachments[0].URL}
	case spec.Sticker == igv1.StickerHeart:
		m.HeartSticker = true
	case spec.SharePost != nil:
		m.MediaShareID = spec.SharePost.MediaID
	case spec.ButtonTemplate != nil:
		m.Button = &instagram.ButtonTemplate{Text: spec.ButtonTemplate.Text, Buttons: buttons(spec.ButtonTemplate.Buttons)}
	case spec.GenericTemplate != nil:
		g := &instagram.GenericTemplate{}
		for _, e := range spec.GenericTemplate.Elements {
			el := instagram.GenericElement{Title: e.Title, Subtitle: e.Subtitle, ImageURL: e.ImageURL, Buttons: buttons(e.Buttons)}
			if e.DefaultAction != nil {
				el.DefaultActionURL = e.DefaultAction.URL
			}
			g.Elements = append(g.Elements, el)
		}
		m.Generic = g
	}
	req.Message = m
	return req
}

func allImages(atts []igv1.Attachment) bool {
	for _, a := range atts {
		if a.Type != "image" {
			return false
		}
	}
	return true
}

func buttons(in []igv1.Button) []instagram.Button {
	var out []instagram.Button
	for _, b := range in {
		out = append(out, instagram.Button{Type: string(b.Type), Title: b.Title, URL: b.URL, Payload: b.Payload})
	}
	return out
}

// reactionTarget checks that target, the object spec.senderAction.messageRef
// names, is a message the customer of spec sent on spec's channel, and
// returns its mid; otherwise why says what is wrong. target is nil when no
// such object exists.
func reactionTarget(spec *igv1.InstagramMessageSpec, target *igv1.InstagramMessage) (mid, why string) {
	ref := spec.SenderAction.MessageRef.Name
	switch {
	case target == nil:
		return "", fmt.Sprintf("spec.senderAction.messageRef: InstagramMessage %q not found", ref)
	case target.Spec.ChannelRef.Name != spec.ChannelRef.Name:
		return "", fmt.Sprintf("spec.senderAction.messageRef: %q belongs to channel %q, not %q", ref, target.Spec.ChannelRef.Name, spec.ChannelRef.Name)
	case target.Spec.Direction != igv1.DirectionIncoming || target.Status.IsEcho:
		return "", fmt.Sprintf("spec.senderAction.messageRef: %q is not a message of the customer (only a customer's message can be reacted to)", ref)
	case target.Spec.ContactID != spec.ContactID:
		return "", fmt.Sprintf("spec.senderAction.messageRef: %q is from contact %s, not %s", ref, target.Spec.ContactID, spec.ContactID)
	case target.Status.MessageID == "":
		return "", fmt.Sprintf("spec.senderAction.messageRef: %q has no status.messageID", ref)
	}
	return target.Status.MessageID, ""
}

// sendRequest builds the request for msg, reading the message a reaction
// names. A reference that cannot be sent is a final failure (reason
// InvalidReference) decided before any call: bad is then set.
func (r *InstagramMessageReconciler) sendRequest(ctx context.Context, msg *igv1.InstagramMessage, target *sendTarget) (req instagram.SendRequest, bad *sendOutcome, err error) {
	mid := ""
	if a := msg.Spec.SenderAction; a != nil {
		mid = a.MessageID
		if a.MessageRef != nil {
			// Incoming messages are not in the manager's cache.
			obj := &igv1.InstagramMessage{}
			err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: msg.Namespace, Name: a.MessageRef.Name}, obj)
			switch {
			case apierrors.IsNotFound(err):
				obj = nil
			case err != nil:
				return req, nil, fmt.Errorf("get message %s: %w", a.MessageRef.Name, err)
			}
			var why string
			if mid, why = reactionTarget(&msg.Spec, obj); why != "" {
				return req, &sendOutcome{reason: igv1.ReasonInvalidReference, message: why}, nil
			}
		}
	}
	req = buildSendRequest(&msg.Spec, target.account, mid)
	if ref := msg.Spec.PrivateReplyTo; ref != nil {
		commentID, bad, err := r.claimPrivateReply(ctx, msg, ref.Name)
		if err != nil || bad != nil {
			return req, bad, err
		}
		req.CommentID, req.RecipientID = commentID, ""
	}
	// The account's turn is checked before the message is marked Sending:
	// a send that waits for its turn while marked Sending would be
	// reported DeliveryUnknown if the manager stopped meanwhile.
	if wait := target.api.AccountWait(req.AccountID, req.RateKind()); wait > 0 {
		return req, &sendOutcome{retry: true, retryAfter: wait, reason: igv1.ReasonRateLimited,
			message: fmt.Sprintf("account %s is at Instagram's per-account limit for %s sends", req.AccountID, req.RateKind())}, nil
	}
	return req, nil, nil
}

// notSending records why msg is not sent now, decided before any call: a
// final failure (bad.retry false), or a wait for the account's turn, which
// keeps it Pending until then without counting an attempt.
func (r *InstagramMessageReconciler) notSending(ctx context.Context, msg *igv1.InstagramMessage, bad sendOutcome) (ctrl.Result, error) {
	now := r.now()
	if !bad.retry {
		return r.writeLocked(ctx, msg, failedStatus(bad, now))
	}
	next := now.Add(max(bad.retryAfter, time.Second))
	res, err := r.writeLocked(ctx, msg, func(m *igv1.InstagramMessage) {
		s := &m.Status
		s.Phase = igv1.PhasePending
		s.NextAttemptAt = &metav1.Time{Time: next}
		s.Reason = bad.reason
		s.Message = bad.message + "; next attempt at " + next.UTC().Format(time.RFC3339)
		s.ObservedGeneration = m.Generation
		setMessageCondition(m, igv1.ConditionReady, metav1.ConditionFalse, bad.reason, s.Message, now)
		setMessageCondition(m, igv1.ConditionReconciling, metav1.ConditionTrue, bad.reason, s.Message, now)
	})
	if err != nil || res.RequeueAfter > 0 {
		return res, err
	}
	return ctrl.Result{RequeueAfter: next.Sub(now)}, nil
}

// privateReplyCheck decides whether msg may be the private reply to
// comment: a comment of msg's channel, not live, within Instagram's seven
// days, and without another private reply. claimer is the message that
// holds the comment's reply (nil when none, or when it is gone); channel
// is msg's channel.
func privateReplyCheck(msg *igv1.InstagramMessage, ch *igv1.InstagramChannel, comment *igv1.InstagramComment, claimer *igv1.InstagramMessage, now time.Time) (reason, why string) {
	ref := msg.Spec.PrivateReplyTo.Name
	switch {
	case comment == nil:
		return igv1.ReasonInvalidReference, fmt.Sprintf("spec.privateReplyTo: InstagramComment %q not found", ref)
	case comment.Spec.ChannelRef.Name != msg.Spec.ChannelRef.Name:
		return igv1.ReasonInvalidReference, fmt.Sprintf("spec.privateReplyTo: %q is a comment of channel %q, not %q", ref, comment.Spec.ChannelRef.Name, msg.Spec.ChannelRef.Name)
	case ch != nil && !slices.Contains(ch.Spec.Scopes, igv1.ScopeManageComments):
		return igv1.ReasonScopeMissing, fmt.Sprintf("channel %q lacks scope %s in spec.scopes, which private replies need", ch.Name, igv1.ScopeManageComments)
	case comment.Spec.Live:
		return igv1.ReasonNotAllowed, fmt.Sprintf("spec.privateReplyTo: %q is a live comment: Instagram takes its private reply only during the broadcast", ref)
	case claimer != nil && claimer.UID != msg.UID && !(claimer.Status.Phase == igv1.PhaseFailed && claimer.Status.Reason != igv1.ReasonDeliveryUnknown):
		return igv1.ReasonAlreadyReplied, fmt.Sprintf("spec.privateReplyTo: comment %q already has its private reply (InstagramMessage %q); Instagram allows one", ref, claimer.Name)
	}
	if at := commentTime(comment); now.Sub(at) > igv1.PrivateReplyWindow {
		return igv1.ReasonReplyWindowClosed, fmt.Sprintf("spec.privateReplyTo: comment %q is from %s, more than 7 days ago: Instagram no longer takes a private reply",
			ref, at.UTC().Format(time.RFC3339))
	}
	return "", ""
}

// commentTime is when the comment was made, as near as it is known.
func commentTime(c *igv1.InstagramComment) time.Time {
	switch {
	case c.Status.EventTime != nil:
		return c.Status.EventTime.Time
	case c.Status.ReceivedAt != nil:
		return c.Status.ReceivedAt.Time
	}
	return c.CreationTimestamp.Time
}

// claimPrivateReply checks that msg may reply privately to the comment
// named ref and claims the comment's one private reply for msg
// (status.actions.privateReply, written under an optimistic lock), before
// msg is marked Sending: of two messages for one comment only one gets to
// call Instagram. It returns the comment's ID.
func (r *InstagramMessageReconciler) claimPrivateReply(ctx context.Context, msg *igv1.InstagramMessage, ref string) (string, *sendOutcome, error) {
	comment := &igv1.InstagramComment{}
	switch err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: msg.Namespace, Name: ref}, comment); {
	case apierrors.IsNotFound(err):
		comment = nil
	case err != nil:
		return "", nil, fmt.Errorf("get comment %s: %w", ref, err)
	}
	var ch *igv1.InstagramChannel
	if c := (&igv1.InstagramChannel{}); r.Get(ctx, client.ObjectKey{Namespace: msg.Namespace, Name: msg.Spec.ChannelRef.Name}, c) == nil {
		ch = c
	}
	var claimer *igv1.InstagramMessage
	if comment != nil && comment.Status.Actions != nil && comment.Status.Actions.PrivateReply != "" {
		name := comment.Status.Actions.PrivateReply
		if name == msg.Name {
			claimer = msg
		} else {
			claimer = &igv1.InstagramMessage{}
			switch err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: msg.Namespace, Name: name}, claimer); {
			case apierrors.IsNotFound(err):
				claimer = nil
			case err != nil:
				return "", nil, fmt.Errorf("get message %s: %w", name, err)
			}
		}
	}
	if reason, why := privateReplyCheck(msg, ch, comment, claimer, r.now()); reason != "" {
		return "", &sendOutcome{reason: reason, message: why}, nil
	}
	if claimer != msg {
		base := comment.DeepCopy()
		if comment.Status.Actions == nil {
			comment.Status.Actions = &igv1.CommentActionsStatus{}
		}
		comment.Status.Actions.PrivateReply = msg.Name
		if err := r.Status().Patch(ctx, comment, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return "", nil, fmt.Errorf("claim the private reply of comment %s: %w", ref, err)
		}
	}
	return comment.Spec.CommentID, nil, nil
}

// withMoreMIDs records the further mids of a send that Instagram recorded
// as several messages, after apply (sentStatus).
func withMoreMIDs(apply func(*igv1.InstagramMessage), more []string) func(*igv1.InstagramMessage) {
	if len(more) == 0 {
		return apply
	}
	return func(m *igv1.InstagramMessage) {
		apply(m)
		m.Status.MessageIDs = slices.Clone(more)
	}
}

// finishMoreMIDs is the echo protocol (see finish) for the further mids of
// a send: each gets its label (names.MIDLabelKey), then any echo the
// receiver wrote for it is deleted. It runs before finish sets done=true.
func (r *InstagramMessageReconciler) finishMoreMIDs(ctx context.Context, msg *igv1.InstagramMessage) error {
	more := msg.Status.MessageIDs
	if len(more) == 0 || msg.Labels[igv1.LabelDone] == "true" {
		return nil
	}
	add := map[string]string{}
	for _, mid := range more {
		if k := names.MIDLabelKey(mid); msg.Labels[k] != "true" {
			add[k] = "true"
		}
	}
	if len(add) > 0 {
		if err := r.patchLabels(ctx, msg, add); err != nil {
			return err
		}
	}
	for _, mid := range more {
		echo := &igv1.InstagramMessage{ObjectMeta: metav1.ObjectMeta{
			Namespace: msg.Namespace,
			Name:      names.IncomingMessageName(msg.Spec.ChannelRef.Name, mid),
		}}
		if err := r.Delete(ctx, echo); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete echo of own send: %w", err)
		}
	}
	return nil
}
