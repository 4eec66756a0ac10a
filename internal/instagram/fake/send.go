package fake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The Send API (POST /vNN.0/me/messages) as INSTAGRAM-API.md "Sending" and
// "Sending, extended" describe it. The body is decoded strictly: a key
// Instagram does not document, a payload of the wrong shape for its type, or
// a limit passed is refused with code 100, so a client that builds the wire
// format wrongly fails its tests.

// Instagram's limits on sends.
const (
	MaxQuickReplies     = 13
	MaxQuickReplyTitle  = 20
	MaxImages           = 10
	MaxButtons          = 3
	MaxButtonTitle      = 20
	MaxGenericElements  = 10
	MaxGenericTextChars = 80
	MaxButtonTextChars  = 640
)

// SentQuickReply is a quick reply of a sent message.
type SentQuickReply struct {
	ContentType, Title, Payload string
}

// SentAttachment is an attachment of a sent message: URL or AttachmentID
// for media, MediaID for a post share.
type SentAttachment struct {
	Type, URL, AttachmentID, MediaID string
}

// SentButton is a button of a sent template.
type SentButton struct {
	Type, Title, URL, Payload string
}

// SentElement is an element of a sent generic template.
type SentElement struct {
	Title, Subtitle, ImageURL, DefaultActionURL string
	Buttons                                     []SentButton
}

// SentTemplate is a sent button or generic template.
type SentTemplate struct {
	TemplateType string // button or generic
	Text         string
	Buttons      []SentButton
	Elements     []SentElement
}

// SentAction is a sender action the send endpoint accepted.
type SentAction struct {
	AppID, AccountUserID, RecipientID string
	// Action is react, unreact, typing_on, typing_off or mark_seen.
	Action string
	// MessageID and Reaction of a react or unreact.
	MessageID, Reaction string
	At                  time.Time
	Body                []byte
}

// AddPost registers a post (media) of an account: only the owner may share
// it in a message (MEDIA_SHARE).
func (s *Server) AddPost(accountUserID, mediaID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts[mediaID] = accountUserID
}

// SenderActions returns the sender actions accepted, oldest first.
func (s *Server) SenderActions() []SentAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.actions)
}

type wireSend struct {
	Recipient struct {
		ID        string `json:"id"`
		CommentID string `json:"comment_id"`
	} `json:"recipient"`
	MessagingType string       `json:"messaging_type"`
	Tag           string       `json:"tag"`
	Message       *wireMessage `json:"message"`
	SenderAction  string       `json:"sender_action"`
	Payload       *struct {
		MessageID string `json:"message_id"`
		Reaction  string `json:"reaction"`
	} `json:"payload"`
}

type wireMessage struct {
	Text         string           `json:"text"`
	QuickReplies []wireQuickReply `json:"quick_replies"`
	Attachment   *wireAttachment  `json:"attachment"`
	Attachments  []wireAttachment `json:"attachments"`
	ReplyTo      *struct {
		MID string `json:"mid"`
	} `json:"reply_to"`
}

type wireQuickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
	Payload     string `json:"payload"`
}

type wireAttachment struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

type wireButton struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	URL     string `json:"url"`
	Payload string `json:"payload"`
}

type wireTemplate struct {
	TemplateType string       `json:"template_type"`
	Text         string       `json:"text"`
	Buttons      []wireButton `json:"buttons"`
	Elements     []struct {
		Title         string `json:"title"`
		Subtitle      string `json:"subtitle"`
		ImageURL      string `json:"image_url"`
		DefaultAction *struct {
			Type string `json:"type"`
			URL  string `json:"url"`
		} `json:"default_action"`
		Buttons []wireButton `json:"buttons"`
	} `json:"elements"`
}

