package webhookserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"
)

// objectInstagram is the only envelope object this receiver accepts.
const objectInstagram = "instagram"

// Delivery is the envelope of one webhook POST. Meta may batch many entries,
// each for one account, into one delivery.
type Delivery struct {
	Object string
	Entry  []Entry
	// Malformed counts entries that could not be decoded. They are skipped
	// (and counted): one bad entry must not make Meta retry, for 36 hours,
	// the good entries it was batched with.
	Malformed int
}

// UnmarshalJSON decodes the envelope, then each entry on its own.
func (d *Delivery) UnmarshalJSON(b []byte) error {
	var raw struct {
		Object string            `json:"object"`
		Entry  []json.RawMessage `json:"entry"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*d = Delivery{Object: raw.Object, Entry: make([]Entry, 0, len(raw.Entry))}
	for _, r := range raw.Entry {
		var e Entry
		if err := json.Unmarshal(r, &e); err != nil {
			d.Malformed++
			continue
		}
		d.Entry = append(d.Entry, e)
	}
	return nil
}

// Entry carries the events of one Instagram professional account (ID is the
// account's user_id, the routing key of a channel).
type Entry struct {
	ID   FlexString
	Time FlexInt
	// Messaging holds the items of the messaging fields, Standby those
	// delivered while another app controls the thread (each such item has
	// Standby set).
	Messaging []Item
	Standby   []Item
	// Changes holds the notifications of the comments, live_comments and
	// mentions fields, and the dashboard "Test" delivery.
	Changes []Change
	// Malformed counts items or changes of this entry that could not be
	// decoded; the others are kept.
	Malformed int
}

// UnmarshalJSON decodes an entry, each item on its own.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID        FlexString        `json:"id"`
		Time      FlexInt           `json:"time"`
		Messaging []json.RawMessage `json:"messaging"`
		Standby   []json.RawMessage `json:"standby"`
		Changes   []json.RawMessage `json:"changes"`
		// Meta's Instagram Login example of a comment leaves out the
		// changes wrapper: field and value sit on the entry.
		Field string          `json:"field"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*e = Entry{ID: raw.ID, Time: raw.Time}
	decodeItems := func(in []json.RawMessage, standby bool) []Item {
		out := make([]Item, 0, len(in))
		for _, r := range in {
			var it Item
			if err := json.Unmarshal(r, &it); err != nil {
				e.Malformed++
				continue
			}
			it.Standby = standby
			out = append(out, it)
		}
		return out
	}
	e.Messaging = decodeItems(raw.Messaging, false)
	e.Standby = decodeItems(raw.Standby, true)
	for _, r := range raw.Changes {
		var c Change
		if err := json.Unmarshal(r, &c); err != nil {
			e.Malformed++
			continue
		}
		e.Changes = append(e.Changes, c)
	}
	if raw.Field != "" && len(raw.Value) > 0 {
		e.Changes = append(e.Changes, Change{Field: raw.Field, Value: raw.Value})
	}
	return nil
}

// Items are the entry's messaging and standby items, in that order.
func (e *Entry) Items() []Item { return slices.Concat(e.Messaging, e.Standby) }

// Change is one notification of a changes field. The value is decoded by
// the handler of its field (comments, mentions).
type Change struct {
	Field string          `json:"field"`
	Value json.RawMessage `json:"value"`
}

// Fields of changes notifications.
const (
	FieldMessages     = "messages"
	FieldComments     = "comments"
	FieldLiveComments = "live_comments"
	FieldMentions     = "mentions"
)

// IsTest tells the dashboard "Test" delivery (INSTAGRAM-API.md): an entry
// whose id is not an account ("0"), or a messages field inside changes,
// which real deliveries carry in messaging.
func (e *Entry) IsTest(c *Change) bool {
	return e.ID == "0" || c.Field == FieldMessages
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
	Optin       *Optin       `json:"optin,omitempty"`
	// Handover protocol (messaging_handover).
	PassThreadControl    *ThreadControl `json:"pass_thread_control,omitempty"`
	TakeThreadControl    *ThreadControl `json:"take_thread_control,omitempty"`
	RequestThreadControl *ThreadControl `json:"request_thread_control,omitempty"`

	// Standby is set for an item of entry.standby.
	Standby bool `json:"-"`
	// Unknown names keys of the item this receiver does not know
	// ("message.foo" for one inside message), sorted.
	Unknown []string `json:"-"`
}

// itemFields is Item without its methods, for decoding.
type itemFields Item

// UnmarshalJSON decodes strictly first: the common case, a shape this
// receiver knows, costs one pass. Only when that fails is the item decoded
// leniently and its unknown keys collected, so a field Meta adds later is
// counted and named, never a reason to drop the event.
func (it *Item) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode((*itemFields)(it)); err == nil {
		return nil
	}
	*it = Item{}
	if err := json.Unmarshal(b, (*itemFields)(it)); err != nil {
		return err
	}
	it.Unknown = unknownKeys(b, knownItemKeys, "")
	return nil
}

