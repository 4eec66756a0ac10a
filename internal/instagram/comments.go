package instagram

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// Comment moderation and public replies (INSTAGRAM-API.md "Sending,
// extended"; scope instagram_business_manage_comments). The private reply
// is a send: SendRequest.CommentID.

// Comment is what the client reads of a comment.
type Comment struct {
	ID     string
	Hidden bool
}

func (c *client) commentURL(id, sub string, q url.Values) string {
	return c.graphURL("/"+url.PathEscape(id)+sub, q)
}

// Comment reads a comment's hidden flag: GET /vNN.0/<comment_id>?fields=id,hidden.
func (c *client) Comment(ctx context.Context, token, commentID string) (*Comment, error) {
	if commentID == "" {
		return nil, badRequest(EndpointComment, "no comment ID")
	}
	q := url.Values{}
	q.Set("fields", "id,hidden")
	var out *Comment
	err := c.do(ctx, request{
		endpoint: EndpointComment, method: http.MethodGet, url: c.commentURL(commentID, "", q),
		bearer: token, secrets: []string{token},
	}, func(body []byte) error {
		var answer struct {
			ID     flexString      `json:"id"`
			Hidden json.RawMessage `json:"hidden"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		hidden, err := strconv.ParseBool(trimQuotes(string(answer.Hidden)))
		if err != nil {
			return unexpected("no hidden flag in the answer")
		}
		out = &Comment{ID: string(answer.ID), Hidden: hidden}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func trimQuotes(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// HideComment hides or shows a comment: POST /vNN.0/<comment_id>?hide=true|false.
func (c *client) HideComment(ctx context.Context, token, commentID string, hidden bool) error {
	if commentID == "" {
		return badRequest(EndpointHideComment, "no comment ID")
	}
	q := url.Values{}
	q.Set("hide", strconv.FormatBool(hidden))
	return c.do(ctx, request{
		endpoint: EndpointHideComment, method: http.MethodPost, url: c.commentURL(commentID, "", q),
		bearer: token, secrets: []string{token},
	}, decodeSuccess)
}

// DeleteComment deletes a comment: DELETE /vNN.0/<comment_id>.
func (c *client) DeleteComment(ctx context.Context, token, commentID string) error {
	if commentID == "" {
		return badRequest(EndpointDeleteComment, "no comment ID")
	}
	return c.do(ctx, request{
		endpoint: EndpointDeleteComment, method: http.MethodDelete, url: c.commentURL(commentID, "", nil),
		bearer: token, secrets: []string{token},
	}, decodeSuccess)
}

// ReplyToComment posts a public reply under a top-level comment and
// returns the reply's ID: POST /vNN.0/<comment_id>/replies?message=...
// A failure with NotDelivered false is ambiguous: the reply may be posted.
func (c *client) ReplyToComment(ctx context.Context, token, commentID, text string) (string, error) {
	if commentID == "" || text == "" {
		return "", badRequest(EndpointReplyComment, "a public reply needs a comment ID and a text")
	}
	q := url.Values{}
	q.Set("message", text)
	var id string
	err := c.do(ctx, request{
		endpoint: EndpointReplyComment, method: http.MethodPost, url: c.commentURL(commentID, "/replies", q),
		bearer: token, secrets: []string{token},
	}, func(body []byte) error {
		var answer struct {
			ID flexString `json:"id"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		if answer.ID == "" {
			return unexpected("no id in the answer")
		}
		id = string(answer.ID)
		return nil
	})
	return id, err
}
