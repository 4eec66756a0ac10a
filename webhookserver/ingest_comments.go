package webhookserver

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

// Comments, live comments and mentions: changes notifications, recorded as
// InstagramComment objects named after (channel, comment id).

// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramcomments,verbs=get;create;patch
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramcomments/status,verbs=get;patch

// commentEvent decodes a changes notification into an event; ok is false
// for one that is counted and skipped (an unknown field, a value that
// cannot be decoded or names no comment).
func (g *ingester) commentEvent(r *route, e *Entry, c *Change) (*event, bool) {
	typ := changeKind(c.Field)
	if typ == EventUnknown {
		eventsTotal.WithLabelValues(string(typ), resultIgnored).Inc()
		g.log.Info("Unknown changes field ignored", "field", clip(c.Field, 64), "channel", r.Name, "namespace", r.Namespace)
		return nil, false
	}
	var v CommentValue
	if err := json.Unmarshal(c.Value, &v); err != nil || commentKey(&v) == "" {
		eventsTotal.WithLabelValues(string(typ), resultInvalid).Inc()
		g.log.Info("Comment notification without a usable comment skipped", "field", c.Field, "channel", r.Name, "namespace", r.Namespace)
		return nil, false
	}
	unknown := unknownKeys(c.Value, knownCommentKeys, "")
	if len(unknown) > 0 {
		unknownFieldsTotal.WithLabelValues(string(typ)).Add(float64(len(unknown)))
	}
	at := MetaTime(v.CreatedTime)
	if at.IsZero() {
		at = MetaTime(e.Time)
	}
	return &event{typ: typ, route: r, change: c, comment: &v, at: at, item: &Item{Unknown: unknown}}, true
}

// commentKey is what names a comment: its id, or for a mention of the
// account in a caption (no comment), the media's.
func commentKey(v *CommentValue) string {
	switch {
	case v.ID != "":
		return string(v.ID)
	case v.CommentID != "":
		return string(v.CommentID)
	case v.MediaID != "":
		return "media/" + string(v.MediaID)
	}
	return ""
}

