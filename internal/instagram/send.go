package instagram

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"unicode/utf8"
)

// SendRequest is one call of the Send API (POST /vNN.0/me/messages): a
// message with exactly one kind of content, or a sender action. Build it
// with one of Message or Action set; SendMessage refuses anything else
// before any call, with a NotDelivered ClassBadRequest error.
type SendRequest struct {
	// AccountID is the professional account's user_id. It keys the
	// per-account rate limits; empty draws from no per-account bucket.
	AccountID string
	// RecipientID is the customer's IGSID.
	RecipientID string
	// CommentID, instead of RecipientID, sends the message as the private
	// reply to that comment (recipient.comment_id): text only.
	CommentID string
	// HumanAgent sends with messaging_type MESSAGE_TAG and tag HUMAN_AGENT.
	HumanAgent bool
	// ReplyTo is the mid the message replies to (optional; undocumented
	// for Instagram Login, sent as message.reply_to.mid).
	ReplyTo string

	Message *MessageContent
	Action  *SenderAction
}

// MessageContent is the message of a send: exactly one of Text (with
// optional QuickReplies), Images, Attachment, HeartSticker, MediaShareID,
// Button or Generic.
type MessageContent struct {
	Text         string
	QuickReplies []QuickReply
	// Images are sent as message.attachments (two to ten images in one
	// message); one image is sent as message.attachment.
	Images []Image
	// Attachment is one video, audio file or file (or one image).
	Attachment *Attachment
	// HeartSticker sends attachment type like_heart.
	HeartSticker bool
	// MediaShareID shares one of the account's own posts (MEDIA_SHARE).
	MediaShareID string
	Button       *ButtonTemplate
	Generic      *GenericTemplate
}

// QuickReply is one quick reply; ContentType is text, user_phone_number or
// user_email.
type QuickReply struct {
	ContentType string
	Title       string
	Payload     string
}

// Image is an image by public URL or by the ID of an uploaded attachment.
type Image struct {
	URL          string
	AttachmentID string
}

// Attachment is one media attachment by URL.
type Attachment struct {
	Type string // image, video, audio, file
	URL  string
}

// Button is a template button: type web_url (URL) or postback (Payload).
type Button struct {
	Type    string
	Title   string
	URL     string
	Payload string
}

// ButtonTemplate is a text with up to three buttons.
type ButtonTemplate struct {
	Text    string
	Buttons []Button
}

// GenericElement is one card of a generic template.
type GenericElement struct {
	Title            string
	Subtitle         string
	ImageURL         string
	DefaultActionURL string
	Buttons          []Button
}

// GenericTemplate is a carousel.
type GenericTemplate struct {
	Elements []GenericElement
}

// SenderAction is an action that is not a message: react, unreact,
// typing_on, typing_off or mark_seen. MessageID is the reacted-to mid
// (react and unreact); Reaction is love or an emoji (react).
type SenderAction struct {
	Action    string
	MessageID string
	Reaction  string
}

// Instagram's limits the client checks before calling, so a request
// Instagram would refuse is refused without a call.
const (
	maxTextBytes    = 1000
	maxQuickReplies = 13
	maxImages       = 10
	maxButtons      = 3
	maxElements     = 10
)

// RateKind is the per-account rate limit a send counts against
// (INSTAGRAM-API.md "Rate limits per account").
type RateKind string

const (
	// RateText: text, links, reactions, stickers, templates, images and
	// sender actions (100/s per account).
	RateText RateKind = "text"
	// RateMedia: audio and video (10/s per account).
	RateMedia RateKind = "media"
	// RatePrivateReply: private replies to comments (750/h per account).
	RatePrivateReply RateKind = "private_reply"
)