var (
	knownItemKeys = keySet("sender", "recipient", "timestamp", "message", "read", "reaction", "postback",
		"referral", "message_edit", "optin", "pass_thread_control", "take_thread_control", "request_thread_control")
	// nestedKnownKeys are the keys of the objects inside an item, by the
	// item key that holds them.
	nestedKnownKeys = map[string]map[string]bool{
		"sender":                 keySet("id"),
		"recipient":              keySet("id"),
		"message":                keySet("mid", "text", "attachments", "reply_to", "quick_reply", "referral", "is_echo", "is_deleted", "is_unsupported"),
		"read":                   keySet("mid", "watermark"),
		"reaction":               keySet("mid", "action", "reaction", "emoji"),
		"postback":               keySet("mid", "title", "payload", "referral"),
		"referral":               keySet("ref", "source", "type", "ad_id", "ads_context_data", "product", "referer_uri", "is_guest_user"),
		"message_edit":           keySet("mid", "text", "num_edit"),
		"optin":                  keySet("type", "payload", "ref", "title", "notification_messages_token", "notification_messages_frequency", "notification_messages_timezone", "token_expiry_timestamp", "user_token_status", "notification_messages_status"),
		"pass_thread_control":    keySet("previous_owner_app_id", "new_owner_app_id", "metadata"),
		"take_thread_control":    keySet("previous_owner_app_id", "new_owner_app_id", "metadata"),
		"request_thread_control": keySet("requested_owner_app_id", "metadata"),
	}
)

