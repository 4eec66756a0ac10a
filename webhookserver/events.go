package webhookserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// objectInstagram is the only envelope object this receiver accepts.
const objectInstagram = "instagram"

// Delivery is the envelope of one webhook POST. Meta may batch many entries,
// each for one account, into one delivery.
type Delivery struct {
	Object string  `json:"object"`
	Entry  []Entry `json:"entry"`
}

// Entry carries the events of one Instagram professional account (ID is the
// account's user_id, the routing key of a channel).
type Entry struct {
	ID        FlexString `json:"id"`
	Time      FlexInt    `json:"time"`
	Messaging []Item     `json:"messaging"`
	// Standby carries the same items as Messaging when another app holds the
	// thread (handover protocol); they are recorded alike.
	Standby []Item `json:"standby"`
	// Changes is the shape of the Meta dashboard's "Test" button, which does
	// not describe a real conversation.
	Changes []Change `json:"changes"`
}

// Change is one element of the dashboard "Test" envelope. The value is kept
// raw: it is only acknowledged, never stored.
type Change struct {
	Field string          `json:"field"`
	Value json.RawMessage `json:"value"`
}

// Party is the sender or the recipient of an item.
type Party struct {
	ID FlexString `json:"id"`
}

// Item is one messaging event. Exactly one of its pointers is set for a
// well-formed event; Kind decides which one counts.
type Item struct {
	Sender      Party        `json:"sender"`
	Recipient   Party        `json:"recipient"`
	Timestamp   FlexInt      `json:"timestamp"`
	Message     *Message     `json:"message,omitempty"`
	Read        *Read        `json:"read,omitempty"`
	Reaction    *Reaction    `json:"reaction,omitempty"`
	Postback    *Postback    `json:"postback,omitempty"`
	Referral    *Referral    `json:"referral,omitempty"`
	MessageEdit *MessageEdit `json:"message_edit,omitempty"`
}

// Message is a message, an echo of the business's own message, or an unsend.
type Message struct {
	MID           string       `json:"mid"`
	Text          string       `json:"text"`
	Attachments   []Attachment `json:"attachments"`
	ReplyTo       *ReplyTo     `json:"reply_to,omitempty"`
	QuickReply    *QuickReply  `json:"quick_reply,omitempty"`
	Referral      *Referral    `json:"referral,omitempty"`
	IsEcho        bool         `json:"is_echo"`
	IsDeleted     bool         `json:"is_deleted"`
	IsUnsupported bool         `json:"is_unsupported"`
}

// Attachment is one attachment of an incoming message.
type Attachment struct {
	Type    string            `json:"type"`
	Payload AttachmentPayload `json:"payload"`
}

// AttachmentPayload is the media of an attachment.
type AttachmentPayload struct {
	URL   string `json:"url"`
	Title string `json:"title"`
}

// ReplyTo names what a message replies to: a message or a story.
type ReplyTo struct {
	MID   string `json:"mid"`
	Story *Story `json:"story,omitempty"`
}

// Story is the story a message replies to.
type Story struct {
	ID  string `json:"id"`
	URL string `json:"url"`
}

// QuickReply is the quick reply a customer tapped.
type QuickReply struct {
	Payload string `json:"payload"`
}

// Read is a read receipt: the customer has read up to MID.
type Read struct {
	MID string `json:"mid"`
}

// Reaction is a reaction added to or removed from a message.
type Reaction struct {
	MID      string `json:"mid"`
	Action   string `json:"action"`
	Reaction string `json:"reaction"`
	Emoji    string `json:"emoji"`
}

// Postback is a tap on a button.
type Postback struct {
	MID     string `json:"mid"`
	Title   string `json:"title"`
	Payload string `json:"payload"`
}

// Referral tells where a conversation came from.
type Referral struct {
	Ref    string `json:"ref"`
	Source string `json:"source"`
	Type   string `json:"type"`
}

// MessageEdit is a new text for an existing message.
type MessageEdit struct {
	MID     string  `json:"mid"`
	Text    string  `json:"text"`
	NumEdit FlexInt `json:"num_edit"`
}

// EventType names an item for metrics and dispatch.
type EventType string

// Event types, as they appear in the type label of
// instagram_webhook_events_total.
const (
	EventMessage  EventType = "message"
	EventEcho     EventType = "echo"
	EventUnsend   EventType = "unsend"
	EventRead     EventType = "read"
	EventReaction EventType = "reaction"
	EventPostback EventType = "postback"
	EventReferral EventType = "referral"
	EventEdit     EventType = "edit"
	// EventTest is an entry of the dashboard "Test" envelope.
	EventTest EventType = "test"
	// EventUnknown is anything this receiver does not understand yet; it is
	// counted and acknowledged so Meta does not retry it forever.
	EventUnknown EventType = "unknown"
)

// Kind classifies an item. An unsend is checked before an echo: a business
// may delete its own message, and what matters then is the deletion.
func (it *Item) Kind() EventType {
	switch {
	case it.Message != nil && it.Message.IsDeleted:
		return EventUnsend
	case it.Message != nil && it.Message.IsEcho:
		return EventEcho
	case it.Message != nil:
		return EventMessage
	case it.MessageEdit != nil:
		return EventEdit
	case it.Read != nil:
		return EventRead
	case it.Reaction != nil:
		return EventReaction
	case it.Postback != nil:
		return EventPostback
	case it.Referral != nil:
		return EventReferral
	default:
		return EventUnknown
	}
}

// ErrMalformed wraps every reason ParseDelivery refuses a body.
var ErrMalformed = errors.New("malformed delivery")

// ParseDelivery decodes a verified body. It never panics on any input (the
// fuzz target holds it to that); a body that is not one JSON object, or whose
// known fields have the wrong JSON type, is ErrMalformed.
func ParseDelivery(body []byte) (*Delivery, error) {
	var d Delivery
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return &d, nil
}

// FlexString is an ID that Meta sends as a JSON string, and in some payloads
// (the dashboard test, older API versions) as a number. Both decode to the
// decimal text.
type FlexString string

// UnmarshalJSON accepts a string, a number or null.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = FlexString(v)
	case bytes.Equal(b, []byte("null")):
		*s = ""
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("id: want a string or a number: %w", err)
		}
		*s = FlexString(n.String())
	}
	return nil
}

// FlexInt is a timestamp or counter that Meta sends as a number, and in some
// payloads as a string of digits.
type FlexInt int64

// UnmarshalJSON accepts an integer, a string holding one, or null.
func (n *FlexInt) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*n = 0
		return nil
	}
	text := b
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		text = []byte(v)
	}
	v, err := strconv.ParseInt(string(text), 10, 64)
	if err != nil {
		// Some payloads carry a float (e.g. 1.7e12); keep its integer part.
		f, ferr := strconv.ParseFloat(string(text), 64)
		if ferr != nil || f != f || f > 9.2e18 || f < -9.2e18 {
			return errors.New("want an integer")
		}
		v = int64(f)
	}
	*n = FlexInt(v)
	return nil
}
