package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// Event types, documented in docs/events.md. Reverse-DNS of the API group,
// then what happened; a type is API: renaming one breaks consumers'
// triggers.
const (
	TypePrefix = "io.leadchat.instagram."

	TypeMessageReceived = TypePrefix + "message.received"
	TypeMessageEcho     = TypePrefix + "message.echo"
	TypeMessageEdited   = TypePrefix + "message.edited"
	TypeMessageDeleted  = TypePrefix + "message.deleted"
	TypeMessageRead     = TypePrefix + "message.read"
	TypeReactionAdded   = TypePrefix + "reaction.added"
	TypeReactionRemoved = TypePrefix + "reaction.removed"
	TypePostback        = TypePrefix + "postback"
	TypeReferral        = TypePrefix + "referral"
	TypeOptin           = TypePrefix + "optin"
	TypeHandover        = TypePrefix + "handover"
	TypeComment         = TypePrefix + "comment"
	TypeLiveComment     = TypePrefix + "comment.live"
	TypeMention         = TypePrefix + "mention"

	// Outgoing outcomes, sent by the manager.
	TypeMessageSent   = TypePrefix + "message.sent"
	TypeMessageFailed = TypePrefix + "message.failed"
)

// ExtensionPartitionKey is the CloudEvents partitioning extension: Knative's
// KafkaSink uses it as the record key, so each conversation stays in order
// on its partition.
const ExtensionPartitionKey = "partitionkey"

// ExtensionChannel names the channel ("<namespace>/<name>") for filters
// that cannot parse source (Knative Trigger attribute filters).
const ExtensionChannel = "igchannel"

// Source is the event source of a channel: its API path, the form Knative's
// ApiServerSource uses, so it names exactly one object cluster-wide.
func Source(namespace, channel string) string {
	return "/apis/instagram.leadchat.io/v1alpha1/namespaces/" + namespace + "/instagramchannels/" + channel
}

// PartitionKey keeps a conversation's events together and in order.
func PartitionKey(namespace, channel, conversation string) string {
	return namespace + "/" + channel + "/" + conversation
}

// ID is the deterministic id of an event: the same webhook event, delivered
// again by Meta, or the same outcome sent again by the manager, gets the
// same id, so a consumer deduplicates on (source, id). key is what names
// the event within its type (a mid, or a synthetic key for events without
// one); at is the event's own time.
func ID(namespace, channel, typ, key string, at time.Time) string {
	h := sha256.New()
	for _, part := range []string{namespace, channel, typ, key, strconv.FormatInt(at.UnixMilli(), 10)} {
		// Length-prefixed, so no two part lists hash alike.
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Spec is what an event is made of.
type Spec struct {
	Namespace, Channel string
	Type               string
	// Key names the event within its type (see ID).
	Key string
	// Subject is the conversation: the customer's IGSID, or comments/<id>.
	Subject string
	// Time is the event's own time (Meta's, or the outcome's); part of the
	// id, so never the time of the write.
	Time time.Time
	// Now is the event's time when Time is zero (an event Meta sent
	// without one).
	Now time.Time
	// Data is encoded as JSON.
	Data any
}

// New builds the CloudEvent of s: spec 1.0, JSON data, time to the
// millisecond (what Meta sends), the partition key of the conversation.
func New(s Spec) (cloudevents.Event, error) {
	ev := cloudevents.NewEvent(cloudevents.VersionV1)
	ev.SetID(ID(s.Namespace, s.Channel, s.Type, s.Key, s.Time))
	ev.SetSource(Source(s.Namespace, s.Channel))
	ev.SetType(s.Type)
	ev.SetSubject(s.Subject)
	at := s.Time
	if at.IsZero() {
		at = s.Now
	}
	ev.SetTime(at.UTC().Truncate(time.Millisecond))
	ev.SetExtension(ExtensionPartitionKey, PartitionKey(s.Namespace, s.Channel, s.Subject))
	ev.SetExtension(ExtensionChannel, s.Namespace+"/"+s.Channel)
	if err := ev.SetData(cloudevents.ApplicationJSON, s.Data); err != nil {
		return ev, fmt.Errorf("encode %s data: %w", s.Type, err)
	}
	if err := ev.Validate(); err != nil {
		return ev, fmt.Errorf("invalid %s event: %w", s.Type, err)
	}
	return ev, nil
}

// RedactURI is a sink URI fit for logs and Events: without user info,
// query or fragment, which may carry credentials.
func RedactURI(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable>"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