// recordComment creates the comment, or applies an edit or removal Meta
// reports for it. A mention of a comment already recorded marks it.
func (g *ingester) recordComment(ctx context.Context, ev *event) (string, error) {
	v := ev.comment
	obj, fit := g.commentObject(ev)
	want := obj.Spec
	existing, err := g.ensureComment(ctx, obj, func(o *igv1.InstagramComment) {
		o.Status.EventTime = microOf(ev.at)
		o.Status.ReceivedAt = microOf(g.clock.Now())
		o.Status.Clipped = fit.clipped
		o.Status.UnknownFields = boundedKeys(ev.item.Unknown)
		if v.Verb == "remove" {
			o.Status.DeletedAt = microOf(g.when(ev))
		}
		g.commentReady(o)
	})
	if err != nil || existing == nil {
		return resultStored, err
	}
	err = patchLocked(ctx, g.live, existing, func(o *igv1.InstagramComment) bool {
		changed := false
		if ev.typ == EventMention && !o.Spec.Mention {
			o.Spec.Mention = true
			changed = true
		}
		switch v.Verb {
		case "remove":
			if o.Spec.Text != "" {
				o.Spec.Text = ""
				changed = true
			}
		case "edited", "edit":
			if o.Status.DeletedAt == nil && o.Spec.Text != want.Text {
				o.Spec.Text = want.Text
				changed = true
			}
		}
		return changed
	}, func(base *igv1.InstagramComment) error {
		return g.c.Patch(ctx, existing, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		return "", err
	}
	err = patchLocked(ctx, g.live, existing, func(o *igv1.InstagramComment) bool {
		changed := false
		switch v.Verb {
		case "remove":
			if o.Status.DeletedAt == nil {
				o.Status.DeletedAt = microOf(g.when(ev))
				changed = true
			}
		case "edited", "edit":
			if o.Status.DeletedAt == nil && (o.Status.EditedAt == nil || ev.at.After(o.Status.EditedAt.Time)) && o.Status.EventTime != nil && ev.at.After(o.Status.EventTime.Time) {
				o.Status.EditedAt = microOf(ev.at)
				changed = true
			}
		}
		if changed || o.Status.ObservedGeneration != o.Generation {
			g.commentReady(o)
			changed = true
		}
		return changed
	}, func(base *igv1.InstagramComment) error {
		return g.c.Status().Patch(ctx, existing, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		return "", err
	}
	return resultStored, nil
}

func (g *ingester) commentObject(ev *event) (*igv1.InstagramComment, *fitter) {
	v, r := ev.comment, ev.route
	fit := &fitter{}
	eventLabel := igv1.EventLabelComment
	switch ev.typ {
	case EventLiveComment:
		eventLabel = igv1.EventLabelLiveComment
	case EventMention:
		eventLabel = igv1.EventLabelMention
	}
	mediaID := string(v.Media.ID)
	if mediaID == "" {
		mediaID = string(v.MediaID)
	}
	obj := &igv1.InstagramComment{
		ObjectMeta: metav1.ObjectMeta{
			Name:      names.CommentName(r.Name, commentKey(v)),
			Namespace: r.Namespace,
			Labels: map[string]string{
				igv1.LabelChannel: r.Name,
				igv1.LabelEvent:   eventLabel,
			},
			OwnerReferences: ownerRef(r),
		},
		Spec: igv1.InstagramCommentSpec{
			ChannelRef: igv1.ChannelReference{Name: r.Name},
			CommentID:  fit.id("spec.commentID", commentKey(v), maxIDBytes),
			ParentID:   fit.id("spec.parentID", string(v.ParentID), maxIDBytes),
			Media: igv1.CommentMedia{
				ID:              fit.id("spec.media.id", mediaID, maxIDBytes),
				ProductType:     fit.id("spec.media.productType", v.Media.MediaProductType, 64),
				AdID:            fit.id("spec.media.adID", string(v.Media.AdID), maxIDBytes),
				AdTitle:         fit.text("spec.media.adTitle", v.Media.AdTitle, maxTitleBytes),
				OriginalMediaID: fit.id("spec.media.originalMediaID", string(v.Media.OriginalMediaID), maxIDBytes),
			},
			From: igv1.CommentAuthor{
				ID:             fit.id("spec.from.id", string(v.From.ID), 64),
				Username:       fit.text("spec.from.username", v.From.Username, maxIDBytes),
				SelfIGScopedID: fit.id("spec.from.selfIGScopedID", string(v.From.SelfIGScopedID), 64),
			},
			Text:    fit.text("spec.text", v.Text, maxTextBytes),
			Live:    ev.typ == EventLiveComment,
			Mention: ev.typ == EventMention,
		},
	}
	if v.Verb == "remove" {
		obj.Spec.Text = ""
	}
	if l := labelValue(mediaID); l != "" {
		obj.Labels[igv1.LabelMedia] = l
	}
	if l := labelValue(string(v.From.ID)); l != "" {
		obj.Labels[igv1.LabelContact] = l
	}
	return obj, fit
}

// ensureComment is ensure for comments. It returns the live object when it
// existed before (so the caller applies an edit, removal or mention to it),
// nil when it was created now or is gone.
func (g *ingester) ensureComment(ctx context.Context, obj *igv1.InstagramComment, initial func(*igv1.InstagramComment)) (*igv1.InstagramComment, error) {
	err := g.c.Create(ctx, obj)
	existed := false
	switch {
	case apierrors.IsAlreadyExists(err):
		existed = true
		want := obj.Spec
		if err := g.live.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("get comment: %w", err)
		}
		if obj.Spec.ChannelRef != want.ChannelRef || obj.Spec.CommentID != want.CommentID {
			return nil, fmt.Errorf("%w: %s exists and is not this channel's comment", errInvalid, obj.Name)
		}
	case apierrors.IsInvalid(err):
		return nil, fmt.Errorf("%w: create comment: %w", errInvalid, err)
	case err != nil:
		return nil, fmt.Errorf("create comment: %w", err)
	}
	err = patchLocked(ctx, g.live, obj, func(o *igv1.InstagramComment) bool {
		if o.Status.ReceivedAt != nil {
			return false
		}
		initial(o)
		return true
	}, func(base *igv1.InstagramComment) error {
		return g.c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		return nil, err
	}
	if !existed {
		return nil, nil
	}
	return obj, nil
}

func (g *ingester) commentReady(o *igv1.InstagramComment) {
	o.Status.ObservedGeneration = o.Generation
	reason := "Recorded"
	if o.Status.DeletedAt != nil {
		reason = "Deleted"
	}
	g.readyCondition(&o.Status.Conditions, o.Generation, reason)
}
