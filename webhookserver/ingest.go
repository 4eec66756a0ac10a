package webhookserver

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/leadchat/instagram-operator/internal/sink"
)

// This file routes a verified delivery to channels and applies its events
// conversation by conversation. The events themselves are applied by family:
// ingest_messages.go (messages and echoes), ingest_updates.go (unsends,
// reads, reactions, edits), ingest_postbacks.go (postbacks, referrals,
// opt-ins, handovers), ingest_comments.go (comments, live comments,
// mentions); store.go holds the storage primitives they share.

// Limits of the InstagramMessage schema. Content past them is clipped or
// dropped here: a value the API server refuses would make the delivery fail
// for ever and Meta would retry it for hours.
const (
	maxTextBytes     = 8192
	maxTitleBytes    = 2048
	maxURLBytes      = 8192
	maxIDBytes       = 256
	maxReplyToBytes  = 512
	maxAttachments   = 32
	maxExtraKeys     = 16
	maxExtraBytes    = 1024
	maxUnknownFields = 16
	maxLabelValueLen = 63
	maxConflicts     = 5
	// maxReactionHistory bounds status.reactionHistory.
	maxReactionHistory = 20
)

var (
	// errRetry: the message an event refers to, or the channel an entry is
	// for, is not recorded yet; the delivery is answered 503 so that Meta
	// delivers it again later.
	errRetry = errors.New("referenced message or channel not recorded yet")
	// errInvalid: the API server refuses the object; retrying cannot help.
	errInvalid = errors.New("event cannot be stored")
)

// ingester turns verified, routed events into InstagramMessage and
// InstagramComment objects.
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
	// unclaimedGrace is how long after its time an entry for an account no
	// channel serves yet is answered 503.
	unclaimedGrace time.Duration
	// parallel bounds the conversations written at the same time.
	parallel int
	// sink sends the events of channels with a sink (sink.go).
	sink *sink.Sender
}

// event is one routed item or change.
type event struct {
	typ   EventType
	route *route
	// contact is the customer of a messaging item; empty for a change.
	contact string
	item    *Item
	// change and comment are set for a comments, live_comments or mentions
	// notification.
	change  *Change
	comment *CommentValue
	at      time.Time
}

// key groups the events that must be applied in order by one writer: a
// conversation, or one comment.
func (ev *event) key() string {
	k := ev.route.Namespace + "/" + ev.route.Name + "/"
	if ev.comment != nil {
		return k + "comment/" + commentKey(ev.comment)
	}
	return k + ev.contact
}

// ingest persists every event of a verified delivery signed by signers. It
// returns nil only when every event is recorded (or deliberately dropped and
// counted); any other error means the delivery must be answered 5xx.
func (g *ingester) ingest(ctx context.Context, signers []AppKey, d *Delivery) error {
	if d.Malformed > 0 {
		eventsTotal.WithLabelValues(string(EventMalformed), resultInvalid).Add(float64(d.Malformed))
		g.log.Info("Malformed entries skipped", "entries", d.Malformed)
	}
	events, unclaimed, err := g.route(ctx, signers, d)
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
		k := ev.key()
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
	if err := eg.Wait(); err != nil {
		return err
	}
	if unclaimed {
		return errRetry
	}
	return nil
}

// route resolves each entry to the channel that serves its account and keeps
// only the entries of channels of an app whose secret signed the delivery.
// unclaimed reports an entry for an account that no channel serves yet but
// may soon (see routeEntry): the rest is stored, and the delivery is then
// answered 503 so Meta brings that entry back.
func (g *ingester) route(ctx context.Context, signers []AppKey, d *Delivery) (out []*event, unclaimed bool, err error) {
	for i := range d.Entry {
		e := &d.Entry[i]
		if e.Malformed > 0 {
			eventsTotal.WithLabelValues(string(EventMalformed), resultInvalid).Add(float64(e.Malformed))
			g.log.Info("Malformed items skipped", "account", string(e.ID), "items", e.Malformed)
		}
		changes := make([]*Change, 0, len(e.Changes))
		for j := range e.Changes {
			c := &e.Changes[j]
			if e.IsTest(c) {
				eventsTotal.WithLabelValues(string(EventTest), resultIgnored).Inc()
				continue
			}
			changes = append(changes, c)
		}
		items := e.Items()
		if e.ID == "0" {
			// The dashboard test's entry is not an account.
			for range items {
				eventsTotal.WithLabelValues(string(EventTest), resultIgnored).Inc()
			}
			continue
		}
		if len(items) == 0 && len(changes) == 0 {
			continue
		}
		evs, retry, err := g.routeEntry(ctx, signers, e, items, changes)
		if err != nil {
			return nil, false, err
		}
		unclaimed = unclaimed || retry
		out = append(out, evs...)
	}
	return out, unclaimed, nil
}

