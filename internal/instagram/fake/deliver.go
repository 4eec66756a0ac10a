package fake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Meta still sends the legacy X-Hub-Signature (SHA-1) beside SHA-256.
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// Webhook fields the deliveries belong to.
const (
	FieldMessages           = "messages"
	FieldMessagingSeen      = "messaging_seen"
	FieldMessageReactions   = "message_reactions"
	FieldMessagingPostbacks = "messaging_postbacks"
	FieldMessagingReferral  = "messaging_referral"
	FieldMessageEdit        = "message_edit"
	FieldMessagingOptins    = "messaging_optins"
	FieldMessagingHandover  = "messaging_handover"
	FieldStandby            = "standby"
	FieldComments           = "comments"
	FieldLiveComments       = "live_comments"
	FieldMentions           = "mentions"
)

// itemKeyFields maps the key of a messaging item to the webhook field Meta
// delivers it under.
var itemKeyFields = map[string]string{
	"message":                FieldMessages,
	"read":                   FieldMessagingSeen,
	"reaction":               FieldMessageReactions,
	"postback":               FieldMessagingPostbacks,
	"referral":               FieldMessagingReferral,
	"message_edit":           FieldMessageEdit,
	"optin":                  FieldMessagingOptins,
	"pass_thread_control":    FieldMessagingHandover,
	"take_thread_control":    FieldMessagingHandover,
	"request_thread_control": FieldMessagingHandover,
}

var (
	// ErrNotSubscribed: no app has the account subscribed to the event's
	// field, so Meta would deliver nothing.
	ErrNotSubscribed = errors.New("fake: no app has the account subscribed to this webhook field")
	// ErrNoCallbackURL: the app has no callback URL and Options.ReceiverURL
	// is empty.
	ErrNoCallbackURL = errors.New("fake: the app has no webhook callback URL")
	// ErrUnknownMessage: no message with that mid.
	ErrUnknownMessage = errors.New("fake: unknown message id")
	// ErrInvalidEvent: not an event Instagram documents.
	ErrInvalidEvent = errors.New("fake: not a documented webhook event")
)

// Envelope is Meta's webhook body for Instagram.
type Envelope struct {
	Object string  `json:"object"`
	Entry  []Entry `json:"entry"`
}

// Entry is one account's events; ID is the account's user_id.
type Entry struct {
	ID        string      `json:"id"`
	Time      int64       `json:"time"`
	Messaging []Messaging `json:"messaging,omitempty"`
	// Changes are comments, live_comments and mentions notifications.
	Changes []Change `json:"changes,omitempty"`
}

// Change is one changes notification.
type Change struct {
	Field string         `json:"field"`
	Value map[string]any `json:"value"`
}

// Messaging is one event.
type Messaging struct {
	Sender    Party     `json:"sender"`
	Recipient Party     `json:"recipient"`
	Timestamp int64     `json:"timestamp"`
	Message   *Message  `json:"message,omitempty"`
	Read      *Read     `json:"read,omitempty"`
	Reaction  *Reaction `json:"reaction,omitempty"`
}

// Party is a sender or recipient.
type Party struct {
	ID string `json:"id"`
}

