package webhookserver

import (
	"context"
	"strconv"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

// Postbacks, referrals, opt-ins and handovers: events about a conversation
// that carry no message content of their own. Each becomes an incoming
// object, labelled with its event kind, so a bot selects them like
// messages.

// postback records a button tap as an incoming object keyed by its mid. It
// asks for an answer like a message does.
func (g *ingester) postback(ctx context.Context, ev *event) (string, error) {
	obj, status := g.postbackObject(ev)
	if _, err := g.ensure(ctx, obj, status); err != nil {
		return "", err
	}
	return resultStored, nil
}

// postbackObject is the object recording a postback and its first status.
func (g *ingester) postbackObject(ev *event) (*igv1.InstagramMessage, func(*igv1.InstagramMessage)) {
	p := ev.item.Postback
	fit := &fitter{}
	obj := g.newIncoming(ev, names.IncomingMessageName(ev.route.Name, postbackKey(ev)), igv1.EventLabelPostback)
	obj.Spec.Text = fit.text("spec.text", p.Title, maxTextBytes)
	if !ev.item.Standby {
		obj.Labels[igv1.LabelAwaitingReply] = "true"
	}
	receive := g.receivedStatus(ev, p.MID, fit)
	return obj, func(o *igv1.InstagramMessage) {
		receive(o)
		o.Status.Postback = &igv1.Postback{Title: p.Title, Payload: p.Payload}
		if p.Referral != nil {
			o.Status.Postback.Referral = referral(p.Referral)
		}
	}
}

// postbackKey names a postback: its mid, or a synthetic key.
func postbackKey(ev *event) string {
	if mid := ev.item.Postback.MID; mid != "" {
		return mid
	}
	return syntheticKey("postback", ev)
}

// referral records where a conversation came from (messaging_referral: an
// ig.me link tapped in an existing thread). A referral has no mid; its
// object is keyed by sender and timestamp, which Meta repeats unchanged on
// a redelivery.
func (g *ingester) referral(ctx context.Context, ev *event) (string, error) {
	return g.record(ctx, ev, "referral", igv1.EventLabelReferral, func(o *igv1.InstagramMessage) {
		o.Status.Referral = referral(ev.item.Referral)
	})
}

// optin records a customer's opt-in. A notification token is not stored
// (hasToken says one came): it is a credential.
func (g *ingester) optin(ctx context.Context, ev *event) (string, error) {
	o := optinOf(ev.item.Optin)
	return g.record(ctx, ev, "optin", igv1.EventLabelOptin, func(obj *igv1.InstagramMessage) {
		obj.Status.Optin = o
	})
}

// optinOf is what an opt-in records.
func optinOf(in *Optin) *igv1.Optin {
	return &igv1.Optin{
		Type:           in.Type,
		Payload:        in.Payload,
		Title:          in.Title,
		Ref:            in.Ref,
		Frequency:      in.NotificationMessagesFrequency,
		Timezone:       in.NotificationMessagesTimezone,
		TokenStatus:    in.UserTokenStatus,
		TokenExpiresAt: microOf(MetaTime(in.TokenExpiryTimestamp)),
		HasToken:       in.NotificationMessagesToken != "",
	}
}

// handover records a change of the app that controls the conversation.
func (g *ingester) handover(ctx context.Context, ev *event) (string, error) {
	h := handoverOf(ev.item)
	return g.record(ctx, ev, "handover", igv1.EventLabelHandover, func(o *igv1.InstagramMessage) {
		o.Status.Handover = h
	})
}

// handoverOf is what a change of thread control records.
func handoverOf(it *Item) *igv1.Handover {
	h := &igv1.Handover{}
	var tc *ThreadControl
	switch {
	case it.PassThreadControl != nil:
		h.Action, tc = "pass", it.PassThreadControl
	case it.TakeThreadControl != nil:
		h.Action, tc = "take", it.TakeThreadControl
	default:
		h.Action, tc = "request", it.RequestThreadControl
	}
	h.PreviousOwnerAppID = string(tc.PreviousOwnerAppID)
	h.NewOwnerAppID = string(tc.NewOwnerAppID)
	h.RequestedOwnerAppID = string(tc.RequestedOwnerAppID)
	h.Metadata = clip(tc.Metadata, maxTitleBytes)
	return h
}

// record stores an event without a mid under a synthetic key.
func (g *ingester) record(ctx context.Context, ev *event, kind, eventLabel string, details func(*igv1.InstagramMessage)) (string, error) {
	obj := g.newIncoming(ev, names.IncomingMessageName(ev.route.Name, syntheticKey(kind, ev)), eventLabel)
	receive := g.receivedStatus(ev, "", nil)
	_, err := g.ensure(ctx, obj, func(o *igv1.InstagramMessage) {
		receive(o)
		details(o)
	})
	if err != nil {
		return "", err
	}
	return resultStored, nil
}

// syntheticKey stands in for a mid; the "/" keeps it apart from every real
// mid, which never contains one.
func syntheticKey(kind string, ev *event) string {
	return kind + "/" + string(ev.item.Sender.ID) + "/" + strconv.FormatInt(int64(ev.item.Timestamp), 10)
}
