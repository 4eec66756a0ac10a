// Package fake is an in-process Instagram (the Instagram API with Instagram
// Login) for tests and the local sandbox. One http.Handler serves the paths
// of all three hosts (www.instagram.com, api.instagram.com,
// graph.instagram.com), so a client whose GraphURL, APIURL and OAuthURL all
// point at one httptest.Server exercises its real HTTP code.
//
// The fake keeps Meta's rules: codes are single-use and expire after ten
// minutes, short-lived tokens live an hour and long-lived ones 60 days, a
// long-lived token can be refreshed only once it is 24 hours old and not
// expired, errors come in Meta's bodies, and webhook deliveries are signed
// with the app secret. Time comes from an injectable clock. Tests steer it
// with helpers (IssueCode, RevokeToken, FailNext, DeliverMessage...) and
// assert on what it saw (Sent, Calls, Deliveries). No token is stored in the
// call log. It is safe for concurrent use.
package fake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Endpoint names used by FailNext, Call and CallCount. They match the
// instagram package's endpoint label values.
const (
	EndpointAuthorize     = "authorize"
	EndpointExchangeCode  = "exchange_code"
	EndpointExchangeToken = "exchange_token"
	EndpointRefreshToken  = "refresh_token"
	EndpointMe            = "me"
	EndpointSubscribe     = "subscribe"
	EndpointSubscriptions = "subscriptions"
	EndpointUnsubscribe   = "unsubscribe"
	EndpointSend          = "send"
	EndpointProfile       = "profile"
	// The Conversations API.
	EndpointConversations       = "conversations"
	EndpointConversation        = "conversation"
	EndpointConversationMessage = "conversation_message"
	// EndpointUnknown is any path the fake does not serve.
	EndpointUnknown = "unknown"
)

// Meta's lifetimes and limits.
const (
	CodeTTL         = 10 * time.Minute
	ShortLivedTTL   = time.Hour
	LongLivedTTL    = 60 * 24 * time.Hour
	MinRefreshAge   = 24 * time.Hour
	MessagingWindow = 24 * time.Hour
	// HumanAgentWindow is how long after the customer's last message a
	// HUMAN_AGENT tagged message is still allowed.
	HumanAgentWindow = 7 * 24 * time.Hour
	// MaxTextLength is Instagram's limit on a text message.
	MaxTextLength = 1000
)

// Scopes of the Instagram API with Instagram Login used by the operator.
const (
	ScopeBasic          = "instagram_business_basic"
	ScopeManageMessages = "instagram_business_manage_messages"
)

// DefaultScopes are the scopes of tokens issued by the helpers.
var DefaultScopes = []string{ScopeBasic, ScopeManageMessages}

// Webhook fields an account can subscribe to (the subset of Meta's list the
// fake knows; others are refused as Meta refuses unknown fields).
var knownFields = []string{
	"comments", "live_comments", "mentions", "message_edit", "message_reactions", "messages",
	"messaging_handover", "messaging_optins", "messaging_postbacks", "messaging_referral",
	"messaging_seen", "standby", "story_insights",
}

// Options configure the fake. The zero value works with the real clock.
type Options struct {
	// Clock drives token ages, code expiry, timestamps and the automatic
	// read receipt. k8s.io/utils/clock/testing.FakeClock fits.
	Clock clock.WithDelayedExecution
	// ReceiverURL is the webhook callback URL of apps that have no
	// callback URL of their own (SetCallbackURL).
	ReceiverURL string
	// DeliverEcho delivers the echo (message.is_echo) of every send to the
	// app's callback URL, as Meta does for subscribed accounts.
	DeliverEcho bool
	// AutoReadAfter, when positive, delivers a read receipt for every sent
	// message this long (on Clock) after the send.
	AutoReadAfter time.Duration
	// EnforceMessagingWindow refuses sends more than 24 hours after the
	// customer's last message (7 days with HUMAN_AGENT), with code 10 and
	// subcode 2534022. Customer messages count when they are delivered
	// with DeliverMessage.
	EnforceMessagingWindow bool
	// ProfilePicTTL, when positive, makes every profile_pic URL the fake
	// serves expire this long after the lookup, stated as the CDN does in
	// its oe parameter (Unix seconds in hex).
	ProfilePicTTL time.Duration
	// SplitImageMIDs records a multi-image send as one message per image,
	// as Instagram may: the answer lists every mid in message_ids
	// (message_id is the first), and each image has its own echo.
	SplitImageMIDs bool
	// WrapCodeExchange answers the code exchange in the
	// {"data":[{...}]} shape (user_id as a string, permissions as a comma
	// string) instead of the flat one (user_id a number, permissions a list).
	WrapCodeExchange bool
	// HTTPClient posts the webhook deliveries.
	HTTPClient *http.Client
	// Logger reports failed background deliveries.
	Logger logr.Logger
}