// Kind is what the request sends, for metrics and rate limits: the kind
// of content or the sender action.
func (r SendRequest) Kind() string {
	if r.CommentID != "" {
		return "private_reply"
	}
	if r.Action != nil {
		return r.Action.Action
	}
	m := r.Message
	switch {
	case m == nil:
		return ""
	case m.Text != "" && len(m.QuickReplies) > 0:
		return "quick_replies"
	case m.Text != "":
		return "text"
	case len(m.Images) == 1:
		return "image"
	case len(m.Images) > 0:
		return "images"
	case m.Attachment != nil:
		return m.Attachment.Type
	case m.HeartSticker:
		return "like_heart"
	case m.MediaShareID != "":
		return "media_share"
	case m.Button != nil:
		return "button_template"
	case m.Generic != nil:
		return "generic_template"
	}
	return ""
}

// RateKind is the per-account bucket the request draws from.
func (r SendRequest) RateKind() RateKind {
	if r.CommentID != "" {
		return RatePrivateReply
	}
	if m := r.Message; m != nil && m.Attachment != nil && (m.Attachment.Type == "audio" || m.Attachment.Type == "video") {
		return RateMedia
	}
	return RateText
}

// Wire format of POST /me/messages. Every key is as INSTAGRAM-API.md
// "Sending" and "Sending, extended" document it.
type (
	sendBody struct {
		Recipient     sendRecipient `json:"recipient"`
		MessagingType string        `json:"messaging_type,omitempty"`
		Tag           string        `json:"tag,omitempty"`
		Message       *sendMessage  `json:"message,omitempty"`
		SenderAction  string        `json:"sender_action,omitempty"`
		Payload       *actionBody   `json:"payload,omitempty"`
	}
	sendRecipient struct {
		ID        string `json:"id,omitempty"`
		CommentID string `json:"comment_id,omitempty"`
	}
	sendMessage struct {
		Text         string           `json:"text,omitempty"`
		QuickReplies []quickReplyBody `json:"quick_replies,omitempty"`
		Attachment   *attachmentBody  `json:"attachment,omitempty"`
		Attachments  []attachmentBody `json:"attachments,omitempty"`
		ReplyTo      *sendReplyTo     `json:"reply_to,omitempty"`
	}
	quickReplyBody struct {
		ContentType string `json:"content_type"`
		Title       string `json:"title,omitempty"`
		Payload     string `json:"payload,omitempty"`
	}
	attachmentBody struct {
		Type    string `json:"type"`
		Payload any    `json:"payload,omitempty"`
	}
	urlPayload struct {
		URL string `json:"url"`
	}
	attachmentIDPayload struct {
		AttachmentID string `json:"attachment_id"`
	}
	mediaSharePayload struct {
		ID string `json:"id"`
	}
	templatePayload struct {
		TemplateType string        `json:"template_type"`
		Text         string        `json:"text,omitempty"`
		Buttons      []buttonBody  `json:"buttons,omitempty"`
		Elements     []elementBody `json:"elements,omitempty"`
	}
	buttonBody struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		URL     string `json:"url,omitempty"`
		Payload string `json:"payload,omitempty"`
	}
	elementBody struct {
		Title         string             `json:"title"`
		Subtitle      string             `json:"subtitle,omitempty"`
		ImageURL      string             `json:"image_url,omitempty"`
		DefaultAction *defaultActionBody `json:"default_action,omitempty"`
		Buttons       []buttonBody       `json:"buttons,omitempty"`
	}
	defaultActionBody struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	}
	sendReplyTo struct {
		MID string `json:"mid"`
	}
	actionBody struct {
		MessageID string `json:"message_id"`
		Reaction  string `json:"reaction,omitempty"`
	}
)

