package fake

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The Conversations API: GET /me/conversations?platform=instagram, GET
// /<conversation_id>?fields=messages and GET /<message_id>?fields=... A
// conversation holds every customer message (DeliverMessage, AddHistory)
// and every send of the account to that customer. As Meta documents,
// details are given only for the 20 most recent messages of a conversation.

// ConversationDetailLimit is how many of a conversation's most recent
// messages the message endpoint details.
const ConversationDetailLimit = 20

// conversationPrefix starts every conversation ID the fake hands out.
const conversationPrefix = "aWdfZAG06"

// HistoryMessage is a message that existed before the test: in the
// conversation, never delivered as a webhook.
type HistoryMessage struct {
	MID string
	// FromCustomer: the customer wrote it; else the account did.
	FromCustomer bool
	Text         string
	At           time.Time
}

// AddHistory adds messages to the conversation of account and customer
// without delivering anything.
func (s *Server) AddHistory(accountUserID, customerID string, msgs ...HistoryMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.customers[customerID]; !ok {
		s.customers[customerID] = &Customer{IGSID: customerID}
	}
	for _, m := range msgs {
		if m.FromCustomer {
			s.inbound[m.MID] = inboundMessage{accountUserID: accountUserID, customerID: customerID, text: m.Text, at: m.At}
			if last := s.lastCustomerMsg[convKey{accountUserID, customerID}]; m.At.After(last) {
				s.lastCustomerMsg[convKey{accountUserID, customerID}] = m.At
			}
			continue
		}
		s.sent = append(s.sent, SentMessage{AccountUserID: accountUserID, RecipientID: customerID, MID: m.MID, Text: m.Text, At: m.At})
	}
}

func conversationID(account, customer string) string {
	return conversationPrefix + base64.RawURLEncoding.EncodeToString([]byte(account+":"+customer))
}

func parseConversationID(id string) (account, customer string, ok bool) {
	rest, found := strings.CutPrefix(id, conversationPrefix)
	if !found {
		return "", "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return "", "", false
	}
	account, customer, ok = strings.Cut(string(b), ":")
	return account, customer, ok
}

// convMessage is one message of a conversation as the fake keeps it.
type convMessage struct {
	mid, from, to, text string
	at                  time.Time
}

// conversationLocked returns the conversation's messages, newest first.
func (s *Server) conversationLocked(account, customer string) []convMessage {
	var out []convMessage
	for mid, in := range s.inbound {
		if in.accountUserID == account && in.customerID == customer {
			out = append(out, convMessage{mid: mid, from: customer, to: account, text: in.text, at: in.at})
		}
	}
	for _, m := range s.sent {
		if m.AccountUserID == account && m.RecipientID == customer {
			out = append(out, convMessage{mid: m.MID, from: account, to: customer, text: m.Text, at: m.At})
		}
	}
	slices.SortFunc(out, func(a, b convMessage) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return strings.Compare(a.mid, b.mid)
	})
	return out
}

func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05-0700") }

// handleConversations is GET /vNN.0/me/conversations.
func (s *Server) handleConversations(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if r.Method != http.MethodGet {
		writeGraphError(w, errUnsupportedMethod(r.Method))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, gerr := s.graphTokenLocked(r, rc, errTokenRequired)
	if gerr == nil && !slices.Contains(t.Scopes, ScopeManageMessages) {
		gerr = errPermission()
	}
	if gerr == nil && r.URL.Query().Get("platform") != "instagram" {
		gerr = errParam("The parameter platform is required and must be instagram")
	}
	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	customers := map[string]time.Time{}
	for _, in := range s.inbound {
		if in.accountUserID == t.UserID && in.at.After(customers[in.customerID]) {
			customers[in.customerID] = in.at
		}
	}
	for _, m := range s.sent {
		if m.AccountUserID == t.UserID && m.At.After(customers[m.RecipientID]) {
			customers[m.RecipientID] = m.At
		}
	}
	if only := r.URL.Query().Get("user_id"); only != "" {
		for c := range customers {
			if c != only {
				delete(customers, c)
			}
		}
	}
	type conv struct {
		ID          string `json:"id"`
		UpdatedTime string `json:"updated_time"`
		at          time.Time
	}
	var data []conv
	for c, at := range customers {
		data = append(data, conv{ID: conversationID(t.UserID, c), UpdatedTime: graphTime(at), at: at})
	}
	slices.SortFunc(data, func(a, b conv) int { return b.at.Compare(a.at) })
	limit := 25
	if v, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && v > 0 {
		limit = v
	}
	if len(data) > limit {
		data = data[:limit]
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// handleConversation is GET /vNN.0/<conversation_id>?fields=messages.
func (s *Server) handleConversation(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, gerr := s.graphTokenLocked(r, rc, errTokenRequired)
	id := r.PathValue("id")
	account, customer, _ := parseConversationID(id)
	if gerr == nil && account != t.UserID {
		gerr = errObjectNotFound(r.Method, id)
	}
	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	var data []map[string]string
	for _, m := range s.conversationLocked(account, customer) {
		data = append(data, map[string]string{"id": m.mid, "created_time": graphTime(m.at)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "messages": map[string]any{"data": data}})
}

// handleConversationMessage is GET /vNN.0/<message_id>.
func (s *Server) handleConversationMessage(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, gerr := s.graphTokenLocked(r, rc, errTokenRequired)
	mid := r.PathValue("id")
	account, customer, _, _ := s.conversationOfLocked(mid)
	if gerr == nil && account != t.UserID {
		gerr = errObjectNotFound(r.Method, mid)
	}
	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	msgs := s.conversationLocked(account, customer)
	i := slices.IndexFunc(msgs, func(m convMessage) bool { return m.mid == mid })
	if i >= ConversationDetailLimit {
		writeGraphError(w, errParam(fmt.Sprintf("Only the %d most recent messages of a conversation can be read", ConversationDetailLimit)))
		return
	}
	m := msgs[i]
	party := func(id string) map[string]string {
		p := map[string]string{"id": id}
		if a, ok := s.accounts[id]; ok {
			p["username"] = a.Username
		} else if c, ok := s.customers[id]; ok && c.Username != "" {
			p["username"] = c.Username
		}
		return p
	}
	writeJSON(w, http.StatusOK, requestedFields(r, map[string]any{
		"id": m.mid, "created_time": graphTime(m.at), "from": party(m.from),
		"to": map[string]any{"data": []map[string]string{party(m.to)}}, "message": m.text,
	}))
}
