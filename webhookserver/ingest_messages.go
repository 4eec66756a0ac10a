package webhookserver

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

// Messages and echoes: the events that carry content.

// message records a customer's message. Unless it came on the standby
// channel (another app answers it), it is labelled awaiting-reply until the
// business answers.
func (g *ingester) message(ctx context.Context, ev *event) (string, error) {
	m := ev.item.Message
	if m.MID == "" {
		return resultInvalid, nil
	}
	obj, fit := g.messageObject(ev, m, names.IncomingMessageName(ev.route.Name, m.MID), igv1.EventLabelMessage)
	if !ev.item.Standby {
		obj.Labels[igv1.LabelAwaitingReply] = "true"
	}
	if _, err := g.ensure(ctx, obj, g.receivedStatus(ev, m.MID, fit)); err != nil {
		return "", err
	}
	return resultStored, nil
}

// echo records a message the business sent from any client as an outgoing
// message that is already Sent (spec.echo), unless it is the echo of the
// manager's own send. Either way the business has answered: the
// conversation's awaiting-reply labels up to the echo are removed.
//
// The echo protocol: the manager, once its send succeeded, labels the
// outgoing object with names.MIDHash(mid) and then deletes any object named
// names.IncomingMessageName(channel, mid); the receiver creates that object
// and then looks for the label. Each side writes, then checks the other's
// write, so whichever order the two run in, exactly one object per mid
// remains: the manager's.
func (g *ingester) echo(ctx context.Context, ev *event) (string, error) {
	m := ev.item.Message
	if m.MID == "" {
		return resultInvalid, nil
	}
	result, err := g.recordEcho(ctx, ev, m)
	if err != nil {
		return "", err
	}
	if err := g.answered(ctx, ev); err != nil {
		return "", err
	}
	return result, nil
}

func (g *ingester) recordEcho(ctx context.Context, ev *event, m *Message) (string, error) {
	if out, err := g.findOutgoing(ctx, ev.route, m.MID); err != nil || out != nil {
		return resultOwnSend, err
	}
	obj, fit := g.messageObject(ev, m, names.IncomingMessageName(ev.route.Name, m.MID), igv1.EventLabelEcho)
	obj.Spec.Direction = igv1.DirectionOutgoing
	obj.Spec.Echo = true
	obj.Labels[igv1.LabelDirection] = igv1.DirectionLabelOutgoing
	// Done from the start: the manager never caches, sends or finishes it.
	obj.Labels[igv1.LabelDone] = "true"
	receive := g.receivedStatus(ev, m.MID, fit)
	created, err := g.ensure(ctx, obj, func(o *igv1.InstagramMessage) {
		receive(o)
		if o.Status.Phase == igv1.PhaseReceived {
			o.Status.Phase = igv1.PhaseSent
			o.Status.SentAt = o.Status.Timestamp
			g.markReady(o)
		}
	})
	if err != nil {
		return "", err
	}
	out, err := g.findOutgoing(ctx, ev.route, m.MID)
	if err != nil || out == nil {
		return resultStored, err
	}
	if created != nil {
		err := g.c.Delete(ctx, created, client.Preconditions{UID: &created.UID})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return "", fmt.Errorf("delete echo of own send: %w", err)
		}
	}
	return resultOwnSend, nil
}

