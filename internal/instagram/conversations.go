package instagram

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"context"
)

// The Conversations API (INSTAGRAM-API.md "Contacts and conversations"),
// used to backfill a new channel's recent history.

// metaTimeLayout is how the Graph API writes times: 2026-05-06T13:58:40+0000.
const metaTimeLayout = "2006-01-02T15:04:05-0700"

func parseMetaTime(s string) (time.Time, error) {
	if t, err := time.Parse(metaTimeLayout, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	return t.UTC(), err
}

// Conversations lists the account's conversations.
func (c *client) Conversations(ctx context.Context, token string, limit int) ([]Conversation, error) {
	q := url.Values{}
	q.Set("platform", "instagram")
	q.Set("fields", "id,updated_time")
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []Conversation
	err := c.do(ctx, request{
		endpoint: EndpointConversations,
		method:   http.MethodGet,
		url:      c.graphURL("/me/conversations", q),
		bearer:   token,
		secrets:  []string{token},
	}, func(body []byte) error {
		var answer struct {
			Data []struct {
				ID          flexString `json:"id"`
				UpdatedTime string     `json:"updated_time"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		for _, d := range answer.Data {
			if d.ID == "" {
				return unexpected("a conversation without id")
			}
			t, _ := parseMetaTime(d.UpdatedTime)
			out = append(out, Conversation{ID: string(d.ID), UpdatedTime: t})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ConversationMessages lists a conversation's message IDs.
func (c *client) ConversationMessages(ctx context.Context, token, conversationID string, limit int) ([]string, error) {
	if conversationID == "" {
		return nil, badRequest(EndpointConversation, "no conversation ID")
	}
	q := url.Values{}
	q.Set("fields", "messages")
	var out []string
	err := c.do(ctx, request{
		endpoint: EndpointConversation,
		method:   http.MethodGet,
		url:      c.graphURL("/"+url.PathEscape(conversationID), q),
		bearer:   token,
		secrets:  []string{token},
	}, func(body []byte) error {
		var answer struct {
			Messages struct {
				Data []struct {
					ID flexString `json:"id"`
				} `json:"data"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		for _, d := range answer.Messages.Data {
			if d.ID != "" {
				out = append(out, string(d.ID))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ConversationMessage reads one message.
func (c *client) ConversationMessage(ctx context.Context, token, messageID string) (*ConversationMessage, error) {
	if messageID == "" {
		return nil, badRequest(EndpointConversationMessage, "no message ID")
	}
	q := url.Values{}
	q.Set("fields", "id,created_time,from,to,message")
	var out *ConversationMessage
	err := c.do(ctx, request{
		endpoint: EndpointConversationMessage,
		method:   http.MethodGet,
		url:      c.graphURL("/"+url.PathEscape(messageID), q),
		bearer:   token,
		secrets:  []string{token},
	}, func(body []byte) error {
		type party struct {
			ID flexString `json:"id"`
		}
		var answer struct {
			ID          flexString `json:"id"`
			CreatedTime string     `json:"created_time"`
			From        party      `json:"from"`
			To          struct {
				Data []party `json:"data"`
			} `json:"to"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		if answer.ID == "" || answer.From.ID == "" {
			return unexpected("a message without id or sender")
		}
		t, err := parseMetaTime(answer.CreatedTime)
		if err != nil {
			return unexpected("created_time %q: %v", strings.TrimSpace(answer.CreatedTime), err)
		}
		out = &ConversationMessage{ID: string(answer.ID), CreatedTime: t, FromID: string(answer.From.ID), Text: answer.Message}
		for _, p := range answer.To.Data {
			out.ToIDs = append(out.ToIDs, string(p.ID))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
