package webhookserver

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

// Unsends, read receipts, reactions and edits: events that change a message
// already recorded, found by its mid.

// unsend clears a message's content and marks it Deleted. An unsend that
// arrives before its message leaves a tombstone under the message's name,
// so the message, when it arrives, finds the name taken and is never
// recorded with the content the customer withdrew.
func (g *ingester) unsend(ctx context.Context, ev *event) (string, error) {
	mid := ev.item.Message.MID
	if mid == "" {
		return resultInvalid, nil
	}
	target, err := g.findTarget(ctx, ev.route, mid)
	if err != nil {
		return "", err
	}
	if target == nil {
		tomb := g.newIncoming(ev, names.IncomingMessageName(ev.route.Name, mid), igv1.EventLabelMessage)
		target, err = g.ensure(ctx, tomb, func(o *igv1.InstagramMessage) {
			o.Status.Phase = igv1.PhaseDeleted
			o.Status.MessageID = mid
			o.Status.IsEcho = ev.item.Message.IsEcho
			o.Status.DeletedAt = timeOf(g.when(ev))
			g.markReady(o)
		})
		if err != nil || target == nil {
			return resultStored, err
		}
	}
	// The spec of an outgoing message is immutable once sent; only its
	// status records the unsend.
	if target.Spec.Direction == igv1.DirectionIncoming {
		err := g.patchSpec(ctx, target, func(o *igv1.InstagramMessage) bool {
			if o.Spec.Text == "" && len(o.Spec.Attachments) == 0 && o.Spec.ReplyToStory == nil && o.Labels[igv1.LabelAwaitingReply] == "" {
				return false
			}
			o.Spec.Text, o.Spec.Attachments, o.Spec.ReplyToStory = "", nil, nil
			// A withdrawn message asks for no answer.
			o.Labels = maps.Clone(o.Labels)
			delete(o.Labels, igv1.LabelAwaitingReply)
			return true
		})
		if err != nil {
			return "", err
		}
	}
	err = g.patchStatus(ctx, target, func(o *igv1.InstagramMessage) bool {
		changed := false
		if o.Status.Phase != igv1.PhaseDeleted {
			o.Status.Phase = igv1.PhaseDeleted
			o.Status.DeletedAt = timeOf(g.when(ev))
			changed = true
		}
		if o.Spec.Direction == igv1.DirectionIncoming && (changed || o.Status.ObservedGeneration != o.Generation) {
			g.markReady(o)
			changed = true
		}
		return changed
	})
	if err != nil {
		return "", err
	}
	return resultStored, nil
}

// read applies a read receipt as a watermark: the read message and every
// earlier Sent message of the conversation become Read, echoes of what the
// business sent from other clients included. Echoes recorded the old way
// (incoming objects) get readAt without a phase change. A receipt for a message this
// receiver never saw still carries its own timestamp, which bounds what the
// customer can have read; that is the watermark then.
func (g *ingester) read(ctx context.Context, ev *event) (string, error) {
	readAt := g.when(ev)
	watermark := readAt
	var target *igv1.InstagramMessage
	if mid := ev.item.Read.MID; mid != "" {
		var err error
		if target, err = g.findTarget(ctx, ev.route, mid); err != nil {
			return "", err
		}
		if target != nil {
			if t := sentTime(target); t != nil {
				watermark = t.Time
			}
		}
	}
	var list igv1.InstagramMessageList
	err := g.live.List(ctx, &list, client.InNamespace(ev.route.Namespace),
		client.MatchingLabels{igv1.LabelChannel: ev.route.Name, igv1.LabelContact: ev.contact})
	if err != nil {
		return "", fmt.Errorf("list conversation: %w", err)
	}
	candidates := make([]*igv1.InstagramMessage, 0, len(list.Items)+1)
	if target != nil {
		candidates = append(candidates, target)
	}
	for i := range list.Items {
		if target == nil || list.Items[i].UID != target.UID {
			candidates = append(candidates, &list.Items[i])
		}
	}
	for _, m := range candidates {
		isTarget := target != nil && m.UID == target.UID
		covered := func(o *igv1.InstagramMessage) bool {
			if isTarget {
				return true
			}
			t := sentTime(o)
			return t != nil && t.Unix() <= watermark.Unix()
		}
		if !covered(m) || !readable(m) {
			continue
		}
		err := g.patchStatus(ctx, m, func(o *igv1.InstagramMessage) bool {
			if !readable(o) || !covered(o) {
				return false
			}
			if o.Spec.Direction == igv1.DirectionOutgoing {
				o.Status.Phase = igv1.PhaseRead
			}
			o.Status.ReadAt = timeOf(readAt)
			return true
		})
		if err != nil {
			return "", err
		}
	}
	return resultStored, nil
}