// answered removes the awaiting-reply label from the customer's messages
// that the business's message at ev.at answers (those sent before it). The
// list is by label, so it costs what is still unanswered, not the
// conversation's history.
func (g *ingester) answered(ctx context.Context, ev *event) error {
	var list igv1.InstagramMessageList
	err := g.live.List(ctx, &list, client.InNamespace(ev.route.Namespace), client.MatchingLabels{
		igv1.LabelChannel: ev.route.Name, igv1.LabelContact: ev.contact, igv1.LabelAwaitingReply: "true",
	})
	if err != nil {
		return fmt.Errorf("list messages awaiting a reply: %w", err)
	}
	at := g.when(ev)
	for i := range list.Items {
		m := &list.Items[i]
		if t, ok := eventTime(m); ok && t.After(at) {
			continue
		}
		err := g.patchSpec(ctx, m, func(o *igv1.InstagramMessage) bool {
			if o.Labels[igv1.LabelAwaitingReply] == "" {
				return false
			}
			o.Labels = maps.Clone(o.Labels)
			delete(o.Labels, igv1.LabelAwaitingReply)
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// messageObject is the object recording a message or echo; fit names what
// had to be cut to fit the schema.
func (g *ingester) messageObject(ev *event, m *Message, name, eventLabel string) (*igv1.InstagramMessage, *fitter) {
	fit := &fitter{}
	obj := g.newIncoming(ev, name, eventLabel)
	obj.Spec.Text = fit.text("spec.text", m.Text, maxTextBytes)
	obj.Spec.Attachments = attachments(fit, m.Attachments)
	if r := m.ReplyTo; r != nil {
		obj.Spec.ReplyTo = fit.id("spec.replyTo", r.MID, maxReplyToBytes)
		if r.Story != nil {
			obj.Spec.ReplyToStory = &igv1.StoryReference{
				ID:  fit.id("spec.replyToStory.id", string(r.Story.ID), maxIDBytes),
				URL: fit.id("spec.replyToStory.url", r.Story.URL, maxURLBytes),
			}
		}
	}
	return obj, fit
}

// receivedStatus is the first status of an object recording an item.
func (g *ingester) receivedStatus(ev *event, mid string, fit *fitter) func(*igv1.InstagramMessage) {
	return func(obj *igv1.InstagramMessage) {
		s := &obj.Status
		s.Phase = igv1.PhaseReceived
		s.MessageID = mid
		s.Timestamp = timeOf(ev.at)
		s.EventTime = microOf(ev.at)
		s.ReceivedAt = microOf(g.clock.Now())
		s.Standby = ev.item.Standby
		s.UnknownFields = boundedKeys(ev.item.Unknown)
		if m := ev.item.Message; m != nil {
			s.IsEcho = m.IsEcho
			s.Unsupported = m.IsUnsupported
			if m.QuickReply != nil {
				s.QuickReplyPayload = m.QuickReply.Payload
			}
			if m.Referral != nil {
				s.Referral = referral(m.Referral)
			}
		}
		if fit != nil {
			s.Clipped = fit.clipped
		}
		g.markReady(obj)
	}
}

// eventTime is the best time an object records for its event.
func eventTime(m *igv1.InstagramMessage) (time.Time, bool) {
	switch {
	case m.Status.EventTime != nil:
		return m.Status.EventTime.Time, true
	case m.Status.Timestamp != nil:
		return m.Status.Timestamp.Time, true
	}
	return time.Time{}, false
}

func referral(r *Referral) *igv1.Referral {
	out := &igv1.Referral{Ref: r.Ref, Source: r.Source, Type: r.Type, AdID: string(r.AdID)}
	if a := r.AdsContextData; a != nil {
		out.AdsContext = &igv1.AdsContext{AdTitle: a.AdTitle, PhotoURL: a.PhotoURL, VideoURL: a.VideoURL, PostID: string(a.PostID)}
	}
	if r.Product != nil {
		out.ProductID = string(r.Product.ID)
	}
	return out
}

// attachments converts what Instagram sent into what the schema admits: an
// attachment type it does not know is kept when it fits the schema's
// pattern (lower-cased), else becomes "unknown"; the lasting media id is
// kept apart from the URL, which expires; a URL too long to be stored is
// dropped and named in status.clipped.
func attachments(fit *fitter, in []Attachment) []igv1.Attachment {
	if len(in) == 0 {
		return nil
	}
	if len(in) > maxAttachments {
		fit.clipped = append(fit.clipped, "spec.attachments")
		in = in[:maxAttachments]
	}
	out := make([]igv1.Attachment, 0, len(in))
	for i, a := range in {
		p := a.Payload
		field := "spec.attachments[" + strconv.Itoa(i) + "]"
		t := attachmentType(a.Type)
		url := p.URL
		if url == "" {
			url = p.StoryMediaURL
		}
		mediaID := p.StoryMediaID
		for _, id := range []string{p.ReelVideoID, p.PostMediaID, p.ID} {
			if mediaID == "" {
				mediaID = id
			}
		}
		at := igv1.Attachment{
			Type:         t,
			URL:          fit.id(field+".url", url, maxURLBytes),
			Title:        fit.text(field+".title", p.Title, maxTitleBytes),
			MediaID:      fit.id(field+".mediaID", mediaID, maxIDBytes),
			AttachmentID: fit.id(field+".attachmentID", p.AttachmentID, maxIDBytes),
			StickerID:    fit.id(field+".stickerID", p.StickerID, maxIDBytes),
			Extra:        extra(fit, field, p, a.Type, t),
		}
		out = append(out, at)
	}
	return out
}

// extra keeps the payload keys that have no field, and the original type
// when it had to be renamed.
func extra(fit *fitter, field string, p AttachmentPayload, original, stored string) map[string]string {
	if len(p.Extra) == 0 && original == stored {
		return nil
	}
	out := map[string]string{}
	if original != stored {
		out["type"] = fit.text(field+".extra.type", original, maxExtraBytes)
	}
	keys := slices.Sorted(maps.Keys(p.Extra))
	for _, k := range keys {
		if len(out) >= maxExtraKeys {
			fit.clipped = append(fit.clipped, field+".extra")
			break
		}
		out[clip(k, 64)] = fit.text(field+".extra."+k, p.Extra[k], maxExtraBytes)
	}
	return out
}

// attachmentType mirrors the schema's ^[a-z_]{1,32}$: a type Instagram adds
// later is kept, lower-cased, when it fits; else it is "unknown" (and the
// original goes into extra.type).
func attachmentType(t string) string {
	lower := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower = append(lower, c)
	}
	if validAttachmentType(string(lower)) {
		return string(lower)
	}
	return "unknown"
}

// validAttachmentType mirrors the schema's ^[a-z_]{1,32}$.
func validAttachmentType(t string) bool {
	if t == "" || len(t) > 32 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if (t[i] < 'a' || t[i] > 'z') && t[i] != '_' {
			return false
		}
	}
	return true
}
