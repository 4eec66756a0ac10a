// Package instagram is the only code that speaks HTTP to Instagram (the
// Instagram API with Instagram Login). Every failure is classified once, here,
// into an *Error with a Class the reconcilers act on; tokens never appear in
// an error string or a log line.
package instagram

import (
	"context"
	"time"
)

// API is what the operator asks of Instagram. One API value serves one Meta
// app: its calls share that app's client-side rate limit.
type API interface {
	// AuthorizeURL is the Business Login page a person opens
	// (https://www.instagram.com/oauth/authorize?...). No HTTP call.
	AuthorizeURL(p AuthorizeParams) string

	// ExchangeCode trades an authorization code (a trailing "#_" is stripped)
	// for a short-lived token: POST api.instagram.com/oauth/access_token.
	ExchangeCode(ctx context.Context, appSecret, redirectURI, code string) (*ShortLivedToken, error)

	// ExchangeLongLived trades a short-lived token for a 60-day one:
	// GET graph.instagram.com/access_token?grant_type=ig_exchange_token.
	ExchangeLongLived(ctx context.Context, appSecret, shortLivedToken string) (*LongLivedToken, error)

	// RefreshToken renews a long-lived token that is at least 24 hours old:
	// GET graph.instagram.com/refresh_access_token?grant_type=ig_refresh_token.
	RefreshToken(ctx context.Context, longLivedToken string) (*LongLivedToken, error)

	// Me looks up the account behind a token: GET /vNN.0/me?fields=...
	Me(ctx context.Context, token string) (*Account, error)

	// Subscribe subscribes the account's webhooks to fields:
	// POST /vNN.0/<userID>/subscribed_apps?subscribed_fields=a,b,c
	Subscribe(ctx context.Context, token, userID string, fields []string) error

	// Subscriptions returns the fields the account is subscribed to for this
	// app; empty when it is not subscribed: GET /vNN.0/<userID>/subscribed_apps
	Subscriptions(ctx context.Context, token, userID string) ([]string, error)

	// Unsubscribe removes the account's webhook subscription:
	// DELETE /vNN.0/<userID>/subscribed_apps
	Unsubscribe(ctx context.Context, token, userID string) error

	// Reserve waits until the app's rate limit allows one more call and
	// returns a context that carries that call: the first request made
	// with it (or with a context derived from it, values kept) does not
	// wait again. A caller that must record what it is about to do before
	// the call (a send persists Sending first) takes its turn here, so
	// that nothing is recorded while it may still wait. The error is the
	// rate limiter's (RateLimited when the wait would outlast ctx's
	// deadline, Transient when ctx ends); no request was made either way.
	Reserve(ctx context.Context) (context.Context, error)

	// Send sends text or one attachment: POST /vNN.0/me/messages.
	Send(ctx context.Context, token string, msg OutgoingMessage) (*SendResult, error)

	// SendMessage sends any content or a sender action:
	// POST /vNN.0/me/messages. Send is SendMessage with text or one
	// attachment.
	SendMessage(ctx context.Context, token string, req SendRequest) (*SendResult, error)

	// AccountWait is how long a send of kind would wait now for the
	// account's rate limit; no call, no turn taken (accountlimit.go).
	AccountWait(accountID string, kind RateKind) time.Duration

	// Comment reads a comment's hidden flag; HideComment hides or shows it;
	// DeleteComment deletes it; ReplyToComment posts a public reply and
	// returns its ID (comments.go).
	Comment(ctx context.Context, token, commentID string) (*Comment, error)
	HideComment(ctx context.Context, token, commentID string, hidden bool) error
	DeleteComment(ctx context.Context, token, commentID string) error
	ReplyToComment(ctx context.Context, token, commentID, text string) (string, error)

	// MessengerProfile reads the ice breakers and persistent menu;
	// SetMessengerProfile sets the fields given; DeleteMessengerProfile
	// removes fields (profile.go).
	MessengerProfile(ctx context.Context, token string) (*MessengerProfile, error)
	SetMessengerProfile(ctx context.Context, token string, p MessengerProfile) error
	DeleteMessengerProfile(ctx context.Context, token string, fields []string) error

	// Profile looks up a customer's profile (optional data; code 230 means the
	// customer has not consented): GET /vNN.0/<igsid>?fields=...
	Profile(ctx context.Context, token, igsid string) (*Profile, error)

	// Conversations lists the account's most recent conversations, newest
	// first, at most limit: GET /vNN.0/me/conversations?platform=instagram
	Conversations(ctx context.Context, token string, limit int) ([]Conversation, error)

	// ConversationMessages lists the IDs of a conversation's messages,
	// newest first, at most limit (Instagram details only the 20 most
	// recent): GET /vNN.0/<conversation_id>?fields=messages
	ConversationMessages(ctx context.Context, token, conversationID string, limit int) ([]string, error)

	// ConversationMessage reads one message of a conversation:
	// GET /vNN.0/<message_id>?fields=id,created_time,from,to,message
	ConversationMessage(ctx context.Context, token, messageID string) (*ConversationMessage, error)
}

// Conversation is one thread of the account.
type Conversation struct {
	ID          string
	UpdatedTime time.Time
}

// ConversationMessage is one message read through the Conversations API.
type ConversationMessage struct {
	// ID is the message's mid, as webhooks carry it.
	ID          string
	CreatedTime time.Time
	FromID      string
	ToIDs       []string
	Text        string
}

// AuthorizeParams are the inputs of the authorize URL.
type AuthorizeParams struct {
	AppID       string
	RedirectURI string
	Scopes      []string
	State       string
	// ForceReauth makes Instagram ask for the login again even when the
	// person is logged in (re-authorization).
	ForceReauth bool
}

// ShortLivedToken is the answer of the code exchange (valid about 1 hour).
type ShortLivedToken struct {
	AccessToken string
	UserID      string
	Permissions []string
}

// LongLivedToken is the answer of the long-lived exchange and of refresh.
type LongLivedToken struct {
	AccessToken string
	TokenType   string
	// ExpiresIn is the lifetime Instagram reported (60 days).
	ExpiresIn time.Duration
}

// Account is the professional account behind a token.
type Account struct {
	// UserID is the professional account ID: webhook entry[].id. Route by it.
	UserID string
	// ID is app-scoped; never route by it.
	ID                string
	Username          string
	Name              string
	AccountType       string
	ProfilePictureURL string
}

// OutgoingMessage is one message to send: text, or exactly one attachment.
type OutgoingMessage struct {
	RecipientID    string
	Text           string
	AttachmentType string // image, video, audio, file
	AttachmentURL  string
	// HumanAgent sends with messaging_type MESSAGE_TAG and tag HUMAN_AGENT.
	HumanAgent bool
	// ReplyTo is the mid being replied to (optional).
	ReplyTo string
}

// SendResult is Instagram's answer to a send.
type SendResult struct {
	RecipientID string
	// MessageID is the mid; empty for a sender action.
	MessageID string
	// MoreMessageIDs are further mids of a message Instagram recorded as
	// several (images), where the answer names them.
	MoreMessageIDs []string
}

// Profile is optional data about a customer. A field Instagram omitted is
// empty (nil for the numbers and flags): nothing is guessed.
type Profile struct {
	Name                 string
	Username             string
	ProfilePic           string
	FollowerCount        *int64
	IsUserFollowBusiness *bool
	IsBusinessFollowUser *bool
	IsVerifiedUser       *bool
}