// strict decodes b into v refusing unknown keys.
func strict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// readSend reads JSON, or a form whose recipient, message and payload are
// JSON strings, as Meta accepts. It returns the body as JSON.
func readSend(r *http.Request) (*wireSend, []byte, error) {
	var req wireSend
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err != nil {
			return nil, nil, err
		}
		f := r.PostForm
		if err := strict([]byte(f.Get("recipient")), &req.Recipient); err != nil {
			return nil, nil, err
		}
		if m := f.Get("message"); m != "" {
			req.Message = &wireMessage{}
			if err := strict([]byte(m), req.Message); err != nil {
				return nil, nil, err
			}
		}
		req.MessagingType, req.Tag, req.SenderAction = f.Get("messaging_type"), f.Get("tag"), f.Get("sender_action")
		if p := f.Get("payload"); p != "" {
			if err := strict([]byte(p), &req.Payload); err != nil {
				return nil, nil, err
			}
		}
		b, _ := json.Marshal(req)
		return &req, b, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, err
	}
	if err := strict(b, &req); err != nil {
		return nil, nil, err
	}
	return &req, b, nil
}

// handleSend is POST /vNN.0/me/messages (or /<user_id>/messages).
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if r.Method != http.MethodPost {
		writeGraphError(w, errUnsupportedMethod(r.Method))
		return
	}
	req, body, readErr := readSend(r)

	s.mu.Lock()
	t, gerr := s.graphTokenLocked(r, rc, errNoActiveToken)
	if gerr == nil {
		gerr = s.checkSendLocked(r, t, req, readErr)
	}
	if gerr != nil {
		s.mu.Unlock()
		writeGraphError(w, gerr)
		return
	}
	now := s.clock.Now()
	if req.SenderAction != "" {
		a := SentAction{AppID: t.AppID, AccountUserID: t.UserID, RecipientID: req.Recipient.ID,
			Action: req.SenderAction, At: now, Body: body}
		if req.Payload != nil {
			a.MessageID, a.Reaction = req.Payload.MessageID, req.Payload.Reaction
		}
		s.actions = append(s.actions, a)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]string{"recipient_id": req.Recipient.ID})
		return
	}
	msg := sentMessageOf(req.Message)
	msg.AppID, msg.AccountUserID, msg.RecipientID, msg.MID = t.AppID, t.UserID, req.Recipient.ID, newMID()
	if id := req.Recipient.CommentID; id != "" {
		c := s.comments[id]
		c.PrivateReplyMID = msg.MID
		msg.Kind, msg.CommentID, msg.RecipientID = "private_reply", id, c.FromID
	}
	msg.MessagingType, msg.Tag, msg.At, msg.Body = req.MessagingType, req.Tag, now, body
	if msg.Kind == "images" && s.opts.SplitImageMIDs {
		for range msg.Attachments[1:] {
			msg.MoreMIDs = append(msg.MoreMIDs, newMID())
		}
	}
	s.sent = append(s.sent, msg)
	s.mu.Unlock()

	answer := map[string]any{"recipient_id": msg.RecipientID, "message_id": msg.MID}
	if len(msg.MoreMIDs) > 0 {
		answer["message_ids"] = append([]string{msg.MID}, msg.MoreMIDs...)
	}
	writeJSON(w, http.StatusOK, answer)
	s.afterSend(msg)
}

// sentMessageOf records a checked message.
func sentMessageOf(m *wireMessage) SentMessage {
	out := SentMessage{Text: m.Text, Kind: "text"}
	if m.ReplyTo != nil {
		out.ReplyTo = m.ReplyTo.MID
	}
	for _, q := range m.QuickReplies {
		out.QuickReplies = append(out.QuickReplies, SentQuickReply(q))
		out.Kind = "quick_replies"
	}
	atts := m.Attachments
	if m.Attachment != nil {
		atts = []wireAttachment{*m.Attachment}
	}
	for _, a := range atts {
		var p struct {
			URL          string `json:"url"`
			AttachmentID string `json:"attachment_id"`
			ID           string `json:"id"`
		}
		_ = json.Unmarshal(a.Payload, &p)
		switch a.Type {
		case "template":
			var tp wireTemplate
			_ = json.Unmarshal(a.Payload, &tp)
			out.Template = sentTemplateOf(&tp)
			out.Kind = tp.TemplateType + "_template"
			continue
		case "MEDIA_SHARE":
			out.Kind = "media_share"
		case "like_heart":
			out.Kind = "like_heart"
		default:
			out.Kind = a.Type
		}
		out.Attachments = append(out.Attachments, SentAttachment{Type: a.Type, URL: p.URL, AttachmentID: p.AttachmentID, MediaID: p.ID})
	}
	if len(m.Attachments) > 0 {
		out.Kind = "images"
	}
	if len(out.Attachments) == 1 {
		out.AttachmentType, out.AttachmentURL = out.Attachments[0].Type, out.Attachments[0].URL
	}
	return out
}