// readable: an outgoing message that is Sent (echoes recorded since v0.2
// included), or an echo recorded the old way (incoming, isEcho) not yet
// read.
func readable(m *igv1.InstagramMessage) bool {
	if m.Spec.Direction == igv1.DirectionOutgoing {
		return m.Status.Phase == igv1.PhaseSent
	}
	return m.Status.IsEcho && m.Status.ReadAt == nil && m.Status.Phase == igv1.PhaseReceived
}

func sentTime(m *igv1.InstagramMessage) *metav1.Time {
	if m.Status.SentAt != nil {
		return m.Status.SentAt
	}
	return m.Status.Timestamp
}

// reaction adds or removes the sender's reaction. Instagram keeps one
// reaction per person and message, so a reaction replaces that person's
// previous one; an older event never overrides a newer one.
func (g *ingester) reaction(ctx context.Context, ev *event) (string, error) {
	r := ev.item.Reaction
	if r.MID == "" {
		return resultInvalid, nil
	}
	target, err := g.findTarget(ctx, ev.route, r.MID)
	if err != nil {
		return "", err
	}
	if target == nil {
		return g.orphan(ev)
	}
	by := string(ev.item.Sender.ID)
	at := g.when(ev)
	err = g.patchStatus(ctx, target, func(o *igv1.InstagramMessage) bool {
		return applyReaction(&o.Status, by, r, at)
	})
	if err != nil {
		return "", err
	}
	return resultStored, nil
}

// applyReaction changes the current reactions and the history of a
// message for one reaction event, and reports whether anything changed. It
// is idempotent: a redelivered event changes nothing.
func applyReaction(s *igv1.InstagramMessageStatus, by string, r *Reaction, at time.Time) bool {
	i := slices.IndexFunc(s.Reactions, func(x igv1.Reaction) bool { return x.By == by })
	if i >= 0 && s.Reactions[i].At != nil && s.Reactions[i].At.Unix() > at.Unix() {
		return false
	}
	// The history remembers what the current reactions forget after an
	// unreact: an event no newer than this person's last one is a
	// redelivery or arrives late, and changes nothing.
	for j := len(s.ReactionHistory) - 1; j >= 0; j-- {
		if rec := s.ReactionHistory[j]; rec.By == by {
			if (rec.At != nil && !rec.At.Time.Before(at)) || (rec.RemovedAt != nil && !rec.RemovedAt.Time.Before(at)) {
				return false
			}
			break
		}
	}
	// The open history record of this person, if any.
	h := -1
	for j := len(s.ReactionHistory) - 1; j >= 0; j-- {
		if s.ReactionHistory[j].By == by {
			if s.ReactionHistory[j].RemovedAt == nil {
				h = j
			}
			break
		}
	}
	closeOpen := func() {
		if h >= 0 {
			s.ReactionHistory = slices.Clone(s.ReactionHistory)
			s.ReactionHistory[h].RemovedAt = microOf(at)
		}
	}
	if r.Action == "unreact" {
		if i < 0 {
			return false
		}
		s.Reactions = slices.Delete(slices.Clone(s.Reactions), i, i+1)
		closeOpen()
		return true
	}
	want := igv1.Reaction{Reaction: r.Reaction, Emoji: r.Emoji, By: by, At: timeOf(at)}
	if i >= 0 {
		if cur := s.Reactions[i]; cur.Reaction == want.Reaction && cur.Emoji == want.Emoji {
			return false
		}
		s.Reactions = slices.Clone(s.Reactions)
		s.Reactions[i] = want
	} else {
		s.Reactions = append(slices.Clone(s.Reactions), want)
	}
	closeOpen()
	s.ReactionHistory = append(slices.Clone(s.ReactionHistory), igv1.ReactionRecord{
		Reaction: r.Reaction, Emoji: r.Emoji, By: by, At: microOf(at),
	})
	if over := len(s.ReactionHistory) - maxReactionHistory; over > 0 {
		s.ReactionHistory = s.ReactionHistory[over:]
	}
	return true
}