// Account is a professional Instagram account.
type Account struct {
	// UserID is the professional account ID (webhook entry[].id).
	UserID string
	// ID is the app-scoped ID /me also returns.
	ID                string
	Username          string
	Name              string
	AccountType       string
	ProfilePictureURL string
	// InsufficientDeveloperRole makes the code exchange fail as Meta does
	// for a person without a role on an app in development mode.
	InsufficientDeveloperRole bool
}

// Customer is a person who messages accounts (an IGSID).
type Customer struct {
	IGSID                string
	Name                 string
	Username             string
	ProfilePic           string
	FollowerCount        int64
	IsUserFollowBusiness bool
	IsBusinessFollowUser bool
	IsVerifiedUser       bool
	// NoConsent makes the profile lookup fail with code 230.
	NoConsent bool
	// Blocked (the customer blocked the account) and Deleted (the customer
	// deleted their account) make the profile lookup fail as for an object
	// that cannot be loaded (code 100, subcode 33).
	Blocked bool
	Deleted bool
	// Unavailable makes sends to this customer fail with code 551.
	Unavailable bool
}

// SentMessage is a message accepted by the send endpoint.
type SentMessage struct {
	AppID          string
	AccountUserID  string
	RecipientID    string
	MID            string
	Text           string
	AttachmentType string
	AttachmentURL  string
	MessagingType  string
	Tag            string
	ReplyTo        string
	At             time.Time
	// CommentID is the comment a private reply answers (RecipientID is
	// then the commenter).
	CommentID string
	// Kind is what was sent: private_reply, text, quick_replies, image, images, video,
	// audio, file, like_heart, media_share, button_template or
	// generic_template.
	Kind string
	// MoreMIDs are the further mids of a multi-image send with
	// Options.SplitImageMIDs.
	MoreMIDs []string
	// QuickReplies, Attachments (every image of a multi-image send, or the
	// one attachment) and Template as Instagram read them.
	QuickReplies []SentQuickReply
	Attachments  []SentAttachment
	Template     *SentTemplate
	// Body is the request body exactly as received (JSON), for tests that
	// compare the wire format with Meta's documentation.
	Body []byte
}

// Call is one request the fake answered. It never holds a token: Path has no
// query string.
type Call struct {
	Endpoint      string
	Method        string
	Path          string
	AccountUserID string
	// Status is the HTTP status answered; 0 when the connection was dropped.
	Status int
	At     time.Time
}

