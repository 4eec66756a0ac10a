package webhookserver

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/conditions"
)

// The storage primitives every event family shares: the skeleton of a
// receiver-written object, create-or-find, optimistic-lock patches, and
// fitting Meta's content into the schema.

// ownerRef makes the channel own what the receiver writes, so the channel's
// deletion (and its retention) takes its messages and comments with it.
func ownerRef(r *route) []metav1.OwnerReference {
	return []metav1.OwnerReference{{
		APIVersion: igv1.GroupVersion.String(),
		Kind:       "InstagramChannel",
		Name:       r.Name,
		UID:        r.UID,
		Controller: ptr.To(true),
	}}
}

// newIncoming is the skeleton of a message object the receiver writes,
// labelled for workloads' selectors.
func (g *ingester) newIncoming(ev *event, name, eventLabel string) *igv1.InstagramMessage {
	return &igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ev.route.Namespace,
			Labels: map[string]string{
				igv1.LabelChannel:   ev.route.Name,
				igv1.LabelContact:   ev.contact,
				igv1.LabelDirection: igv1.DirectionLabelIncoming,
				igv1.LabelEvent:     eventLabel,
			},
			OwnerReferences: ownerRef(ev.route),
		},
		Spec: igv1.InstagramMessageSpec{
			ChannelRef: igv1.ChannelReference{Name: ev.route.Name},
			Direction:  igv1.DirectionIncoming,
			ContactID:  ev.contact,
		},
	}
}

// sameRecord reports whether got, found under the name of want, is the
// receiver's record of the same thing: same channel, customer, direction
// and echo mark. Anything else (say, an outgoing message someone named like
// this) is left alone.
func sameRecord(got *igv1.InstagramMessage, want igv1.InstagramMessageSpec) bool {
	return got.Spec.ChannelRef == want.ChannelRef && got.Spec.ContactID == want.ContactID &&
		got.Spec.Direction == want.Direction && got.Spec.Echo == want.Echo
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
		if !sameRecord(obj, want) {
			// An unsend tombstone is an incoming record; the echo it
			// precedes finds it and keeps it.
			if !(obj.Status.Phase == igv1.PhaseDeleted && obj.Spec.ChannelRef == want.ChannelRef && obj.Spec.ContactID == want.ContactID) {
				return nil, fmt.Errorf("%w: %s exists and is not this channel's record of the event", errInvalid, obj.Name)
			}
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
	return patchLocked(ctx, g.live, obj, mutate, func(base *igv1.InstagramMessage) error {
		return g.c.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
}

// patchSpec is patchStatus for the spec and metadata (edits and unsends of
// incoming messages, labels).
func (g *ingester) patchSpec(ctx context.Context, obj *igv1.InstagramMessage, mutate func(*igv1.InstagramMessage) bool) error {
	return patchLocked(ctx, g.live, obj, mutate, func(base *igv1.InstagramMessage) error {
		return g.c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
}

// lockedObject is what patchLocked can patch: a message or a comment.
type lockedObject[T any] interface {
	client.Object
	DeepCopy() T
}

func patchLocked[T lockedObject[T]](ctx context.Context, live client.Reader, obj T, mutate func(T) bool, write func(base T) error) error {
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
			return fmt.Errorf("%w: patch %s: %w", errInvalid, obj.GetName(), err)
		case !apierrors.IsConflict(err) || attempt >= maxConflicts:
			return fmt.Errorf("patch %s: %w", obj.GetName(), err)
		}
		if err := live.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("get %s: %w", obj.GetName(), err)
		}
	}
}

// readyCondition keeps a receiver-written object kstatus-Current: Ready True
// for the generation its status describes.
func (g *ingester) readyCondition(conds *[]metav1.Condition, generation int64, reason string) {
	conditions.Set(conds, generation, igv1.ConditionReady, metav1.ConditionTrue, reason, "Recorded from an Instagram webhook", g.clock.Now())
}

// markReady marks a message the receiver owns Ready for its generation. The
// manager owns the conditions of the outgoing messages it sends.
func (g *ingester) markReady(o *igv1.InstagramMessage) {
	o.Status.ObservedGeneration = o.Generation
	g.readyCondition(&o.Status.Conditions, o.Generation, string(o.Status.Phase))
}

// when is the event's time, or now for an event that carries none.
func (g *ingester) when(ev *event) time.Time {
	if ev.at.IsZero() {
		return g.clock.Now()
	}
	return ev.at
}

// timeOf is a time as the API stores metav1.Time: to the second.
func timeOf(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return ptr.To(metav1.NewTime(t))
}

// microOf keeps the milliseconds Meta sends (metav1.MicroTime is stored to
// the microsecond).
func microOf(t time.Time) *metav1.MicroTime {
	if t.IsZero() {
		return nil
	}
	return ptr.To(metav1.NewMicroTime(t.UTC()))
}

// clipMarker ends a text that was cut to fit the schema.
const clipMarker = "…"

// fitter fits Meta's content into the schema's limits and remembers which
// fields it had to cut (status.clipped), so nothing is cut silently.
type fitter struct {
	clipped []string
}

// text cuts s to at most n bytes, ending it with clipMarker when cut.
func (f *fitter) text(field, s string, n int) string {
	s = validUTF8(s)
	if len(s) <= n {
		return s
	}
	f.clipped = append(f.clipped, field)
	return clip(s, n-len(clipMarker)) + clipMarker
}

// id keeps an identifier or URL only whole: a cut one would point
// elsewhere, so one longer than n is dropped (and named).
func (f *fitter) id(field, s string, n int) string {
	s = validUTF8(s)
	if len(s) <= n {
		return s
	}
	f.clipped = append(f.clipped, field)
	return ""
}

func validUTF8(s string) string {
	if !utf8.ValidString(s) {
		return string([]rune(s))
	}
	return s
}

// clip cuts s to at most n bytes on a rune boundary, and drops invalid
// UTF-8 the API server would refuse.
func clip(s string, n int) string {
	s = validUTF8(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// boundedKeys keeps at most maxUnknownFields names.
func boundedKeys(keys []string) []string {
	if len(keys) > maxUnknownFields {
		return keys[:maxUnknownFields]
	}
	return keys
}

// labelValue is s when it is a valid label value of digits, letters, '-',
// '_' or '.', else "".
func labelValue(s string) string {
	if s == "" || len(s) > maxLabelValueLen {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return ""
		}
	}
	first, last := s[0], s[len(s)-1]
	isAlnum := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	if !isAlnum(first) || !isAlnum(last) {
		return ""
	}
	return s
}