// body checks r against Instagram's rules and builds its JSON body. The
// error text names what is wrong.
func (r SendRequest) body() (*sendBody, error) {
	b := &sendBody{Recipient: sendRecipient{ID: r.RecipientID}}
	switch {
	case r.CommentID != "":
		m := r.Message
		if m == nil || m.Text == "" || len(m.QuickReplies) > 0 || r.HumanAgent || r.ReplyTo != "" {
			return nil, fmt.Errorf("a private reply is a text, without quick replies, tag or reply_to")
		}
		b.Recipient = sendRecipient{CommentID: r.CommentID}
	case r.RecipientID == "":
		return nil, fmt.Errorf("no recipient")
	}
	if r.HumanAgent {
		b.MessagingType, b.Tag = "MESSAGE_TAG", "HUMAN_AGENT"
	}
	switch {
	case (r.Message == nil) == (r.Action == nil):
		return nil, fmt.Errorf("a send carries a message or a sender action")
	case r.Action != nil:
		if r.HumanAgent || r.ReplyTo != "" {
			return nil, fmt.Errorf("a sender action takes no tag and no reply_to")
		}
		return b, r.Action.fill(b)
	}
	m, err := r.Message.body()
	if err != nil {
		return nil, err
	}
	if r.ReplyTo != "" {
		m.ReplyTo = &sendReplyTo{MID: r.ReplyTo}
	}
	b.Message = m
	return b, nil
}

func (a *SenderAction) fill(b *sendBody) error {
	b.SenderAction = a.Action
	switch a.Action {
	case "react":
		if a.MessageID == "" || a.Reaction == "" {
			return fmt.Errorf("react needs a message_id and a reaction")
		}
		b.Payload = &actionBody{MessageID: a.MessageID, Reaction: a.Reaction}
	case "unreact":
		if a.MessageID == "" || a.Reaction != "" {
			return fmt.Errorf("unreact takes a message_id only")
		}
		b.Payload = &actionBody{MessageID: a.MessageID}
	case "typing_on", "typing_off", "mark_seen":
		if a.MessageID != "" || a.Reaction != "" {
			return fmt.Errorf("%s takes no payload", a.Action)
		}
	default:
		return fmt.Errorf("unknown sender action %q", a.Action)
	}
	return nil
}

func (m *MessageContent) body() (*sendMessage, error) {
	kinds := 0
	for _, set := range []bool{m.Text != "", len(m.Images) > 0, m.Attachment != nil, m.HeartSticker,
		m.MediaShareID != "", m.Button != nil, m.Generic != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return nil, fmt.Errorf("a message carries exactly one of text, images, an attachment, the heart sticker, a post share or a template (got %d)", kinds)
	}
	if len(m.QuickReplies) > 0 && m.Text == "" {
		return nil, fmt.Errorf("quick replies go with a text")
	}
	out := &sendMessage{}
	switch {
	case m.Text != "":
		if len(m.Text) > maxTextBytes || !utf8.ValidString(m.Text) {
			return nil, fmt.Errorf("text must be valid UTF-8 of at most %d bytes", maxTextBytes)
		}
		out.Text = m.Text
		if len(m.QuickReplies) > maxQuickReplies {
			return nil, fmt.Errorf("at most %d quick replies", maxQuickReplies)
		}
		for _, q := range m.QuickReplies {
			qr := quickReplyBody{ContentType: q.ContentType, Title: q.Title, Payload: q.Payload}
			if qr.ContentType == "" {
				qr.ContentType = "text"
			}
			out.QuickReplies = append(out.QuickReplies, qr)
		}
	case len(m.Images) == 1:
		out.Attachment = imageBody(m.Images[0])
	case len(m.Images) > 0:
		if len(m.Images) > maxImages {
			return nil, fmt.Errorf("at most %d images in one message", maxImages)
		}
		for _, img := range m.Images {
			out.Attachments = append(out.Attachments, *imageBody(img))
		}
	case m.Attachment != nil:
		if m.Attachment.Type == "" || m.Attachment.URL == "" {
			return nil, fmt.Errorf("an attachment needs a type and a URL")
		}
		out.Attachment = &attachmentBody{Type: m.Attachment.Type, Payload: urlPayload{URL: m.Attachment.URL}}
	case m.HeartSticker:
		out.Attachment = &attachmentBody{Type: "like_heart"}
	case m.MediaShareID != "":
		out.Attachment = &attachmentBody{Type: "MEDIA_SHARE", Payload: mediaSharePayload{ID: m.MediaShareID}}
	case m.Button != nil:
		if len(m.Button.Buttons) == 0 || len(m.Button.Buttons) > maxButtons {
			return nil, fmt.Errorf("a button template has one to %d buttons", maxButtons)
		}
		out.Attachment = &attachmentBody{Type: "template", Payload: templatePayload{
			TemplateType: "button", Text: m.Button.Text, Buttons: buttonsBody(m.Button.Buttons),
		}}
	case m.Generic != nil:
		if len(m.Generic.Elements) == 0 || len(m.Generic.Elements) > maxElements {
			return nil, fmt.Errorf("a generic template has one to %d elements", maxElements)
		}
		p := templatePayload{TemplateType: "generic"}
		for _, e := range m.Generic.Elements {
			if len(e.Buttons) > maxButtons {
				return nil, fmt.Errorf("a generic template element has at most %d buttons", maxButtons)
			}
			el := elementBody{Title: e.Title, Subtitle: e.Subtitle, ImageURL: e.ImageURL, Buttons: buttonsBody(e.Buttons)}
			if e.DefaultActionURL != "" {
				el.DefaultAction = &defaultActionBody{Type: "web_url", URL: e.DefaultActionURL}
			}
			p.Elements = append(p.Elements, el)
		}
		out.Attachment = &attachmentBody{Type: "template", Payload: p}
	}
	return out, nil
}

