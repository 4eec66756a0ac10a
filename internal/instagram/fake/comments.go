package fake

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Comments (moderation, public and private replies) and the messenger
// profile, as INSTAGRAM-API.md "Sending, extended" and "Messenger profile"
// describe them.

// Endpoint names of comments and the messenger profile.
const (
	EndpointComment          = "comment"
	EndpointHideComment      = "hide_comment"
	EndpointDeleteComment    = "delete_comment"
	EndpointReplyComment     = "reply_comment"
	EndpointMessengerProfile = "messenger_profile"
	EndpointSetProfile       = "set_messenger_profile"
	EndpointDeleteProfile    = "delete_messenger_profile"
)

// ScopeManageComments is the scope comment calls need.
const ScopeManageComments = "instagram_business_manage_comments"

// PrivateReplyWindow is how long after a comment its private reply is
// accepted.
const PrivateReplyWindow = 7 * 24 * time.Hour

// Comment is a comment on a post of an account.
type Comment struct {
	ID, AccountUserID, MediaID, FromID, Text string
	// ParentID marks a reply to a comment.
	ParentID string
	Live     bool
	At       time.Time
	Hidden   bool
	Deleted  bool
	// PrivateReplyMID is the mid of its private reply, once sent.
	PrivateReplyMID string
	// Replies are the IDs of public replies posted under it.
	Replies []string
}

// AddComment registers a comment (At defaults to now).
func (s *Server) AddComment(c Comment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.At.IsZero() {
		c.At = s.clock.Now()
	}
	cc := c
	s.comments[c.ID] = &cc
}

// CommentState returns a comment as Instagram has it.
func (s *Server) CommentState(id string) (Comment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.comments[id]
	if !ok {
		return Comment{}, false
	}
	out := *c
	out.Replies = slices.Clone(c.Replies)
	return out, true
}

// SetCommentHidden changes a comment's hidden flag behind the operator's
// back, as a person in the Instagram app does.
func (s *Server) SetCommentHidden(id string, hidden bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.comments[id]; ok {
		c.Hidden = hidden
	}
}

// isComment reports whether id names a known comment.
func (s *Server) isComment(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.comments[r.PathValue("id")]
	return ok
}

// objectEndpoint names a call of /vNN.0/<id>: a comment call, a
// conversation, one of its messages, or else a customer's profile.
func (s *Server) objectEndpoint(r *http.Request) string {
	if s.isComment(r) {
		switch r.Method {
		case http.MethodPost:
			return EndpointHideComment
		case http.MethodDelete:
			return EndpointDeleteComment
		}
		return EndpointComment
	}
	id := r.PathValue("id")
	if _, _, ok := parseConversationID(id); ok {
		return EndpointConversation
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, _, ok := s.conversationOfLocked(id); ok {
		return EndpointConversationMessage
	}
	return EndpointProfile
}

// handleObject is /vNN.0/<id>: a comment, a conversation, a message, or a
// customer profile.
func (s *Server) handleObject(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	switch s.objectEndpoint(r) {
	case EndpointComment, EndpointHideComment, EndpointDeleteComment:
		s.handleComment(w, r, rc)
	case EndpointConversation:
		s.handleConversation(w, r, rc)
	case EndpointConversationMessage:
		s.handleConversationMessage(w, r, rc)
	default:
		s.handleProfile(w, r, rc)
	}
}

// commentLocked returns the comment of the request's path if the token may
// act on it.
func (s *Server) commentLocked(r *http.Request, rc *reqCtx) (*Comment, *graphError) {
	t, gerr := s.graphTokenLocked(r, rc, errTokenRequired)
	if gerr != nil {
		return nil, gerr
	}
	if !slices.Contains(t.Scopes, ScopeManageComments) {
		return nil, errPermission()
	}
	id := r.PathValue("id")
	c, ok := s.comments[id]
	if !ok || c.Deleted || c.AccountUserID != t.UserID {
		return nil, errObjectNotFound(r.Method, id)
	}
	return c, nil
}

func (s *Server) handleComment(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, gerr := s.commentLocked(r, rc)
	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, requestedFields(r, map[string]any{
			"id": c.ID, "hidden": c.Hidden, "text": c.Text, "parent_id": c.ParentID,
		}))
	case http.MethodPost:
		switch r.URL.Query().Get("hide") {
		case "true":
			c.Hidden = true
		case "false":
			c.Hidden = false
		default:
			writeGraphError(w, errParam("Param hide must be true or false"))
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	case http.MethodDelete:
		c.Deleted = true
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	default:
		writeGraphError(w, errUnsupportedMethod(r.Method))
	}
}