// Message is a message event (a customer DM, an echo or an unsend).
type Message struct {
	MID         string       `json:"mid"`
	Text        string       `json:"text,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	ReplyTo     *ReplyTo     `json:"reply_to,omitempty"`
	IsEcho      bool         `json:"is_echo,omitempty"`
	IsDeleted   bool         `json:"is_deleted,omitempty"`
}

// Attachment is one attachment of a message.
type Attachment struct {
	Type    string            `json:"type"`
	Payload AttachmentPayload `json:"payload"`
}

// AttachmentPayload holds the attachment's URL.
type AttachmentPayload struct {
	URL string `json:"url"`
}

// ReplyTo names the message replied to.
type ReplyTo struct {
	MID string `json:"mid"`
}

// Read is a read receipt: the customer has read up to MID.
type Read struct {
	MID string `json:"mid"`
}

// Reaction is a reaction event. Action is "react" or "unreact".
type Reaction struct {
	MID      string `json:"mid"`
	Action   string `json:"action"`
	Reaction string `json:"reaction,omitempty"`
	Emoji    string `json:"emoji,omitempty"`
}

// NewEnvelope wraps events for one account in Meta's envelope.
func NewEnvelope(accountUserID string, at time.Time, events ...Messaging) Envelope {
	return Envelope{Object: "instagram", Entry: []Entry{{ID: accountUserID, Time: at.UnixMilli(), Messaging: events}}}
}

// SignatureHeader is the X-Hub-Signature-256 value Meta sends:
// sha256=<hex HMAC-SHA256(appSecret, body)>.
func SignatureHeader(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func legacySignatureHeader(appSecret string, body []byte) string {
	mac := hmac.New(sha1.New, []byte(appSecret))
	mac.Write(body)
	return "sha1=" + hex.EncodeToString(mac.Sum(nil))
}

// Delivery is one webhook POST the fake made.
type Delivery struct {
	AppID string
	URL   string
	Body  []byte
	// Signature is the X-Hub-Signature-256 header sent.
	Signature string
	// Status is the receiver's HTTP status; 0 when it could not be reached.
	Status int
	Err    string
	At     time.Time
}

// Deliveries returns the webhook POSTs made, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// Deliver POSTs payload to the app's callback URL, signed with the app
// secret. payload is sent as is when it is []byte or json.RawMessage and
// JSON-encoded otherwise. It fails when the receiver cannot be reached or
// answers other than 2xx; either way the attempt is in Deliveries.
func (s *Server) Deliver(ctx context.Context, appID string, payload any) (Delivery, error) {
	var body []byte
	switch p := payload.(type) {
	case []byte:
		body = p
	case json.RawMessage:
		body = p
	default:
		b, err := json.Marshal(payload)
		if err != nil {
			return Delivery{}, fmt.Errorf("fake: encode webhook payload: %w", err)
		}
		body = b
	}
	s.mu.Lock()
	a, ok := s.apps[appID]
	var url, secret string
	if ok {
		url, secret = a.callbackURL, a.secret
		if url == "" {
			url = s.opts.ReceiverURL
		}
	}
	s.mu.Unlock()
	if !ok {
		return Delivery{}, fmt.Errorf("fake: unknown app %q", appID)
	}
	if url == "" {
		return Delivery{}, ErrNoCallbackURL
	}

	d := Delivery{AppID: appID, URL: url, Body: body, Signature: SignatureHeader(secret, body)}
	err := s.post(ctx, &d, secret)
	d.At = s.clock.Now()
	if err != nil {
		d.Err = err.Error()
	}
	s.mu.Lock()
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
	return d, err
}

func (s *Server) post(ctx context.Context, d *Delivery, secret string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return fmt.Errorf("fake: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "facebookexternalua")
	req.Header.Set("X-Hub-Signature-256", d.Signature)
	req.Header.Set("X-Hub-Signature", legacySignatureHeader(secret, d.Body))
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("fake: webhook delivery: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxRequestBytes))
	d.Status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("fake: webhook receiver answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// deliverToSubscribers delivers events of accountUserID to every app that
// has the account subscribed to field, as Meta does.
func (s *Server) deliverToSubscribers(ctx context.Context, accountUserID, field string, events ...Messaging) error {
	return s.deliverEnvelope(ctx, accountUserID, field, NewEnvelope(accountUserID, s.clock.Now(), events...))
}

// DeliverItem delivers one messaging item of any documented kind (INSTAGRAM-
// API.md "Webhook events, field by field") from customerID to the account,
// under the field Meta uses for its key: item holds that key, e.g.
// {"postback": {...}} or {"optin": {...}}; sender, recipient and timestamp
// are filled in. standby delivers it on the standby channel (field
// "standby" is then not required: Meta sends standby to the apps that have
// the item's field). It fails for an item with no documented key.
func (s *Server) DeliverItem(ctx context.Context, accountUserID, customerID string, item map[string]any, standby bool) error {
	field := ""
	for k := range item {
		if f, ok := itemKeyFields[k]; ok {
			field = f
		}
	}
	if field == "" {
		return fmt.Errorf("%w: the item has no documented event key", ErrInvalidEvent)
	}
	full := map[string]any{
		"sender":    map[string]any{"id": customerID},
		"recipient": map[string]any{"id": accountUserID},
		"timestamp": s.clock.Now().UnixMilli(),
	}
	for k, v := range item {
		full[k] = v
	}
	if m, ok := item["message"].(map[string]any); ok && m["is_echo"] == true {
		full["sender"], full["recipient"] = full["recipient"], full["sender"]
	}
	env := map[string]any{"object": "instagram", "entry": []any{map[string]any{
		"id": accountUserID, "time": s.clock.Now().UnixMilli(),
		map[bool]string{false: "messaging", true: "standby"}[standby]: []any{full},
	}}}
	return s.deliverEnvelope(ctx, accountUserID, field, env)
}

// DeliverChange delivers a comments, live_comments or mentions notification
// for the account, in Meta's changes shape (entry time in seconds, as in
// Meta's examples).
func (s *Server) DeliverChange(ctx context.Context, accountUserID, field string, value map[string]any) error {
	switch field {
	case FieldComments, FieldLiveComments, FieldMentions:
	default:
		return fmt.Errorf("%w: %q is not a changes field", ErrInvalidEvent, field)
	}
	env := Envelope{Object: "instagram", Entry: []Entry{{
		ID: accountUserID, Time: s.clock.Now().Unix(), Changes: []Change{{Field: field, Value: value}},
	}}}
	return s.deliverEnvelope(ctx, accountUserID, field, env)
}

// deliverEnvelope delivers env to every app with the account subscribed to
// field.
func (s *Server) deliverEnvelope(ctx context.Context, accountUserID, field string, env any) error {
	s.mu.Lock()
	var apps []string
	for k, fields := range s.subs {
		if k.userID == accountUserID && slices.Contains(fields, field) {
			apps = append(apps, k.appID)
		}
	}
	s.mu.Unlock()
	if len(apps) == 0 {
		return ErrNotSubscribed
	}
	slices.Sort(apps)
	var errs []error
	for _, appID := range apps {
		if _, err := s.Deliver(ctx, appID, env); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CustomerMessage is a DM from a customer to an account.
type CustomerMessage struct {
	AccountUserID string
	CustomerID    string
	Text          string
	Attachments   []Attachment
	ReplyToMID    string
	// MID is generated when empty.
	MID string
}

// DeliverMessage makes the customer send a DM: it opens the messaging
// window and is delivered (field "messages") to every app the account is
// subscribed to. It returns the message's mid; ErrNotSubscribed when no app
// receives it (the message still exists on Instagram's side).
func (s *Server) DeliverMessage(ctx context.Context, m CustomerMessage) (string, error) {
	if m.AccountUserID == "" || m.CustomerID == "" {
		return "", errors.New("fake: a customer message needs an account and a customer")
	}
	if m.MID == "" {
		m.MID = newMID()
	}
	now := s.clock.Now()
	s.mu.Lock()
	if _, ok := s.customers[m.CustomerID]; !ok {
		s.customers[m.CustomerID] = &Customer{IGSID: m.CustomerID}
	}
	s.lastCustomerMsg[convKey{m.AccountUserID, m.CustomerID}] = now
	s.inbound[m.MID] = inboundMessage{accountUserID: m.AccountUserID, customerID: m.CustomerID, text: m.Text, at: now}
	s.mu.Unlock()

	msg := &Message{MID: m.MID, Text: m.Text, Attachments: m.Attachments}
	if m.ReplyToMID != "" {
		msg.ReplyTo = &ReplyTo{MID: m.ReplyToMID}
	}
	ev := Messaging{Sender: Party{m.CustomerID}, Recipient: Party{m.AccountUserID}, Timestamp: now.UnixMilli(), Message: msg}
	return m.MID, s.deliverToSubscribers(ctx, m.AccountUserID, FieldMessages, ev)
}

// conversationOf finds the account and customer of a sent or received mid.
func (s *Server) conversationOf(mid string) (accountUserID, customerID string, sent bool, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conversationOfLocked(mid)
}

func (s *Server) conversationOfLocked(mid string) (accountUserID, customerID string, sent bool, ok bool) {
	for _, m := range s.sent {
		if m.MID == mid || slices.Contains(m.MoreMIDs, mid) {
			return m.AccountUserID, m.RecipientID, true, true
		}
	}
	if in, found := s.inbound[mid]; found {
		return in.accountUserID, in.customerID, false, true
	}
	return "", "", false, false
}

// DeliverReaction makes the customer react to a message (sent or received)
// and delivers it (field "message_reactions"). Action defaults to "react".
func (s *Server) DeliverReaction(ctx context.Context, r Reaction) error {
	account, customer, _, ok := s.conversationOf(r.MID)
	if !ok {
		return ErrUnknownMessage
	}
	if r.Action == "" {
		r.Action = "react"
	}
	ev := Messaging{Sender: Party{customer}, Recipient: Party{account}, Timestamp: s.clock.Now().UnixMilli(), Reaction: &r}
	return s.deliverToSubscribers(ctx, account, FieldMessageReactions, ev)
}

// DeliverRead makes the customer read up to a message the account sent and
// delivers the receipt (field "messaging_seen").
func (s *Server) DeliverRead(ctx context.Context, mid string) error {
	account, customer, sent, ok := s.conversationOf(mid)
	if !ok || !sent {
		return ErrUnknownMessage
	}
	return s.deliverToSubscribers(ctx, account, FieldMessagingSeen, readEvent(account, customer, mid, s.clock.Now()))
}

func readEvent(account, customer, mid string, at time.Time) Messaging {
	return Messaging{Sender: Party{customer}, Recipient: Party{account}, Timestamp: at.UnixMilli(), Read: &Read{MID: mid}}
}

// DeliverUnsend makes the customer unsend a message they sent and delivers
// it (field "messages", message.is_deleted).
func (s *Server) DeliverUnsend(ctx context.Context, mid string) error {
	account, customer, sent, ok := s.conversationOf(mid)
	if !ok || sent {
		return ErrUnknownMessage
	}
	ev := Messaging{Sender: Party{customer}, Recipient: Party{account}, Timestamp: s.clock.Now().UnixMilli(),
		Message: &Message{MID: mid, IsDeleted: true}}
	return s.deliverToSubscribers(ctx, account, FieldMessages, ev)
}

// afterSend delivers the echoes and schedules the read receipt of a sent
// message, as configured: one echo per mid, and the receipt for the last.
func (s *Server) afterSend(m SentMessage) {
	mids := append([]string{m.MID}, m.MoreMIDs...)
	if s.opts.DeliverEcho {
		var events []Messaging
		for i, mid := range mids {
			msg := &Message{MID: mid, Text: m.Text, IsEcho: true}
			atts := m.Attachments
			if len(m.MoreMIDs) > 0 {
				atts = m.Attachments[i : i+1]
			}
			for _, a := range atts {
				if a.URL != "" {
					msg.Attachments = append(msg.Attachments, Attachment{Type: a.Type, Payload: AttachmentPayload{URL: a.URL}})
				}
			}
			if m.ReplyTo != "" {
				msg.ReplyTo = &ReplyTo{MID: m.ReplyTo}
			}
			events = append(events, Messaging{Sender: Party{m.AccountUserID}, Recipient: Party{m.RecipientID}, Timestamp: m.At.UnixMilli(), Message: msg})
		}
		s.background(func(ctx context.Context) error {
			return s.deliverToSubscribers(ctx, m.AccountUserID, FieldMessages, events...)
		})
	}
	if s.opts.AutoReadAfter > 0 {
		if s.closed.Load() {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		// With a fake clock the callback runs inside Step while the clock is
		// locked: it must neither read the clock nor take s.mu, so it only
		// hands the work to a goroutine (counted first, so Flush after Step
		// waits for it).
		last := mids[len(mids)-1]
		t := s.clock.AfterFunc(s.opts.AutoReadAfter, func() {
			s.background(func(ctx context.Context) error {
				return s.deliverToSubscribers(ctx, m.AccountUserID, FieldMessagingSeen,
					readEvent(m.AccountUserID, m.RecipientID, last, s.clock.Now()))
			})
		})
		s.timers = append(s.timers, t)
	}
}

// background runs a delivery outside the request, counted for Flush.
func (s *Server) background(deliver func(ctx context.Context) error) {
	if s.closed.Load() {
		return
	}
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := deliver(ctx); err != nil && !errors.Is(err, ErrNotSubscribed) {
			s.log.Error(err, "Background webhook delivery failed")
		}
	}()
}