func imageBody(img Image) *attachmentBody {
	if img.URL == "" {
		return &attachmentBody{Type: "image", Payload: attachmentIDPayload{AttachmentID: img.AttachmentID}}
	}
	return &attachmentBody{Type: "image", Payload: urlPayload{URL: img.URL}}
}

func buttonsBody(in []Button) []buttonBody {
	out := make([]buttonBody, 0, len(in))
	for _, b := range in {
		out = append(out, buttonBody{Type: b.Type, Title: b.Title, URL: b.URL, Payload: b.Payload})
	}
	return out
}

// SendMessage makes one call of the Send API. It waits for the app's and
// then the account's rate limit for the request's kind; a failure before
// the request reached the wire is NotDelivered. Any other failure is
// ambiguous: the message may have gone out.
//
// A sender action answers without a message_id; a message's answer carries
// the mid, and, where Instagram recorded the message as several (images),
// the others in message_ids (a shape Meta does not document: tolerated, not
// required).
func (c *client) SendMessage(ctx context.Context, token string, req SendRequest) (*SendResult, error) {
	b, err := req.body()
	if err != nil {
		return nil, badRequest(EndpointSend, err.Error())
	}
	if req.AccountID != "" {
		if err := wait(ctx, c.accountLimits.forAccount(req.AccountID, req.RateKind()), EndpointSend); err != nil {
			return nil, err
		}
	}
	var out *SendResult
	err = c.do(ctx, request{
		endpoint: EndpointSend,
		method:   http.MethodPost,
		url:      c.graphURL("/me/messages", nil),
		bearer:   token,
		json:     b,
		secrets:  []string{token},
	}, func(body []byte) error {
		var answer struct {
			RecipientID flexString   `json:"recipient_id"`
			MessageID   flexString   `json:"message_id"`
			MessageIDs  []flexString `json:"message_ids"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		if answer.MessageID == "" && req.Message != nil {
			return unexpected("no message_id in the answer")
		}
		out = &SendResult{RecipientID: string(answer.RecipientID), MessageID: string(answer.MessageID)}
		for _, id := range answer.MessageIDs {
			if id != "" && id != answer.MessageID {
				out.MoreMessageIDs = append(out.MoreMessageIDs, string(id))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