func (g *ingester) routeEntry(ctx context.Context, signers []AppKey, e *Entry, items []Item, changes []*Change) ([]*event, bool, error) {
	r, err := g.dir.channelFor(ctx, string(e.ID))
	if err != nil {
		return nil, false, err
	}
	count := func(result string) {
		for j := range items {
			eventsTotal.WithLabelValues(string(items[j].Kind()), result).Inc()
		}
		for _, c := range changes {
			eventsTotal.WithLabelValues(string(changeKind(c.Field)), result).Inc()
		}
	}
	switch {
	case r == nil && g.clock.Since(entryTime(e, items)) < g.unclaimedGrace:
		// Right after a channel subscribes, or after a restore that lost
		// channel status, the account is not in this receiver's view yet:
		// Meta's retry will find it there. Past the grace period the
		// account is truly nobody's, and retrying for 36 hours would only
		// delay the other entries of each delivery.
		rejectedTotal.WithLabelValues(causeNoChannelYet).Inc()
		count(resultRetry)
		g.log.V(1).Info("Entry for an account no channel serves yet, asking Meta to retry", "account", string(e.ID))
		return nil, true, nil
	case r == nil:
		rejectedTotal.WithLabelValues(causeNoChannel).Inc()
		count(resultRejected)
		g.log.Info("Entry skipped", "cause", causeNoChannel, "account", string(e.ID), "app", signers[0].String())
		return nil, false, nil
	case !slices.Contains(signers, r.App):
		// Whoever holds one app's secret must not write into the channels
		// of another app.
		rejectedTotal.WithLabelValues(causeUnknownAppEntry).Inc()
		count(resultRejected)
		g.log.Info("Entry skipped", "cause", causeUnknownAppEntry, "account", string(e.ID), "app", signers[0].String())
		return nil, false, nil
	}
	var out []*event
	for j := range items {
		it := &items[j]
		typ := it.Kind()
		if typ == EventUnknown {
			eventsTotal.WithLabelValues(string(typ), resultIgnored).Inc()
			g.log.Info("Unknown event kind ignored", "keys", it.Unknown, "channel", r.Name, "namespace", r.Namespace)
			continue
		}
		if len(it.Unknown) > 0 {
			unknownFieldsTotal.WithLabelValues(string(typ)).Add(float64(len(it.Unknown)))
		}
		ev := &event{typ: typ, route: r, item: it, contact: contactOf(it, string(e.ID)), at: MetaTime(it.Timestamp)}
		if !validContact(ev.contact) {
			eventsTotal.WithLabelValues(string(typ), resultInvalid).Inc()
			g.log.Info("Event without a usable customer ID skipped", "type", typ, "channel", r.Name, "namespace", r.Namespace)
			continue
		}
		out = append(out, ev)
	}
	for _, c := range changes {
		ev, ok := g.commentEvent(r, e, c)
		if ok {
			out = append(out, ev)
		}
	}
	return out, false, nil
}

// entryTime is the newest time an entry carries: the entry's own, or its
// items'. Zero when it carries none, which makes an unclaimed entry
// dropped at once rather than retried without a bound.
func entryTime(e *Entry, items []Item) time.Time {
	t := MetaTime(e.Time)
	for i := range items {
		if it := MetaTime(items[i].Timestamp); it.After(t) {
			t = it
		}
	}
	if t.IsZero() {
		return time.Unix(0, 0)
	}
	return t
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

// creates reports the event types that create objects; the others change
// objects that exist.
func creates(t EventType) bool {
	switch t {
	case EventMessage, EventEcho, EventPostback, EventReferral, EventOptin, EventHandover,
		EventComment, EventLiveComment, EventMention:
		return true
	}
	return false
}

// conversation applies the events of one conversation: first those that
// create objects, oldest first, then those that change them, oldest first,
// so a reaction delivered in the same batch before its message still finds
// it, and a burst delivered in reverse order is recorded in order.
func (g *ingester) conversation(ctx context.Context, evs []*event) error {
	var creators, changers []*event
	for _, ev := range evs {
		if creates(ev.typ) {
			creators = append(creators, ev)
		} else {
			changers = append(changers, ev)
		}
	}
	byTime := func(a, b *event) int { return a.at.Compare(b.at) }
	slices.SortStableFunc(creators, byTime)
	slices.SortStableFunc(changers, byTime)
	var first error
	for _, ev := range slices.Concat(creators, changers) {
		result, err := g.store(ctx, ev)
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
	case EventOptin:
		return g.optin(ctx, ev)
	case EventHandover:
		return g.handover(ctx, ev)
	case EventUnsend:
		return g.unsend(ctx, ev)
	case EventRead:
		return g.read(ctx, ev)
	case EventReaction:
		return g.reaction(ctx, ev)
	case EventEdit:
		return g.edit(ctx, ev)
	case EventComment, EventLiveComment, EventMention:
		return g.recordComment(ctx, ev)
	}
	return resultIgnored, nil
}