func sentTemplateOf(tp *wireTemplate) *SentTemplate {
	out := &SentTemplate{TemplateType: tp.TemplateType, Text: tp.Text}
	for _, b := range tp.Buttons {
		out.Buttons = append(out.Buttons, SentButton(b))
	}
	for _, e := range tp.Elements {
		el := SentElement{Title: e.Title, Subtitle: e.Subtitle, ImageURL: e.ImageURL}
		if e.DefaultAction != nil {
			el.DefaultActionURL = e.DefaultAction.URL
		}
		for _, b := range e.Buttons {
			el.Buttons = append(el.Buttons, SentButton(b))
		}
		out.Elements = append(out.Elements, el)
	}
	return out
}

// checkSendLocked applies Meta's rules to a send.
func (s *Server) checkSendLocked(r *http.Request, t *TokenInfo, req *wireSend, readErr error) *graphError {
	if id := r.PathValue("id"); id != "" && !s.ownAccountLocked(t, id) {
		return errObjectNotFound(r.Method, id)
	}
	if !slices.Contains(t.Scopes, ScopeManageMessages) {
		return errPermission()
	}
	if readErr != nil {
		return errParam("Invalid request body: " + readErr.Error())
	}
	if req.Recipient.CommentID != "" {
		return s.checkPrivateReplyLocked(t, req)
	}
	switch {
	case req.Recipient.ID == "":
		return errParam("The parameter recipient is required")
	case req.MessagingType != "" && req.MessagingType != "RESPONSE" && req.MessagingType != "MESSAGE_TAG":
		return errParam("Param messaging_type must be one of {RESPONSE, MESSAGE_TAG}")
	case req.MessagingType == "MESSAGE_TAG" && req.Tag != "HUMAN_AGENT":
		return errParam("Param tag must be one of {HUMAN_AGENT}")
	case req.MessagingType != "MESSAGE_TAG" && req.Tag != "":
		return errParam("Param tag needs messaging_type MESSAGE_TAG")
	case (req.Message == nil) == (req.SenderAction == ""):
		return errParam("The request must have exactly one of message or sender_action")
	}
	var gerr *graphError
	if req.SenderAction != "" {
		gerr = s.checkActionLocked(t, req)
	} else {
		gerr = s.checkMessageLocked(t, req.Message)
	}
	if gerr != nil {
		return gerr
	}
	if c, ok := s.customers[req.Recipient.ID]; ok && c.Unavailable {
		return &graphError{Code: codeUserUnavailable, Subcode: subcodeUnavailable,
			Message: "(#551) This person isn't available right now."}
	}
	if s.opts.EnforceMessagingWindow {
		window := MessagingWindow
		if req.Tag == "HUMAN_AGENT" {
			window = HumanAgentWindow
		}
		last, ok := s.lastCustomerMsg[convKey{t.UserID, req.Recipient.ID}]
		if !ok || s.clock.Now().Sub(last) > window {
			return &graphError{Code: codePermission, Subcode: subcodeOutsideWindow, Status: http.StatusBadRequest,
				Message: "(#10) This message is sent outside of allowed window."}
		}
	}
	return nil
}

func (s *Server) checkActionLocked(t *TokenInfo, req *wireSend) *graphError {
	if req.MessagingType != "" {
		return errParam("Param messaging_type is not allowed with sender_action")
	}
	p := req.Payload
	switch req.SenderAction {
	case "react", "unreact":
		switch {
		case p == nil || p.MessageID == "":
			return errParam("The parameter payload[message_id] is required for " + req.SenderAction)
		case req.SenderAction == "react" && p.Reaction == "":
			return errParam("The parameter payload[reaction] is required for react")
		case req.SenderAction == "unreact" && p.Reaction != "":
			return errParam("Param payload[reaction] is not allowed for unreact")
		}
		in, ok := s.inbound[p.MessageID]
		if !ok || in.accountUserID != t.UserID || in.customerID != req.Recipient.ID {
			return errParam(fmt.Sprintf("The message %s does not exist or is not a message of the recipient to this account", p.MessageID))
		}
	case "typing_on", "typing_off", "mark_seen":
		if p != nil {
			return errParam("Param payload is not allowed for " + req.SenderAction)
		}
	default:
		return errParam("Param sender_action must be one of {react, unreact, typing_on, typing_off, mark_seen}")
	}
	return nil
}