func keySet(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// unknownKeys lists the keys of the JSON object b that known lacks, and one
// level down those of the objects nestedKnownKeys describes.
func unknownKeys(b []byte, known map[string]bool, prefix string) []string {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	var out []string
	for k, v := range m {
		if !known[k] {
			out = append(out, prefix+k)
			continue
		}
		if prefix == "" {
			if sub, ok := nestedKnownKeys[k]; ok && len(v) > 0 && v[0] == '{' {
				out = append(out, unknownKeys(v, sub, k+".")...)
			}
		}
	}
	sort.Strings(out)
	return out
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

// AttachmentPayload is the media of an attachment. Which keys are set
// depends on the type (INSTAGRAM-API.md): url for most, story_media_id and
// story_media_url for ig_story, reel_video_id for ig_reel, ig_post_media_id
// for ig_post. Keys this receiver does not know are kept in Extra.
type AttachmentPayload struct {
	URL           string
	Title         string
	StoryMediaID  string
	StoryMediaURL string
	ReelVideoID   string
	PostMediaID   string
	ID            string
	AttachmentID  string
	StickerID     string
	// Extra holds the other keys: scalars as their text, objects and
	// arrays as compact JSON.
	Extra map[string]string
}

// UnmarshalJSON takes the payload's known keys and keeps the rest in Extra.
func (p *AttachmentPayload) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*p = AttachmentPayload{}
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*p = AttachmentPayload{}
	for k, v := range m {
		var dst *string
		switch k {
		case "url":
			dst = &p.URL
		case "title":
			dst = &p.Title
		case "story_media_id":
			dst = &p.StoryMediaID
		case "story_media_url":
			dst = &p.StoryMediaURL
		case "reel_video_id":
			dst = &p.ReelVideoID
		case "ig_post_media_id":
			dst = &p.PostMediaID
		case "id":
			dst = &p.ID
		case "attachment_id":
			dst = &p.AttachmentID
		case "sticker_id":
			dst = &p.StickerID
		}
		text := scalarText(v)
		if dst != nil {
			*dst = text
			continue
		}
		if p.Extra == nil {
			p.Extra = map[string]string{}
		}
		p.Extra[k] = text
	}
	return nil
}

// scalarText is a JSON value as text: a string unquoted, a number or bool
// as written, null as "", anything else as its compact JSON.
func scalarText(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || bytes.Equal(v, []byte("null")):
		return ""
	case v[0] == '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	case v[0] == '{' || v[0] == '[':
		var buf bytes.Buffer
		if json.Compact(&buf, v) == nil {
			return buf.String()
		}
	}
	return string(v)
}

// ReplyTo names what a message replies to: a message (MID) or a story.
type ReplyTo struct {
	MID   string `json:"mid"`
	Story *Story `json:"story,omitempty"`
}

// Story is the story a message replies to.
type Story struct {
	ID  FlexString `json:"id"`
	URL string     `json:"url"`
}

// QuickReply is the quick reply a customer tapped.
type QuickReply struct {
	Payload string `json:"payload"`
}

// Read is a read receipt: the customer has read up to MID.
type Read struct {
	MID string `json:"mid"`
	// Watermark is Messenger's read-up-to time (ms), where sent.
	Watermark FlexInt `json:"watermark"`
}

// Reaction is a reaction added to or removed from a message.
type Reaction struct {
	MID      string `json:"mid"`
	Action   string `json:"action"`
	Reaction string `json:"reaction"`
	Emoji    string `json:"emoji"`
}

// Postback is a tap on a button, an ice breaker or a menu item.
type Postback struct {
	MID      string    `json:"mid"`
	Title    string    `json:"title"`
	Payload  string    `json:"payload"`
	Referral *Referral `json:"referral,omitempty"`
}

// Referral tells where a conversation came from: an ig.me link, a
// Click-to-Direct ad, a Shops product.
type Referral struct {
	Ref            string          `json:"ref"`
	Source         string          `json:"source"`
	Type           string          `json:"type"`
	AdID           FlexString      `json:"ad_id"`
	AdsContextData *AdsContextData `json:"ads_context_data,omitempty"`
	Product        *Product        `json:"product,omitempty"`
	RefererURI     string          `json:"referer_uri"`
	IsGuestUser    bool            `json:"is_guest_user"`
}

// AdsContextData describes the ad of a Click-to-Direct referral.
type AdsContextData struct {
	AdTitle  string     `json:"ad_title"`
	PhotoURL string     `json:"photo_url"`
	VideoURL string     `json:"video_url"`
	PostID   FlexString `json:"post_id"`
}

// Product is the Shops product a customer asked about.
type Product struct {
	ID FlexString `json:"id"`
}

// MessageEdit is a new text for an existing message.
type MessageEdit struct {
	MID     string  `json:"mid"`
	Text    string  `json:"text"`
	NumEdit FlexInt `json:"num_edit"`
}

// Optin is a customer's opt-in (messaging_optins).
type Optin struct {
	Type                          string  `json:"type"`
	Payload                       string  `json:"payload"`
	Ref                           string  `json:"ref"`
	Title                         string  `json:"title"`
	NotificationMessagesToken     string  `json:"notification_messages_token"`
	NotificationMessagesFrequency string  `json:"notification_messages_frequency"`
	NotificationMessagesTimezone  string  `json:"notification_messages_timezone"`
	NotificationMessagesStatus    string  `json:"notification_messages_status"`
	TokenExpiryTimestamp          FlexInt `json:"token_expiry_timestamp"`
	UserTokenStatus               string  `json:"user_token_status"`
}

// ThreadControl is a handover of the conversation between apps.
type ThreadControl struct {
	PreviousOwnerAppID  FlexString `json:"previous_owner_app_id"`
	NewOwnerAppID       FlexString `json:"new_owner_app_id"`
	RequestedOwnerAppID FlexString `json:"requested_owner_app_id"`
	Metadata            string     `json:"metadata"`
}

// CommentValue is the value of a comments, live_comments or mentions
// notification.
type CommentValue struct {
	ID       FlexString   `json:"id"`
	From     CommentFrom  `json:"from"`
	Text     string       `json:"text"`
	Media    CommentMedia `json:"media"`
	ParentID FlexString   `json:"parent_id"`
	// Verb is add, edited or remove where Meta sends one (Facebook Login
	// notifications carry it; absent means add).
	Verb string `json:"verb"`
	// CreatedTime is the comment's time where Meta sends one.
	CreatedTime FlexInt `json:"created_time"`
	// MediaID and CommentID are the shape of a mentions notification.
	MediaID   FlexString `json:"media_id"`
	CommentID FlexString `json:"comment_id"`
}

// CommentFrom is the author of a comment.
type CommentFrom struct {
	ID             FlexString `json:"id"`
	Username       string     `json:"username"`
	SelfIGScopedID FlexString `json:"self_ig_scoped_id"`
}

// CommentMedia is the media a comment is on.
type CommentMedia struct {
	ID               FlexString `json:"id"`
	MediaProductType string     `json:"media_product_type"`
	AdID             FlexString `json:"ad_id"`
	AdTitle          string     `json:"ad_title"`
	OriginalMediaID  FlexString `json:"original_media_id"`
}

var knownCommentKeys = keySet("id", "from", "text", "media", "parent_id", "verb", "created_time", "media_id", "comment_id")

// EventType names an item for metrics and dispatch.
type EventType string

// Event types, as they appear in the type label of
// instagram_webhook_events_total.
const (
	EventMessage     EventType = "message"
	EventEcho        EventType = "echo"
	EventUnsend      EventType = "unsend"
	EventRead        EventType = "read"
	EventReaction    EventType = "reaction"
	EventPostback    EventType = "postback"
	EventReferral    EventType = "referral"
	EventEdit        EventType = "edit"
	EventOptin       EventType = "optin"
	EventHandover    EventType = "handover"
	EventComment     EventType = "comment"
	EventLiveComment EventType = "live_comment"
	EventMention     EventType = "mention"
	// EventTest is an entry of the dashboard "Test" envelope.
	EventTest EventType = "test"
	// EventMalformed is an entry, item or change that could not be
	// decoded; it is counted and skipped.
	EventMalformed EventType = "malformed"
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
	case it.Optin != nil:
		return EventOptin
	case it.PassThreadControl != nil || it.TakeThreadControl != nil || it.RequestThreadControl != nil:
		return EventHandover
	default:
		return EventUnknown
	}
}

// changeKind classifies a changes notification.
func changeKind(field string) EventType {
	switch field {
	case FieldComments:
		return EventComment
	case FieldLiveComments:
		return EventLiveComment
	case FieldMentions:
		return EventMention
	}
	return EventUnknown
}

// ErrMalformed wraps every reason ParseDelivery refuses a body.
var ErrMalformed = errors.New("malformed delivery")

// ParseDelivery decodes a verified body. It never panics on any input (the
// fuzz target holds it to that). A body that is not one JSON object, or
// whose object or entry have the wrong JSON type, is ErrMalformed; an entry
// or item that cannot be decoded is counted in Malformed and skipped.
func ParseDelivery(body []byte) (*Delivery, error) {
	var d Delivery
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return &d, nil
}

// MetaTime converts Meta's epoch time. Messaging times are milliseconds;
// the changes examples show seconds. No real time in milliseconds is below
// 1e11 (that is 1973), nor one in seconds above it (5138), so the size
// tells them apart.
func MetaTime(n FlexInt) time.Time {
	switch {
	case n <= 0:
		return time.Time{}
	case n < 1e11:
		return time.Unix(int64(n), 0).UTC()
	default:
		return time.UnixMilli(int64(n)).UTC()
	}
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