// edit replaces a message's text. num_edit orders edits; without it the
// event timestamp does, so a redelivered or late edit never undoes a newer
// one.
func (g *ingester) edit(ctx context.Context, ev *event) (string, error) {
	e := ev.item.MessageEdit
	if e.MID == "" {
		return resultInvalid, nil
	}
	target, err := g.findTarget(ctx, ev.route, e.MID)
	if err != nil {
		return "", err
	}
	if target == nil {
		return g.orphan(ev)
	}
	at := g.when(ev)
	num := int32(min(max(int64(e.NumEdit), 0), 1<<30))
	newer := func(o *igv1.InstagramMessage) bool {
		if o.Status.Phase == igv1.PhaseDeleted {
			return false
		}
		if num > 0 {
			return num > o.Status.EditCount
		}
		return o.Status.EditedAt == nil || at.Unix() > o.Status.EditedAt.Unix()
	}
	if !newer(target) {
		return resultStored, nil
	}
	if target.Spec.Direction == igv1.DirectionIncoming {
		text := (&fitter{}).text("spec.text", e.Text, maxTextBytes)
		err := g.patchSpec(ctx, target, func(o *igv1.InstagramMessage) bool {
			if !newer(o) || o.Spec.Text == text {
				return false
			}
			o.Spec.Text = text
			return true
		})
		if err != nil {
			return "", err
		}
	}
	err = g.patchStatus(ctx, target, func(o *igv1.InstagramMessage) bool {
		if !newer(o) {
			return false
		}
		o.Status.EditedAt = timeOf(at)
		if num > 0 {
			o.Status.EditCount = num
		} else {
			o.Status.EditCount++
		}
		if o.Spec.Direction == igv1.DirectionIncoming {
			g.markReady(o)
		}
		return true
	})
	if err != nil {
		return "", err
	}
	return resultStored, nil
}

// orphan decides about a reaction or edit whose message is unknown: within
// the grace period the message is most likely on its way (Meta delivers out
// of order), so the delivery is retried; past it the message will not come
// (it predates the channel, or was never delivered) and the event is
// dropped, counted, rather than failing the delivery for hours.
func (g *ingester) orphan(ev *event) (string, error) {
	if !ev.at.IsZero() && g.clock.Since(ev.at) < g.grace {
		return resultRetry, errRetry
	}
	return resultOrphaned, nil
}

// findTarget finds the object recording mid: the outgoing message the
// manager sent (it survives an echo race) or the object the receiver wrote.
// nil when neither exists.
func (g *ingester) findTarget(ctx context.Context, r *route, mid string) (*igv1.InstagramMessage, error) {
	if out, err := g.findOutgoing(ctx, r, mid); err != nil || out != nil {
		return out, err
	}
	var obj igv1.InstagramMessage
	err := g.live.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: names.IncomingMessageName(r.Name, mid)}, &obj)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get message: %w", err)
	}
	return &obj, nil
}

// findOutgoing finds the outgoing message the manager sent as mid, by the
// label it adds once the send succeeded. It reads from the API server, never
// from a cache, so a label written a moment ago is seen.
func (g *ingester) findOutgoing(ctx context.Context, r *route, mid string) (*igv1.InstagramMessage, error) {
	var list igv1.InstagramMessageList
	err := g.live.List(ctx, &list, client.InNamespace(r.Namespace),
		client.MatchingLabels{igv1.LabelChannel: r.Name, igv1.LabelMID: names.MIDHash(mid)})
	if err != nil {
		return nil, fmt.Errorf("list outgoing messages by mid: %w", err)
	}
	for i := range list.Items {
		m := &list.Items[i]
		if m.Spec.Direction == igv1.DirectionOutgoing && !m.Spec.Echo && (m.Status.MessageID == "" || m.Status.MessageID == mid) {
			return m, nil
		}
	}
	// A further mid of a send Instagram recorded as several messages
	// (status.messageIDs) has a label of its own.
	err = g.live.List(ctx, &list, client.InNamespace(r.Namespace),
		client.MatchingLabels{igv1.LabelChannel: r.Name}, client.HasLabels{names.MIDLabelKey(mid)})
	if err != nil {
		return nil, fmt.Errorf("list outgoing messages by further mid: %w", err)
	}
	for i := range list.Items {
		m := &list.Items[i]
		if m.Spec.Direction == igv1.DirectionOutgoing && !m.Spec.Echo && slices.Contains(m.Status.MessageIDs, mid) {
			return m, nil
		}
	}
	return nil, nil
}