// TokenInfo describes an issued token.
type TokenInfo struct {
	AppID     string
	UserID    string
	LongLived bool
	Scopes    []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Subcode is set once the token was invalidated (0 when it is usable or
	// was revoked outright).
	Subcode int
	Revoked bool
}

type app struct {
	id, secret   string
	redirectURIs []string
	callbackURL  string
}

type authCode struct {
	appID, userID, redirectURI string
	scopes                     []string
	expiresAt                  time.Time
	used                       bool
}

type subKey struct{ appID, userID string }

type convKey struct{ accountUserID, customerID string }

// inboundMessage is a customer message delivered with DeliverMessage (or
// added as history with AddHistory).
type inboundMessage struct {
	accountUserID, customerID string
	text                      string
	at                        time.Time
}

// Server is the fake Instagram. Create it with New.
type Server struct {
	opts  Options
	clock clock.WithDelayedExecution
	log   logr.Logger
	http  *http.Client
	mux   *http.ServeMux

	mu              sync.Mutex
	apps            map[string]*app
	accounts        map[string]*Account
	customers       map[string]*Customer
	codes           map[string]*authCode
	tokens          map[string]*TokenInfo
	subs            map[subKey][]string
	sent            []SentMessage
	actions         []SentAction
	posts           map[string]string // media ID -> owning account
	comments        map[string]*Comment
	profiles        map[string]*MessengerProfile
	inbound         map[string]inboundMessage
	lastCustomerMsg map[convKey]time.Time
	calls           []Call
	faults          map[string][]*faultEntry
	deliveries      []Delivery
	timers          []clock.Timer

	// closed is atomic because timer callbacks read it without s.mu.
	closed atomic.Bool

	// inflight counts background deliveries (echoes, due read receipts).
	inflight sync.WaitGroup
}

// New returns an empty fake: add apps and accounts before use.
func New(opts Options) *Server {
	s := &Server{
		opts:            opts,
		clock:           opts.Clock,
		log:             opts.Logger,
		http:            opts.HTTPClient,
		apps:            map[string]*app{},
		accounts:        map[string]*Account{},
		customers:       map[string]*Customer{},
		codes:           map[string]*authCode{},
		tokens:          map[string]*TokenInfo{},
		subs:            map[subKey][]string{},
		inbound:         map[string]inboundMessage{},
		posts:           map[string]string{},
		comments:        map[string]*Comment{},
		profiles:        map[string]*MessengerProfile{},
		lastCustomerMsg: map[convKey]time.Time{},
		faults:          map[string][]*faultEntry{},
	}
	if s.clock == nil {
		s.clock = clock.RealClock{}
	}
	if s.http == nil {
		s.http = &http.Client{Timeout: 10 * time.Second}
	}
	if s.log.GetSink() == nil {
		s.log = logr.Discard()
	}
	s.mux = s.routes()
	return s
}

// Close stops pending automatic read receipts and waits for background
// deliveries in flight.
func (s *Server) Close() {
	s.closed.Store(true)
	s.mu.Lock()
	timers := s.timers
	s.timers = nil
	s.mu.Unlock()
	for _, t := range timers {
		t.Stop()
	}
	s.inflight.Wait()
}

// Flush waits for the background deliveries in flight, including read
// receipts whose time has come (with a fake clock: after the Step that
// made them due).
func (s *Server) Flush() { s.inflight.Wait() }

// AddApp registers a Meta app. Calling it again changes the secret.
func (s *Server) AddApp(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[id]; ok {
		a.secret = secret
		return
	}
	s.apps[id] = &app{id: id, secret: secret}
}

// SetRedirectURIs sets the app's registered redirect URIs. The authorize
// page and the code exchange then refuse any other URI; with none set the
// authorize page accepts any.
func (s *Server) SetRedirectURIs(appID string, uris ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[appID]; ok {
		a.redirectURIs = slices.Clone(uris)
	}
}

// SetCallbackURL sets the app's webhook callback URL (default:
// Options.ReceiverURL).
func (s *Server) SetCallbackURL(appID, url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[appID]; ok {
		a.callbackURL = url
	}
}

// AddAccount registers (or replaces) a professional account.
func (s *Server) AddAccount(a Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := a
	s.accounts[a.UserID] = &acc
}

// AddCustomer registers (or replaces) a customer for profile lookups and
// sends.
func (s *Server) AddCustomer(c Customer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cust := c
	s.customers[c.IGSID] = &cust
}

// IssueCode returns a fresh authorization code, as the authorize page does
// when the person approves: single-use, valid for CodeTTL.
func (s *Server) IssueCode(appID, userID, redirectURI string, scopes []string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueCodeLocked(appID, userID, redirectURI, scopes)
}

func (s *Server) issueCodeLocked(appID, userID, redirectURI string, scopes []string) string {
	code := "AQ" + randomString(48)
	s.codes[code] = &authCode{
		appID: appID, userID: userID, redirectURI: redirectURI,
		scopes: slices.Clone(scopes), expiresAt: s.clock.Now().Add(CodeTTL),
	}
	return code
}

// IssueShortLivedToken returns a token valid for ShortLivedTTL with
// DefaultScopes, as the code exchange would.
func (s *Server) IssueShortLivedToken(appID, userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueTokenLocked(appID, userID, false, DefaultScopes)
}

// IssueLongLivedToken returns a token valid for LongLivedTTL with
// DefaultScopes, issued now.
func (s *Server) IssueLongLivedToken(appID, userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueTokenLocked(appID, userID, true, DefaultScopes)
}

// IssueLongLivedTokenWithScopes is IssueLongLivedToken with the given
// scopes (for example with ScopeManageComments).
func (s *Server) IssueLongLivedTokenWithScopes(appID, userID string, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueTokenLocked(appID, userID, true, scopes)
}

func (s *Server) issueTokenLocked(appID, userID string, longLived bool, scopes []string) string {
	now := s.clock.Now()
	ttl := ShortLivedTTL
	if longLived {
		ttl = LongLivedTTL
	}
	token := "IGAA" + randomString(64)
	s.tokens[token] = &TokenInfo{
		AppID: appID, UserID: userID, LongLived: longLived, Scopes: slices.Clone(scopes),
		IssuedAt: now, ExpiresAt: now.Add(ttl),
	}
	return token
}

// Token describes an issued token.
func (s *Server) Token(token string) (TokenInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[token]
	if !ok {
		return TokenInfo{}, false
	}
	info := *t
	info.Scopes = slices.Clone(t.Scopes)
	return info, true
}

// RevokeToken makes token unknown to Instagram: it then fails with code
// 190 and no subcode, like a token that cannot be parsed.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[token]; ok {
		t.Revoked = true
	}
}