// handleReplies is POST /vNN.0/<comment_id>/replies?message=: a public
// reply, to top-level comments that are neither hidden nor live.
func (s *Server) handleReplies(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if r.Method != http.MethodPost {
		writeGraphError(w, errUnsupportedMethod(r.Method))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, gerr := s.commentLocked(r, rc)
	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	msg := r.URL.Query().Get("message")
	switch {
	case msg == "":
		writeGraphError(w, errParam("The parameter message is required"))
		return
	case c.ParentID != "" || c.Hidden || c.Live:
		writeGraphError(w, errParam("Replies are allowed only on top-level comments that are neither hidden nor live"))
		return
	}
	id := "179" + randomDigits(14)
	c.Replies = append(c.Replies, id)
	s.comments[id] = &Comment{ID: id, AccountUserID: c.AccountUserID, MediaID: c.MediaID, FromID: c.AccountUserID,
		Text: msg, ParentID: c.ID, At: s.clock.Now()}
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
}

// checkPrivateReplyLocked applies the private-reply rules: a comment of the
// account, one reply per comment, within seven days.
func (s *Server) checkPrivateReplyLocked(t *TokenInfo, req *wireSend) *graphError {
	if !slices.Contains(t.Scopes, ScopeManageComments) {
		return errPermission()
	}
	m := req.Message
	switch {
	case req.Recipient.ID != "":
		return errParam("Param recipient takes id or comment_id, not both")
	case m == nil || m.Text == "" || m.Attachment != nil || len(m.Attachments) > 0 || len(m.QuickReplies) > 0 || m.ReplyTo != nil:
		return errParam("A private reply is a text message")
	case req.MessagingType != "" || req.Tag != "":
		return errParam("A private reply takes no messaging_type or tag")
	}
	c, ok := s.comments[req.Recipient.CommentID]
	switch {
	case !ok || c.Deleted || c.AccountUserID != t.UserID:
		return errObjectNotFound(http.MethodPost, req.Recipient.CommentID)
	case c.PrivateReplyMID != "":
		return &graphError{Code: codePermission, Subcode: subcodeAlreadyReplied, Status: http.StatusBadRequest,
			Message: "(#10) This comment already has a private reply."}
	case s.clock.Now().Sub(c.At) > PrivateReplyWindow:
		return &graphError{Code: codePermission, Subcode: subcodeOutsideWindow, Status: http.StatusBadRequest,
			Message: "(#10) The private reply is sent outside of allowed window."}
	}
	return nil
}

// subcodeAlreadyReplied is the subcode a third party reports for a second
// private reply (unconfirmed by Meta).
const subcodeAlreadyReplied = 2534014

// MessengerProfile is the account's ice breakers and persistent menu as the
// fake holds them (JSON as posted).
type MessengerProfile struct {
	IceBreakers    json.RawMessage
	PersistentMenu json.RawMessage
}

// MessengerProfileOf returns the account's messenger profile.
func (s *Server) MessengerProfileOf(accountUserID string) MessengerProfile {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.profiles[accountUserID]
	if p == nil {
		return MessengerProfile{}
	}
	return *p
}

// SetMessengerProfileOf changes an account's profile behind the operator's
// back (another tool, the dashboard).
func (s *Server) SetMessengerProfileOf(accountUserID string, p MessengerProfile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.profiles[accountUserID] = &p
}

func profileEndpoint(r *http.Request) string {
	switch r.Method {
	case http.MethodPost:
		return EndpointSetProfile
	case http.MethodDelete:
		return EndpointDeleteProfile
	}
	return EndpointMessengerProfile
}

type wireIceBreakers struct {
	CallToActions []struct {
		Question string `json:"question"`
		Payload  string `json:"payload"`
	} `json:"call_to_actions"`
	Locale string `json:"locale"`
}

type wireMenu struct {
	Locale        string `json:"locale"`
	CallToActions []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Payload string `json:"payload"`
		URL     string `json:"url"`
	} `json:"call_to_actions"`
}

