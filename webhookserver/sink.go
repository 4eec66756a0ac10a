package webhookserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/sink"
)

// A channel with spec.sink gets every event it records as a CloudEvent
// (cloudevents.go), in the conversation's order, after its object is
// written, or instead of it in object-less mode (incomingObjects: Skip).
// The delivery is answered 200 only when the sink acknowledged every event:
// a sink that refuses, times out or is not resolved yet makes it a 5xx, and
// Meta's redelivery brings the same events, with the same ids, again. The
// receiver never resolves spec.sink itself (it may not read arbitrary
// objects): it reads the manager's status.sinkURI from the channel it
// caches.

// resultSunk: the event went to the sink only (object-less mode).
const resultSunk = "sunk"

// errSink: the sink did not take an event; the delivery is answered 5xx.
var errSink = errors.New("event not delivered to the channel's sink")

// routeSink is a channel's sink as the receiver sees it.
type routeSink struct {
	target  sink.Target
	timeout time.Duration
	// skipObjects: object-less mode, the sink is the only store.
	skipObjects bool
}

// sinkOf reads a channel's sink; nil without spec.sink. A sink that does
// not resolve yet has an empty URI, and every event for it fails: the
// channel says its events go there, and storing them elsewhere only would
// lose them for the sink's consumers.
func sinkOf(ch *igv1.InstagramChannel) *routeSink {
	sp := ch.Spec.Sink
	if sp == nil {
		return nil
	}
	s := &routeSink{target: sink.Target{URI: ch.Status.SinkURI}, skipObjects: ch.IncomingObjectsMode() == igv1.IncomingObjectsSkip}
	if st := ch.Status.Sink; st != nil && s.target.URI != "" {
		s.target.CACerts = st.CACerts
	}
	if d := sp.Delivery; d != nil && d.Timeout != nil {
		s.timeout = d.Timeout.Duration
	}
	return s
}

// store records ev where its channel says: as an object, in the sink, or
// both. An event the API server refuses, or that changes a message the
// receiver no longer knows, still goes to the sink: the sink's consumer
// decides what it means.
func (g *ingester) store(ctx context.Context, ev *event) (string, error) {
	s := ev.route.sink
	if s == nil {
		return g.apply(ctx, ev)
	}
	var result string
	var applyErr error
	if s.skipObjects {
		result, applyErr = g.applyToOutgoing(ctx, ev)
	} else {
		result, applyErr = g.apply(ctx, ev)
	}
	if applyErr != nil && !errors.Is(applyErr, errInvalid) {
		return result, applyErr
	}
	if err := g.emit(ctx, ev, s); err != nil {
		return resultError, err
	}
	return result, applyErr
}

// applyToOutgoing is what object-less mode still stores: outgoing
// messages stay objects, so a read receipt still moves their watermark,
// and a reaction, edit or unsend of one the manager sent is still recorded
// on it. Everything else goes to the sink only; an event about a message
// that is not an object is not retried (it never will be one).
func (g *ingester) applyToOutgoing(ctx context.Context, ev *event) (string, error) {
	var mid string
	switch ev.typ {
	case EventRead:
		return g.apply(ctx, ev)
	case EventReaction:
		mid = ev.item.Reaction.MID
	case EventEdit:
		mid = ev.item.MessageEdit.MID
	case EventUnsend:
		mid = ev.item.Message.MID
	default:
		return resultSunk, nil
	}
	if mid == "" {
		return resultSunk, nil
	}
	out, err := g.findOutgoing(ctx, ev.route, mid)
	if err != nil || out == nil {
		return resultSunk, err
	}
	return g.apply(ctx, ev)
}

// emit sends ev's CloudEvent to the sink. An event that cannot be encoded
// would fail every redelivery; it is counted and skipped like one the API
// server refuses.
func (g *ingester) emit(ctx context.Context, ev *event, s *routeSink) error {
	ce, err := g.cloudEvent(ev)
	if err != nil {
		return fmt.Errorf("%w: %w", errInvalid, err)
	}
	ch := sink.Channel{Namespace: ev.route.Namespace, Name: ev.route.Name}
	if err := g.sink.Deliver(ctx, ch, s.target, ce, s.timeout); err != nil {
		sink.EventsTotal.WithLabelValues(ch.Namespace, ch.Name, sink.ResultFailed).Inc()
		return fmt.Errorf("%w: %s %s: %w", errSink, ce.Type(), ce.ID(), err)
	}
	sink.EventsTotal.WithLabelValues(ch.Namespace, ch.Name, sink.ResultDelivered).Inc()
	return nil
}
