package webhookserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

// Limits of the InstagramMessage schema. Content past them is clipped or
// dropped here: a value the API server refuses would make the delivery fail
// for ever and Meta would retry it for hours.
const (
	maxTextBytes     = 8192
	maxTitleBytes    = 2048
	maxURLBytes      = 8192
	maxReplyToBytes  = 512
	maxAttachments   = 32
	maxLabelValueLen = 63
	maxConflicts     = 5
)

var (
	// errRetry: the message an event refers to is not recorded yet; the
	// delivery is answered 503 so that Meta delivers it again later.
	errRetry = errors.New("referenced message not recorded yet")
	// errInvalid: the API server refuses the object; retrying cannot help.
	errInvalid = errors.New("event cannot be stored")
)

// ingester turns verified, routed events into InstagramMessage objects.
type ingester struct {
	dir *directory
	// c writes straight to the API server.
	c client.Client
	// live reads InstagramMessage objects straight from the API server: they
	// are not cached, and the echo protocol needs reads that see the
	// manager's latest write.
	live  client.Reader
	clock clock.PassiveClock
	log   logr.Logger
	// grace is how long after its timestamp an event whose message is
	// unknown is answered 503 (see the package documentation).
	grace time.Duration
	// parallel bounds the conversations written at the same time.
	parallel int
}

// event is one routed item.
type event struct {
	typ     EventType
	route   *route
	contact string
	item    *Item
	at      time.Time
}

// ingest persists every event of a verified delivery signed by signers. It
// returns nil only when every event is recorded (or deliberately dropped and
// counted); any other error means the delivery must be answered 5xx.
func (g *ingester) ingest(ctx context.Context, signers []AppKey, d *Delivery) error {
	events, err := g.route(ctx, signers, d)
	if err != nil {
		return err
	}
	// Events of one conversation are applied in order, by one goroutine:
	// a reaction, edit or read receipt in the same delivery as its message
	// then always finds it, and no two writers race for one object.
	// Conversations are independent and run in parallel.
	groups := map[string][]*event{}
	var order []string
	for _, ev := range events {
		k := ev.route.Namespace + "/" + ev.route.Name + "/" + ev.contact
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], ev)
	}
	var eg errgroup.Group
	eg.SetLimit(g.parallel)
	for _, k := range order {
		evs := groups[k]
		eg.Go(func() error { return g.conversation(ctx, evs) })
	}
	return eg.Wait()
}

// route resolves each entry to the channel that serves its account and keeps
// only the entries of channels of an app whose secret signed the delivery.
func (g *ingester) route(ctx context.Context, signers []AppKey, d *Delivery) ([]*event, error) {
	var out []*event
	for i := range d.Entry {
		e := &d.Entry[i]
		for range e.Changes {
			eventsTotal.WithLabelValues(string(EventTest), resultIgnored).Inc()
		}
		items := len(e.Messaging) + len(e.Standby)
		if items == 0 {
			continue
		}
		r, err := g.dir.channelFor(ctx, string(e.ID))
		if err != nil {
			return nil, err
		}
		var cause string
		switch {
		case r == nil:
			cause = causeNoChannel
		case !slices.Contains(signers, r.App):
			// Whoever holds one app's secret must not write into the
			// channels of another app.
			cause = causeUnknownAppEntry
		}
		if cause != "" {
			rejectedTotal.WithLabelValues(cause).Inc()
			g.log.Info("Entry skipped", "cause", cause, "account", string(e.ID), "app", signers[0].String(), "events", items)
			for _, it := range slices.Concat(e.Messaging, e.Standby) {
				eventsTotal.WithLabelValues(string(it.Kind()), resultRejected).Inc()
			}
			continue
		}
		for _, list := range [][]Item{e.Messaging, e.Standby} {
			for j := range list {
				it := &list[j]
				typ := it.Kind()
				if typ == EventUnknown {
					eventsTotal.WithLabelValues(string(typ), resultIgnored).Inc()
					continue
				}
				ev := &event{typ: typ, route: r, item: it, contact: contactOf(it, string(e.ID))}
				if it.Timestamp > 0 {
					ev.at = time.UnixMilli(int64(it.Timestamp))
				}
				if !validContact(ev.contact) {
					eventsTotal.WithLabelValues(string(typ), resultInvalid).Inc()
					g.log.Info("Event without a usable customer ID skipped", "type", typ, "channel", r.Name, "namespace", r.Namespace)
					continue
				}
				out = append(out, ev)
			}
		}
	}
	return out, nil
}

// contactOf is the customer of an item: the sender, unless the business
// itself sent it (an echo, or a reaction by the business), then the
// recipient.
func contactOf(it *Item, account string) string {
	if it.Sender.ID != "" && string(it.Sender.ID) == account {
		return string(it.Recipient.ID)
	}
	return string(it.Sender.ID)
}

