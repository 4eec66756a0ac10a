package webhookserver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
	"github.com/leadchat/instagram-operator/internal/sink"
)

// The CloudEvent of each recorded event (docs/events.md is the catalogue).
// The data of an event that creates an object is that object's spec and
// status as the receiver writes them, built by the same code, so a consumer
// of the sink reads the field names of kubectl get -o yaml; the data of an
// event that changes a message names the message and the change. Each
// event is a pure function of the webhook event: the same delivery, again,
// gives the same event with the same id.

// objectData is the data of an event that creates an InstagramMessage:
// the object's name (what the receiver names it, stored or not), spec and
// status. Status carries no conditions, observedGeneration or receivedAt:
// they describe the write, not the event.
type objectData struct {
	Name   string                      `json:"name"`
	Spec   igv1.InstagramMessageSpec   `json:"spec"`
	Status igv1.InstagramMessageStatus `json:"status"`
	Labels map[string]string           `json:"labels,omitempty"`
}

// commentData is the data of a comment, live comment or mention event.
type commentData struct {
	Name string `json:"name"`
	// Verb is Meta's: add, edited or remove (empty when Meta sends none).
	Verb   string                      `json:"verb,omitempty"`
	Spec   igv1.InstagramCommentSpec   `json:"spec"`
	Status igv1.InstagramCommentStatus `json:"status"`
}

// changeData is the data of an event that changes a message: which one
// (messageID), and what changed, in the field names of the message's
// status.
type changeData struct {
	ContactID string `json:"contactID"`
	MessageID string `json:"messageID,omitempty"`
	// Name is the object that records messageID when the receiver wrote it
	// (an outgoing message the manager sent has its own name).
	Name      string            `json:"name,omitempty"`
	Text      string            `json:"text,omitempty"`
	EditCount int32             `json:"editCount,omitempty"`
	EditedAt  *metav1.MicroTime `json:"editedAt,omitempty"`
	DeletedAt *metav1.MicroTime `json:"deletedAt,omitempty"`
	// ReadAt: every outgoing message of the conversation sent up to the
	// read message (or, without one, up to readAt) is read.
	ReadAt   *metav1.MicroTime `json:"readAt,omitempty"`
	Reaction *igv1.Reaction    `json:"reaction,omitempty"`
	IsEcho   bool              `json:"isEcho,omitempty"`
	Standby  bool              `json:"standby,omitempty"`
}

