package webhookserver

import (
	"context"
	"fmt"
	"maps"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
	"github.com/leadchat/instagram-operator/internal/replywindow"
)

// Contacts: one InstagramContact per (channel, customer). The receiver
// records that the customer exists, when they wrote, which of their events
// open the reply window, and when the business last answered; it holds no
// token, so the manager fetches the profile. Every write is a max/min of
// times, so redeliveries and events out of order change nothing, and two
// replicas recording the same new customer make one object (create, then
// an optimistically locked patch).

// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramcontacts,verbs=get;create;patch
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramcontacts/status,verbs=get;patch

// recordContact updates the contact of an event that apply recorded with
// result. Events that say nothing about the customer (reads, edits,
// unsends, comments, handovers, opt-ins) leave it alone.
func (g *ingester) recordContact(ctx context.Context, ev *event, result string) error {
	if result != resultStored && result != resultOwnSend {
		return nil
	}
	at := g.when(ev)
	switch ev.typ {
	case EventMessage:
		return g.touchContact(ctx, ev, g.customerWrote(messageOpener(ev.item.Message), at))
	case EventPostback:
		return g.touchContact(ctx, ev, g.customerWrote(igv1.OpenerPostback, at))
	case EventReferral:
		return g.touchContact(ctx, ev, g.customerWrote(igv1.OpenerReferral, at))
	case EventReaction:
		if string(ev.item.Sender.ID) != ev.contact {
			// The business's own reaction.
			return nil
		}
		return g.touchContact(ctx, ev, g.customerWrote(igv1.OpenerReaction, at))
	case EventEcho:
		return g.touchContact(ctx, ev, g.businessAnswered(at))
	}
	return nil
}

// messageOpener tells a message that opens the window (text, media, share,
// story reply, quick-reply tap) from a story mention, whose effect Meta
// does not document.
func messageOpener(m *Message) string {
	if m == nil || m.Text != "" || len(m.Attachments) == 0 {
		return igv1.OpenerMessage
	}
	for _, a := range m.Attachments {
		if attachmentType(a.Type) != "story_mention" {
			return igv1.OpenerMessage
		}
	}
	return igv1.OpenerStoryMention
}

// customerWrote records a customer's event of kind opener at at.
func (g *ingester) customerWrote(opener string, at time.Time) func(*igv1.InstagramContact) bool {
	return func(c *igv1.InstagramContact) bool {
		s := &c.Status
		changed := false
		if s.FirstMessageAt == nil || at.Before(s.FirstMessageAt.Time) {
			s.FirstMessageAt, changed = microOf(at), true
		}
		if s.LastMessageAt == nil || at.After(s.LastMessageAt.Time) {
			s.LastMessageAt, changed = microOf(at), true
		}
		w := &s.Window
		switch {
		case opener == igv1.OpenerMessage:
			if w.OpenedAt == nil || at.After(w.OpenedAt.Time) {
				w.OpenedAt, changed = microOf(at), true
			}
		case w.UnconfirmedAt == nil || at.After(w.UnconfirmedAt.Time):
			w.UnconfirmedAt, w.UnconfirmedBy, changed = microOf(at), opener, true
		}
		// The customer wrote: consent exists now, and a block is lifted.
		// Removing the manager's mark wakes it to fetch the profile again.
		if c.Labels[igv1.LabelProfile] != "" {
			c.Labels = maps.Clone(c.Labels)
			delete(c.Labels, igv1.LabelProfile)
			changed = true
		}
		if replywindow.Apply(c, replywindow.Compute(replywindow.Of(s), g.clock.Now())) {
			changed = true
		}
		return changed
	}
}

// businessAnswered records a message of the business at at.
func (g *ingester) businessAnswered(at time.Time) func(*igv1.InstagramContact) bool {
	return func(c *igv1.InstagramContact) bool {
		s := &c.Status
		changed := false
		if s.LastAnsweredAt == nil || at.After(s.LastAnsweredAt.Time) {
			s.LastAnsweredAt, changed = microOf(at), true
		}
		if replywindow.Apply(c, replywindow.Compute(replywindow.Of(s), g.clock.Now())) {
			changed = true
		}
		return changed
	}
}

// touchContact creates the contact of ev's customer when it is missing and
// applies mutate to its status and labels.
func (g *ingester) touchContact(ctx context.Context, ev *event, mutate func(*igv1.InstagramContact) bool) error {
	r := ev.route
	obj := &igv1.InstagramContact{
		ObjectMeta: metav1.ObjectMeta{
			Name:      names.ContactName(r.Name, ev.contact),
			Namespace: r.Namespace,
			Labels: map[string]string{
				igv1.LabelChannel: r.Name,
				igv1.LabelContact: ev.contact,
			},
			OwnerReferences: ownerRef(r),
		},
		Spec: igv1.ContactSpec{ChannelRef: igv1.ChannelReference{Name: r.Name}, ContactID: ev.contact},
	}
	// Most events are from customers already recorded: read first, so that
	// a redelivery costs one read and a new message one read and one patch.
	key := client.ObjectKeyFromObject(obj)
	want := obj.DeepCopy()
	err := g.live.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		obj = want
		err = g.c.Create(ctx, obj)
		if apierrors.IsAlreadyExists(err) {
			// Another replica (or delivery) was first.
			err = g.live.Get(ctx, key, obj)
		}
	}
	switch {
	case err == nil:
	case apierrors.IsNotFound(err):
		// Removed by retention between the two calls: Meta's retry of the
		// delivery records it anew.
		return fmt.Errorf("%w: contact %s deleted meanwhile", errRetry, key.Name)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("%w: create contact: %w", errInvalid, err)
	default:
		return fmt.Errorf("record contact %s: %w", key.Name, err)
	}
	if obj.Spec.ChannelRef.Name != r.Name || obj.Spec.ContactID != ev.contact {
		return fmt.Errorf("%w: %s exists and is not the contact of this customer", errInvalid, obj.Name)
	}
	return patchLocked(ctx, g.live, obj, mutate, func(base *igv1.InstagramContact) error {
		labels := obj.Labels
		if err := g.c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return err
		}
		if maps.Equal(labels, obj.Labels) {
			return nil
		}
		before := obj.DeepCopy()
		obj.Labels = labels
		return g.c.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	})
}