func validContact(s string) bool {
	if s == "" || len(s) > maxLabelValueLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// conversation applies the events of one conversation: first those that
// create messages, then those that change them, oldest first, so a reaction
// delivered in the same batch before its message still finds it.
func (g *ingester) conversation(ctx context.Context, evs []*event) error {
	var creators, changers []*event
	for _, ev := range evs {
		switch ev.typ {
		case EventMessage, EventEcho, EventPostback, EventReferral:
			creators = append(creators, ev)
		default:
			changers = append(changers, ev)
		}
	}
	slices.SortStableFunc(changers, func(a, b *event) int { return a.at.Compare(b.at) })
	var first error
	for _, ev := range slices.Concat(creators, changers) {
		result, err := g.apply(ctx, ev)
		switch {
		case errors.Is(err, errInvalid):
			result, err = resultInvalid, nil
			g.log.Error(err, "Event refused by the API server, skipped", "type", ev.typ, "channel", ev.route.Name, "namespace", ev.route.Namespace)
		case errors.Is(err, errRetry):
			g.log.V(1).Info("Event refers to a message not recorded yet, asking Meta to retry", "type", ev.typ, "channel", ev.route.Name, "namespace", ev.route.Namespace)
		case err != nil:
			result = resultError
			g.log.Error(err, "Event not recorded", "type", ev.typ, "channel", ev.route.Name, "namespace", ev.route.Namespace)
		}
		eventsTotal.WithLabelValues(string(ev.typ), result).Inc()
		if err != nil && first == nil {
			first = err
		}
		// An API server that fails will fail the rest too; stop early and
		// let Meta's retry bring the whole delivery back.
		if err != nil && !errors.Is(err, errRetry) {
			return first
		}
	}
	return first
}

func (g *ingester) apply(ctx context.Context, ev *event) (string, error) {
	switch ev.typ {
	case EventMessage:
		return g.message(ctx, ev)
	case EventEcho:
		return g.echo(ctx, ev)
	case EventPostback:
		return g.postback(ctx, ev)
	case EventReferral:
		return g.referral(ctx, ev)
	case EventUnsend:
		return g.unsend(ctx, ev)
	case EventRead:
		return g.read(ctx, ev)
	case EventReaction:
		return g.reaction(ctx, ev)
	case EventEdit:
		return g.edit(ctx, ev)
	}
	return resultIgnored, nil
}

// message records a customer's message.
func (g *ingester) message(ctx context.Context, ev *event) (string, error) {
	m := ev.item.Message
	if m.MID == "" {
		return resultInvalid, nil
	}
	if _, err := g.ensure(ctx, g.messageObject(ev, m), g.receivedStatus(ev, m.MID)); err != nil {
		return "", err
	}
	return resultStored, nil
}

// echo records a message the business sent from any client, unless it is
// the echo of the manager's own send. The manager, once its send succeeded,
// labels the outgoing object with names.MIDHash(mid) and then deletes any
// object named names.IncomingMessageName(channel, mid); the receiver creates
// that object and then looks for the label. Each side writes, then checks the
// other's write, so whichever order the two run in, exactly one object per
// mid remains: the outgoing one.
func (g *ingester) echo(ctx context.Context, ev *event) (string, error) {
	m := ev.item.Message
	if m.MID == "" {
		return resultInvalid, nil
	}
	if out, err := g.findOutgoing(ctx, ev.route, m.MID); err != nil || out != nil {
		return resultOwnSend, err
	}
	obj, err := g.ensure(ctx, g.messageObject(ev, m), g.receivedStatus(ev, m.MID))
	if err != nil {
		return "", err
	}
	out, err := g.findOutgoing(ctx, ev.route, m.MID)
	if err != nil || out == nil {
		return resultStored, err
	}
	if obj != nil {
		err := g.c.Delete(ctx, obj, client.Preconditions{UID: &obj.UID})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return "", fmt.Errorf("delete echo of own send: %w", err)
		}
	}
	return resultOwnSend, nil
}

func (g *ingester) messageObject(ev *event, m *Message) *igv1.InstagramMessage {
	obj := g.newIncoming(ev, names.IncomingMessageName(ev.route.Name, m.MID))
	obj.Spec.Text = clip(m.Text, maxTextBytes)
	obj.Spec.Attachments = attachments(m.Attachments)
	if m.ReplyTo != nil {
		to := m.ReplyTo.MID
		if to == "" && m.ReplyTo.Story != nil {
			to = m.ReplyTo.Story.ID
		}
		if len(to) <= maxReplyToBytes {
			obj.Spec.ReplyTo = to
		}
	}
	return obj
}