// cloudEvent encodes ev.
func (g *ingester) cloudEvent(ev *event) (cloudevents.Event, error) {
	r := ev.route
	s := sink.Spec{Namespace: r.Namespace, Channel: r.Name, Subject: ev.contact, Time: ev.at, Now: g.clock.Now()}
	it := ev.item
	switch ev.typ {
	case EventMessage, EventEcho:
		m := it.Message
		label := igv1.EventLabelMessage
		s.Type = sink.TypeMessageReceived
		if ev.typ == EventEcho {
			label, s.Type = igv1.EventLabelEcho, sink.TypeMessageEcho
		}
		obj, fit := g.messageObject(ev, m, names.IncomingMessageName(r.Name, m.MID), label)
		if ev.typ == EventEcho {
			obj.Spec.Direction, obj.Spec.Echo = igv1.DirectionOutgoing, true
		}
		g.receivedStatus(ev, m.MID, fit)(obj)
		if ev.typ == EventEcho {
			obj.Status.Phase, obj.Status.SentAt = igv1.PhaseSent, obj.Status.Timestamp
		}
		s.Key, s.Data = m.MID, objectDataOf(obj)
	case EventPostback:
		obj, status := g.postbackObject(ev)
		status(obj)
		s.Type, s.Key, s.Data = sink.TypePostback, postbackKey(ev), objectDataOf(obj)
	case EventReferral, EventOptin, EventHandover:
		kind, label := string(ev.typ), ""
		obj := g.newIncoming(ev, "", "")
		g.receivedStatus(ev, "", nil)(obj)
		switch ev.typ {
		case EventReferral:
			s.Type, label = sink.TypeReferral, igv1.EventLabelReferral
			obj.Status.Referral = referral(it.Referral)
		case EventOptin:
			s.Type, label = sink.TypeOptin, igv1.EventLabelOptin
			obj.Status.Optin = optinOf(it.Optin)
		default:
			s.Type, label = sink.TypeHandover, igv1.EventLabelHandover
			obj.Status.Handover = handoverOf(it)
		}
		s.Key = syntheticKey(kind, ev)
		obj.Name = names.IncomingMessageName(r.Name, s.Key)
		obj.Labels[igv1.LabelEvent] = label
		s.Data = objectDataOf(obj)
	case EventUnsend:
		mid := it.Message.MID
		s.Type, s.Key = sink.TypeMessageDeleted, mid
		s.Data = changeData{ContactID: ev.contact, MessageID: mid, Name: names.IncomingMessageName(r.Name, mid),
			DeletedAt: microOf(g.when(ev)), IsEcho: it.Message.IsEcho, Standby: it.Standby}
	case EventRead:
		mid := it.Read.MID
		s.Type, s.Key = sink.TypeMessageRead, ev.contact+"/"+mid
		d := changeData{ContactID: ev.contact, MessageID: mid, ReadAt: microOf(g.when(ev)), Standby: it.Standby}
		if mid != "" {
			d.Name = names.IncomingMessageName(r.Name, mid)
		}
		s.Data = d
	case EventReaction:
		re := it.Reaction
		by := string(it.Sender.ID)
		s.Type = sink.TypeReactionAdded
		if re.Action == "unreact" {
			s.Type = sink.TypeReactionRemoved
		}
		s.Key = re.MID + "/" + by
		s.Data = changeData{ContactID: ev.contact, MessageID: re.MID, Name: names.IncomingMessageName(r.Name, re.MID), Standby: it.Standby,
			Reaction: &igv1.Reaction{Reaction: re.Reaction, Emoji: re.Emoji, By: by, At: timeOf(g.when(ev))}}
	case EventEdit:
		e := it.MessageEdit
		s.Type, s.Key = sink.TypeMessageEdited, e.MID+"/"+strconv.FormatInt(int64(e.NumEdit), 10)
		s.Data = changeData{ContactID: ev.contact, MessageID: e.MID, Name: names.IncomingMessageName(r.Name, e.MID), Standby: it.Standby,
			Text: (&fitter{}).text("spec.text", e.Text, maxTextBytes), EditCount: int32(min(max(int64(e.NumEdit), 0), 1<<30)), EditedAt: microOf(g.when(ev))}
	case EventComment, EventLiveComment, EventMention:
		obj, fit := g.commentObject(ev)
		st := igv1.InstagramCommentStatus{EventTime: microOf(ev.at), Clipped: fit.clipped, UnknownFields: boundedKeys(it.Unknown)}
		if ev.comment.Verb == "remove" {
			st.DeletedAt = microOf(g.when(ev))
		}
		switch ev.typ {
		case EventComment:
			s.Type = sink.TypeComment
		case EventLiveComment:
			s.Type = sink.TypeLiveComment
		default:
			s.Type = sink.TypeMention
		}
		// Meta sends a changed comment with the time it was created: the
		// notification's bytes tell an edit from the comment, and come back
		// unchanged on a redelivery.
		sum := sha256.Sum256(ev.change.Value)
		s.Key = commentKey(ev.comment) + "/" + hex.EncodeToString(sum[:8])
		s.Subject = "comment/" + commentKey(ev.comment)
		s.Data = commentData{Name: obj.Name, Verb: ev.comment.Verb, Spec: obj.Spec, Status: st}
	default:
		return cloudevents.Event{}, fmt.Errorf("no CloudEvent for event type %q", ev.typ)
	}
	return sink.New(s)
}

func objectDataOf(obj *igv1.InstagramMessage) objectData {
	st := obj.Status
	st.Conditions, st.ObservedGeneration, st.ReceivedAt = nil, 0, nil
	return objectData{Name: obj.Name, Spec: obj.Spec, Status: st, Labels: obj.Labels}
}