// handleMessengerProfile is GET|POST|DELETE /vNN.0/me/messenger_profile.
func (s *Server) handleMessengerProfile(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, gerr := s.graphTokenLocked(r, rc, errTokenRequired)
	if gerr == nil && r.PathValue("id") != "" && !s.ownAccountLocked(t, r.PathValue("id")) {
		gerr = errObjectNotFound(r.Method, r.PathValue("id"))
	}
	if gerr == nil && !slices.Contains(t.Scopes, ScopeManageMessages) {
		gerr = errPermission()
	}
	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	p := s.profiles[t.UserID]
	if p == nil {
		p = &MessengerProfile{}
		s.profiles[t.UserID] = p
	}
	switch r.Method {
	case http.MethodGet:
		entry := map[string]any{}
		for _, f := range splitFields(r.URL.Query().Get("fields")) {
			switch f {
			case "ice_breakers":
				if len(p.IceBreakers) > 0 {
					entry["ice_breakers"] = p.IceBreakers
				}
			case "persistent_menu":
				if len(p.PersistentMenu) > 0 {
					entry["persistent_menu"] = p.PersistentMenu
				}
			}
		}
		data := []any{}
		if len(entry) > 0 {
			data = append(data, entry)
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data})
	case http.MethodPost:
		var req struct {
			IceBreakers    json.RawMessage `json:"ice_breakers"`
			PersistentMenu json.RawMessage `json:"persistent_menu"`
		}
		if err := strict(body, &req); err != nil {
			writeGraphError(w, errParam("Invalid request body: "+err.Error()))
			return
		}
		if req.IceBreakers == nil && req.PersistentMenu == nil {
			writeGraphError(w, errParam("The request must set ice_breakers or persistent_menu"))
			return
		}
		if req.IceBreakers != nil {
			if gerr := checkIceBreakers(req.IceBreakers); gerr != nil {
				writeGraphError(w, gerr)
				return
			}
			p.IceBreakers = req.IceBreakers
		}
		if req.PersistentMenu != nil {
			if gerr := checkMenu(req.PersistentMenu); gerr != nil {
				writeGraphError(w, gerr)
				return
			}
			p.PersistentMenu = req.PersistentMenu
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": "success"})
	case http.MethodDelete:
		var req struct {
			Fields []string `json:"fields"`
		}
		if err := strict(body, &req); err != nil || len(req.Fields) == 0 {
			writeGraphError(w, errParam("The parameter fields is required"))
			return
		}
		for _, f := range req.Fields {
			switch f {
			case "ice_breakers":
				p.IceBreakers = nil
			case "persistent_menu":
				p.PersistentMenu = nil
			default:
				writeGraphError(w, errParam("Param fields must be a list of {ice_breakers, persistent_menu}"))
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": "success"})
	default:
		writeGraphError(w, errUnsupportedMethod(r.Method))
	}
}

// MaxIceBreakers is how many questions one locale may have.
const MaxIceBreakers = 4

func checkIceBreakers(raw json.RawMessage) *graphError {
	var sets []wireIceBreakers
	if err := strict(raw, &sets); err != nil {
		return errParam("Param ice_breakers must be a list of {call_to_actions, locale}: " + err.Error())
	}
	seen, hasDefault := map[string]bool{}, false
	for _, set := range sets {
		switch {
		case set.Locale == "":
			return errParam("Param ice_breakers[][locale] is required")
		case seen[set.Locale]:
			return errParam("Param ice_breakers has locale " + set.Locale + " twice")
		case len(set.CallToActions) == 0 || len(set.CallToActions) > MaxIceBreakers:
			return errParam("Param ice_breakers[][call_to_actions] must have 1 to 4 items")
		}
		seen[set.Locale], hasDefault = true, hasDefault || set.Locale == "default"
		for _, q := range set.CallToActions {
			if q.Question == "" || q.Payload == "" {
				return errParam("Param ice_breakers[][call_to_actions][] needs question and payload")
			}
		}
	}
	if !hasDefault {
		return errParam("Param ice_breakers needs the default locale")
	}
	return nil
}

func checkMenu(raw json.RawMessage) *graphError {
	var menus []wireMenu
	if err := strict(raw, &menus); err != nil {
		return errParam("Param persistent_menu must be a list of {locale, call_to_actions}: " + err.Error())
	}
	hasDefault := false
	for _, m := range menus {
		hasDefault = hasDefault || m.Locale == "default"
		if len(m.CallToActions) == 0 {
			return errParam("Param persistent_menu[][call_to_actions] must not be empty")
		}
		for _, it := range m.CallToActions {
			switch {
			case it.Title == "":
				return errParam("Param persistent_menu[][call_to_actions][][title] is required")
			case it.Type == "postback" && (it.Payload == "" || it.URL != ""):
				return errParam("A postback menu item needs a payload and no url")
			case it.Type == "web_url" && (len(it.URL) < 8 || it.URL[:8] != "https://" || it.Payload != ""):
				return errParam("A web_url menu item needs an https url and no payload")
			case it.Type != "postback" && it.Type != "web_url":
				return errParam("Param persistent_menu[][call_to_actions][][type] must be one of {postback, web_url}")
			}
		}
	}
	if !hasDefault {
		return errParam("Param persistent_menu needs the default locale")
	}
	return nil
}

func splitFields(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// randomDigits returns n random decimal digits.
func randomDigits(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}