// receivedStatus is the first status of a message, echo or postback.
func (g *ingester) receivedStatus(ev *event, mid string) func(*igv1.InstagramMessage) {
	return func(obj *igv1.InstagramMessage) {
		s := &obj.Status
		s.Phase = igv1.PhaseReceived
		s.MessageID = mid
		s.Timestamp = timeOf(ev.at)
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
		g.markReady(obj)
	}
}

// postback records a button tap as an incoming object keyed by its mid.
func (g *ingester) postback(ctx context.Context, ev *event) (string, error) {
	p := ev.item.Postback
	key := p.MID
	if key == "" {
		key = syntheticKey("postback", ev)
	}
	obj := g.newIncoming(ev, names.IncomingMessageName(ev.route.Name, key))
	obj.Spec.Text = clip(p.Title, maxTextBytes)
	receive := g.receivedStatus(ev, p.MID)
	_, err := g.ensure(ctx, obj, func(o *igv1.InstagramMessage) {
		receive(o)
		o.Status.Postback = &igv1.Postback{Title: p.Title, Payload: p.Payload}
	})
	if err != nil {
		return "", err
	}
	return resultStored, nil
}

// referral records where a conversation came from. A referral has no mid;
// its object is keyed by sender and timestamp, which Meta repeats unchanged
// on a redelivery.
func (g *ingester) referral(ctx context.Context, ev *event) (string, error) {
	obj := g.newIncoming(ev, names.IncomingMessageName(ev.route.Name, syntheticKey("referral", ev)))
	receive := g.receivedStatus(ev, "")
	_, err := g.ensure(ctx, obj, func(o *igv1.InstagramMessage) {
		receive(o)
		o.Status.Referral = referral(ev.item.Referral)
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
		tomb := g.newIncoming(ev, names.IncomingMessageName(ev.route.Name, mid))
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
			if o.Spec.Text == "" && len(o.Spec.Attachments) == 0 {
				return false
			}
			o.Spec.Text, o.Spec.Attachments = "", nil
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
// earlier Sent message of the conversation become Read. Echo objects (what
// the business sent from other clients) get readAt without a phase change,
// their phase being that of an incoming object. A receipt for a message this
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

// readable: an outgoing message that is Sent, or an echo not yet read.
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
		i := slices.IndexFunc(o.Status.Reactions, func(x igv1.Reaction) bool { return x.By == by })
		if i >= 0 && o.Status.Reactions[i].At != nil && o.Status.Reactions[i].At.Unix() > at.Unix() {
			return false
		}
		if r.Action == "unreact" {
			if i < 0 {
				return false
			}
			o.Status.Reactions = slices.Delete(slices.Clone(o.Status.Reactions), i, i+1)
			return true
		}
		want := igv1.Reaction{Reaction: r.Reaction, Emoji: r.Emoji, By: by, At: timeOf(at)}
		if i >= 0 {
			if cur := o.Status.Reactions[i]; cur.Reaction == want.Reaction && cur.Emoji == want.Emoji {
				return false
			}
			o.Status.Reactions = slices.Clone(o.Status.Reactions)
			o.Status.Reactions[i] = want
			return true
		}
		o.Status.Reactions = append(slices.Clone(o.Status.Reactions), want)
		return true
	})
	if err != nil {
		return "", err
	}
	return resultStored, nil
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
		text := clip(e.Text, maxTextBytes)
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
		if m.Spec.Direction == igv1.DirectionOutgoing && (m.Status.MessageID == "" || m.Status.MessageID == mid) {
			return m, nil
		}
	}
	return nil, nil
}

// newIncoming is the skeleton of an object the receiver writes: labelled for
// workloads' selectors and owned by the channel, so the channel's deletion
// (and its retention) takes its messages with it.
func (g *ingester) newIncoming(ev *event, name string) *igv1.InstagramMessage {
	return &igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ev.route.Namespace,
			Labels: map[string]string{
				igv1.LabelChannel:   ev.route.Name,
				igv1.LabelContact:   ev.contact,
				igv1.LabelDirection: igv1.DirectionLabelIncoming,
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: igv1.GroupVersion.String(),
				Kind:       "InstagramChannel",
				Name:       ev.route.Name,
				UID:        ev.route.UID,
				Controller: ptr.To(true),
			}},
		},
		Spec: igv1.InstagramMessageSpec{
			ChannelRef: igv1.ChannelReference{Name: ev.route.Name},
			Direction:  igv1.DirectionIncoming,
			ContactID:  ev.contact,
		},
	}
}