func (s *Server) checkMessageLocked(t *TokenInfo, m *wireMessage) *graphError {
	kinds := 0
	for _, set := range []bool{m.Text != "", m.Attachment != nil, len(m.Attachments) > 0} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds == 0:
		return errParam("The parameter message must have text or an attachment")
	case kinds > 1:
		return errParam("A message can have text, an attachment or attachments, only one")
	case len(m.Text) > MaxTextLength || !utf8.ValidString(m.Text):
		return errParam(fmt.Sprintf("Length of param message[text] must be less than or equal to %d", MaxTextLength))
	case len(m.QuickReplies) > 0 && m.Text == "":
		return errParam("Param message[quick_replies] needs message[text]")
	case len(m.QuickReplies) > MaxQuickReplies:
		return errParam(fmt.Sprintf("Param message[quick_replies] must have at most %d items", MaxQuickReplies))
	case len(m.Attachments) > MaxImages:
		return errParam(fmt.Sprintf("Param message[attachments] must have at most %d items", MaxImages))
	}
	for i, q := range m.QuickReplies {
		field := fmt.Sprintf("message[quick_replies][%d]", i)
		switch q.ContentType {
		case "text":
			if q.Title == "" || q.Payload == "" {
				return errParam("Param " + field + " of content_type text needs title and payload")
			}
			if utf8.RuneCountInString(q.Title) > MaxQuickReplyTitle {
				return errParam(fmt.Sprintf("Param %s[title] must be at most %d characters", field, MaxQuickReplyTitle))
			}
		case "user_phone_number", "user_email":
			if q.Title != "" || q.Payload != "" {
				return errParam("Param " + field + " of content_type " + q.ContentType + " takes no title or payload")
			}
		default:
			return errParam("Param " + field + "[content_type] must be one of {text, user_phone_number, user_email}")
		}
	}
	for i, a := range m.Attachments {
		if a.Type != "image" {
			return errParam(fmt.Sprintf("Param message[attachments][%d][type] must be image", i))
		}
		if gerr := checkMediaPayload(fmt.Sprintf("message[attachments][%d]", i), a); gerr != nil {
			return gerr
		}
	}
	if a := m.Attachment; a != nil {
		return s.checkAttachmentLocked(t, a)
	}
	return nil
}

// checkMediaPayload accepts {url} (https) or, for an image,
// {attachment_id}.
func checkMediaPayload(field string, a wireAttachment) *graphError {
	var p struct {
		URL          string `json:"url"`
		AttachmentID string `json:"attachment_id"`
	}
	if err := strict(a.Payload, &p); err != nil {
		return errParam("Invalid param " + field + "[payload]: " + err.Error())
	}
	switch {
	case p.URL != "" && p.AttachmentID != "":
		return errParam("Param " + field + "[payload] has url or attachment_id, not both")
	case p.AttachmentID != "" && a.Type != "image":
		return errParam("Param " + field + "[payload][attachment_id] is for images")
	case p.URL == "" && p.AttachmentID == "":
		return errParam("The parameter " + field + "[payload][url] is required")
	case p.URL != "" && !strings.HasPrefix(p.URL, "https://"):
		return errParam("Param " + field + "[payload][url] must be an https URL")
	}
	return nil
}