// InvalidateAccountTokens invalidates every token of the account with a
// code 190 subcode: 458 (app removed), 460 (password changed), 463
// (expired), 467 (logged out).
func (s *Server) InvalidateAccountTokens(userID string, subcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.UserID == userID {
			t.Subcode = subcode
		}
	}
}

// Subscribe sets the account's subscribed fields for the app, as the
// subscribed_apps endpoint does.
func (s *Server) Subscribe(appID, userID string, fields ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs[subKey{appID, userID}] = slices.Clone(fields)
}

// Subscriptions returns the fields the account is subscribed to, over all
// apps, sorted.
func (s *Server) Subscriptions(userID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k, fields := range s.subs {
		if k.userID != userID {
			continue
		}
		for _, f := range fields {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}

// SubscriptionsOf returns the fields the account is subscribed to for one
// app, sorted; nil when that app is not subscribed.
func (s *Server) SubscriptionsOf(appID, userID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	fields, ok := s.subs[subKey{appID, userID}]
	if !ok {
		return nil
	}
	out := slices.Clone(fields)
	sort.Strings(out)
	return out
}

// RemoveSubscription removes the account's subscriptions for every app, as
// when a person removes the app in Instagram's settings.
func (s *Server) RemoveSubscription(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.subs {
		if k.userID == userID {
			delete(s.subs, k)
		}
	}
}

// SetSplitImageMIDs turns Options.SplitImageMIDs on or off.
func (s *Server) SetSplitImageMIDs(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.SplitImageMIDs = on
}

// Sent returns the messages accepted by the send endpoint, oldest first.
func (s *Server) Sent() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// Calls returns the requests answered, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallCount is the number of requests answered for endpoint.
func (s *Server) CallCount(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Endpoint == endpoint {
			n++
		}
	}
	return n
}

// validTokenLocked returns the token's record or the Graph error Meta
// answers for it.
func (s *Server) validTokenLocked(token string) (*TokenInfo, *graphError) {
	t, ok := s.tokens[token]
	if token == "" || !ok || t.Revoked {
		return nil, errInvalidToken()
	}
	now := s.clock.Now()
	if t.Subcode != 0 {
		return nil, errTokenSubcode(t.Subcode, t.AppID, t.UserID, t.ExpiresAt, now)
	}
	if !now.Before(t.ExpiresAt) {
		return nil, errTokenSubcode(subcodeExpired, t.AppID, t.UserID, t.ExpiresAt, now)
	}
	return t, nil
}

// randomString returns n unguessable URL-safe characters.
func randomString(n int) string {
	b := make([]byte, (n*3+3)/4)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// newMID returns a message ID shaped like Instagram's.
func newMID() string {
	return "aWdfZAG1faXRlbTox" + randomString(40)
}

func newTraceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "A" + hex.EncodeToString(b)
}