// ensure creates obj, or finds it when a previous delivery did, and writes
// its first status when none is there yet: a crash between the create and
// the status write is repaired by Meta's redelivery. It returns the live
// object, or nil when it was deleted in the meantime (the manager removing
// the echo of its own send, or retention).
func (g *ingester) ensure(ctx context.Context, obj *igv1.InstagramMessage, initial func(*igv1.InstagramMessage)) (*igv1.InstagramMessage, error) {
	err := g.c.Create(ctx, obj)
	switch {
	case apierrors.IsAlreadyExists(err):
		want := obj.Spec
		if err := g.live.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("get message: %w", err)
		}
		// The name is ours only if the object is an incoming message of
		// this channel and customer; anything else (say, an outgoing
		// message someone named like this) is left alone.
		if obj.Spec.Direction != igv1.DirectionIncoming || obj.Spec.ChannelRef != want.ChannelRef || obj.Spec.ContactID != want.ContactID {
			return nil, fmt.Errorf("%w: %s exists and is not this channel's incoming message", errInvalid, obj.Name)
		}
	case apierrors.IsInvalid(err):
		return nil, fmt.Errorf("%w: create message: %w", errInvalid, err)
	case err != nil:
		return nil, fmt.Errorf("create message: %w", err)
	}
	err = g.patchStatus(ctx, obj, func(o *igv1.InstagramMessage) bool {
		if o.Status.Phase != "" {
			return false
		}
		initial(o)
		return true
	})
	if err != nil {
		return nil, err
	}
	return obj, nil
}

// patchStatus applies mutate to obj's status with an optimistic lock,
// re-reading and retrying on a conflict. mutate reports whether it changed
// anything; when it did not, nothing is written, so redeliveries are free.
func (g *ingester) patchStatus(ctx context.Context, obj *igv1.InstagramMessage, mutate func(*igv1.InstagramMessage) bool) error {
	return g.patch(ctx, obj, mutate, func(base *igv1.InstagramMessage) error {
		return g.c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
}

// patchSpec is patchStatus for the spec (edits and unsends of incoming
// messages).
func (g *ingester) patchSpec(ctx context.Context, obj *igv1.InstagramMessage, mutate func(*igv1.InstagramMessage) bool) error {
	return g.patch(ctx, obj, mutate, func(base *igv1.InstagramMessage) error {
		return g.c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
}

func (g *ingester) patch(ctx context.Context, obj *igv1.InstagramMessage, mutate func(*igv1.InstagramMessage) bool, write func(base *igv1.InstagramMessage) error) error {
	for attempt := 0; ; attempt++ {
		base := obj.DeepCopy()
		if !mutate(obj) {
			return nil
		}
		err := write(base)
		switch {
		case err == nil:
			return nil
		case apierrors.IsNotFound(err):
			// Deleted meanwhile (retention, the manager's echo cleanup):
			// there is nothing left to record the event on.
			return nil
		case apierrors.IsInvalid(err):
			return fmt.Errorf("%w: patch message: %w", errInvalid, err)
		case !apierrors.IsConflict(err) || attempt >= maxConflicts:
			return fmt.Errorf("patch message: %w", err)
		}
		if err := g.live.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("get message: %w", err)
		}
	}
}

// markReady keeps an incoming object kstatus-Current: Ready True for the
// generation its status describes. The manager owns outgoing objects'
// conditions.
func (g *ingester) markReady(o *igv1.InstagramMessage) {
	o.Status.ObservedGeneration = o.Generation
	meta.SetStatusCondition(&o.Status.Conditions, metav1.Condition{
		Type:               igv1.ConditionReady,
		Status:             metav1.ConditionTrue,
		Reason:             string(o.Status.Phase),
		Message:            "Recorded from an Instagram webhook",
		ObservedGeneration: o.Generation,
		LastTransitionTime: metav1.NewTime(g.clock.Now()),
	})
}

// when is the event's time, or now for an event that carries none.
func (g *ingester) when(ev *event) time.Time {
	if ev.at.IsZero() {
		return g.clock.Now()
	}
	return ev.at
}

func timeOf(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return ptr.To(metav1.NewTime(t))
}

func referral(r *Referral) *igv1.Referral {
	return &igv1.Referral{Ref: r.Ref, Source: r.Source, Type: r.Type}
}

// attachments converts what Instagram sent into what the schema admits: an
// attachment type it does not know becomes "unknown" rather than failing
// validation; a URL too long to be stored is dropped, keeping the type.
func attachments(in []Attachment) []igv1.Attachment {
	if len(in) == 0 {
		return nil
	}
	out := make([]igv1.Attachment, 0, min(len(in), maxAttachments))
	for _, a := range in[:min(len(in), maxAttachments)] {
		t := a.Type
		if !validAttachmentType(t) {
			t = "unknown"
		}
		at := igv1.Attachment{Type: t, Title: clip(a.Payload.Title, maxTitleBytes)}
		if len(a.Payload.URL) <= maxURLBytes {
			at.URL = a.Payload.URL
		}
		out = append(out, at)
	}
	return out
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

// clip cuts s to at most n bytes on a rune boundary, and drops invalid
// UTF-8 the API server would refuse.
func clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