func (s *Server) checkAttachmentLocked(t *TokenInfo, a *wireAttachment) *graphError {
	const field = "message[attachment]"
	switch a.Type {
	case "image", "video", "audio", "file":
		return checkMediaPayload(field, *a)
	case "like_heart":
		if len(a.Payload) > 0 && string(a.Payload) != "null" {
			return errParam("Param " + field + "[payload] is not allowed for like_heart")
		}
		return nil
	case "MEDIA_SHARE":
		var p struct {
			ID string `json:"id"`
		}
		if err := strict(a.Payload, &p); err != nil || p.ID == "" {
			return errParam("The parameter " + field + "[payload][id] is required for MEDIA_SHARE")
		}
		if s.posts[p.ID] != t.UserID {
			return errParam("The media " + p.ID + " does not exist or does not belong to this account")
		}
		return nil
	case "template":
		var tp wireTemplate
		if err := strict(a.Payload, &tp); err != nil {
			return errParam("Invalid param " + field + "[payload]: " + err.Error())
		}
		return checkTemplate(&tp)
	}
	return errParam("Param " + field + "[type] must be one of {image, video, audio, file, like_heart, MEDIA_SHARE, template}")
}

func checkTemplate(tp *wireTemplate) *graphError {
	const field = "message[attachment][payload]"
	switch tp.TemplateType {
	case "button":
		switch {
		case tp.Text == "" || utf8.RuneCountInString(tp.Text) > MaxButtonTextChars:
			return errParam(fmt.Sprintf("Param %s[text] is required, at most %d characters", field, MaxButtonTextChars))
		case len(tp.Elements) > 0:
			return errParam("Param " + field + "[elements] is not allowed in a button template")
		case len(tp.Buttons) == 0 || len(tp.Buttons) > MaxButtons:
			return errParam(fmt.Sprintf("Param %s[buttons] must have 1 to %d items", field, MaxButtons))
		}
		return checkButtons(field+"[buttons]", tp.Buttons)
	case "generic":
		switch {
		case tp.Text != "" || len(tp.Buttons) > 0:
			return errParam("Params " + field + "[text] and [buttons] are not allowed in a generic template")
		case len(tp.Elements) == 0 || len(tp.Elements) > MaxGenericElements:
			return errParam(fmt.Sprintf("Param %s[elements] must have 1 to %d items", field, MaxGenericElements))
		}
		for i, e := range tp.Elements {
			ef := fmt.Sprintf("%s[elements][%d]", field, i)
			switch {
			case e.Title == "" || utf8.RuneCountInString(e.Title) > MaxGenericTextChars:
				return errParam(fmt.Sprintf("Param %s[title] is required, at most %d characters", ef, MaxGenericTextChars))
			case utf8.RuneCountInString(e.Subtitle) > MaxGenericTextChars:
				return errParam(fmt.Sprintf("Param %s[subtitle] must be at most %d characters", ef, MaxGenericTextChars))
			case e.ImageURL != "" && !strings.HasPrefix(e.ImageURL, "https://"):
				return errParam("Param " + ef + "[image_url] must be an https URL")
			case e.DefaultAction != nil && (e.DefaultAction.Type != "web_url" || !strings.HasPrefix(e.DefaultAction.URL, "https://")):
				return errParam("Param " + ef + "[default_action] must be of type web_url with an https url")
			case len(e.Buttons) > MaxButtons:
				return errParam(fmt.Sprintf("Param %s[buttons] must have at most %d items", ef, MaxButtons))
			}
			if gerr := checkButtons(ef+"[buttons]", e.Buttons); gerr != nil {
				return gerr
			}
		}
		return nil
	}
	return errParam("Param " + field + "[template_type] must be one of {button, generic}")
}

func checkButtons(field string, buttons []wireButton) *graphError {
	for i, b := range buttons {
		bf := fmt.Sprintf("%s[%d]", field, i)
		if b.Title == "" || utf8.RuneCountInString(b.Title) > MaxButtonTitle {
			return errParam(fmt.Sprintf("Param %s[title] is required, at most %d characters", bf, MaxButtonTitle))
		}
		switch b.Type {
		case "web_url":
			if !strings.HasPrefix(b.URL, "https://") || b.Payload != "" {
				return errParam("Param " + bf + " of type web_url needs an https url and no payload")
			}
		case "postback":
			if b.Payload == "" || b.URL != "" {
				return errParam("Param " + bf + " of type postback needs a payload and no url")
			}
		default:
			return errParam("Param " + bf + "[type] must be one of {web_url, postback}")
		}
	}
	return nil
}
