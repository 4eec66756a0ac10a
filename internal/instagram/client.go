package instagram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

// Defaults of Config.
const (
	DefaultGraphURL         = "https://graph.instagram.com"
	DefaultAPIURL           = "https://api.instagram.com"
	DefaultOAuthURL         = "https://www.instagram.com"
	DefaultGraphVersion     = "v24.0"
	DefaultTimeout          = 15 * time.Second
	DefaultRatePerSecond    = 20
	DefaultBurst            = 40
	DefaultMaxResponseBytes = 1 << 20
)

// Fields the client asks for.
var (
	meFields      = []string{"user_id", "username", "name", "account_type", "profile_picture_url", "id"}
	profileFields = []string{"name", "username", "profile_pic", "follower_count", "is_user_follow_business", "is_business_follow_user", "is_verified_user"}
)

// Config configures the Instagram clients. The zero value talks to Meta with
// the defaults above.
type Config struct {
	// GraphURL serves the token endpoints and the versioned Graph API.
	GraphURL string
	// APIURL serves the code exchange.
	APIURL string
	// OAuthURL serves the authorize page.
	OAuthURL string
	// GraphVersion is the versioned path prefix, like "v24.0".
	GraphVersion string
	// HTTPClient makes the calls. It is copied, and the copy never follows
	// redirects, so a token is never replayed to another address.
	HTTPClient *http.Client
	// Timeout bounds each call, reading the answer included.
	Timeout time.Duration
	// RatePerSecond and Burst size the token bucket each app's calls share.
	// A negative RatePerSecond disables client-side rate limiting.
	RatePerSecond float64
	Burst         int
	// AccountLimits are Instagram's per-account send limits; zero fields
	// take Instagram's documented defaults.
	AccountLimits AccountLimits
	// MaxResponseBytes bounds the answers read (default 1 MiB).
	MaxResponseBytes int64
	// Registerer receives instagram_api_requests_total; nil registers
	// nowhere (the counter is still available from Clients.RequestsTotal).
	Registerer prometheus.Registerer
	// Clock reads Retry-After dates. The rate limiter runs on wall time
	// because it paces real network calls.
	Clock clock.PassiveClock
}

func (c Config) withDefaults() Config {
	if c.GraphURL == "" {
		c.GraphURL = DefaultGraphURL
	}
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if c.OAuthURL == "" {
		c.OAuthURL = DefaultOAuthURL
	}
	c.GraphURL = strings.TrimRight(c.GraphURL, "/")
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	c.OAuthURL = strings.TrimRight(c.OAuthURL, "/")
	if c.GraphVersion == "" {
		c.GraphVersion = DefaultGraphVersion
	}
	c.GraphVersion = strings.Trim(c.GraphVersion, "/")
	if !strings.HasPrefix(c.GraphVersion, "v") {
		c.GraphVersion = "v" + c.GraphVersion
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = DefaultRatePerSecond
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	c.AccountLimits = c.AccountLimits.withDefaults()
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	hc := http.Client{}
	if c.HTTPClient != nil {
		hc = *c.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.HTTPClient = &hc
	return c
}

// Clients hands out API values per Meta app. It is safe for concurrent use;
// make one per process.
type Clients struct {
	cfg           Config
	limiters      *limiters
	accountLimits *accountLimiters
	requests      *prometheus.CounterVec
}

// NewClients builds the clients, registering the request counter on
// cfg.Registerer when it is set.
func NewClients(cfg Config) *Clients {
	cfg = cfg.withDefaults()
	return &Clients{
		cfg:           cfg,
		limiters:      newLimiters(cfg.RatePerSecond, cfg.Burst),
		accountLimits: newAccountLimiters(cfg.AccountLimits),
		requests:      newRequestsCounter(cfg.Registerer),
	}
}

// ForApp returns the API of one Meta app. Every value returned for the same
// appID shares one rate-limit bucket.
func (c *Clients) ForApp(appID string) API {
	return &client{Clients: c, appID: appID, limiter: c.limiters.forApp(appID)}
}

// RequestsTotal is instagram_api_requests_total{endpoint,result}.
func (c *Clients) RequestsTotal() *prometheus.CounterVec { return c.requests }

// client is the API of one app.
type client struct {
	*Clients
	appID   string
	limiter *rate.Limiter
}

var _ API = (*client)(nil)

// request describes one HTTP call.
type request struct {
	endpoint string
	method   string
	url      string // may carry a token or secret in its query: never print it
	bearer   string
	form     url.Values
	json     any
	// secrets are redacted from any error text.
	secrets []string
}

func (c *client) graphURL(path string, q url.Values) string {
	u := c.cfg.GraphURL + "/" + c.cfg.GraphVersion + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// do runs req and hands a successful answer's body to decode. It waits for
// the app's rate limit, bounds the call with the timeout and the body with
// the size limit, classifies every failure and counts the outcome.
func (c *client) do(ctx context.Context, req request, decode func(body []byte) error) (err error) {
	defer func() {
		c.requests.WithLabelValues(req.endpoint, ResultOf(err)).Inc()
	}()
	if !takeReservation(ctx, c.limiter) {
		if err := wait(ctx, c.limiter, req.endpoint); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	// Whether the request reached the wire decides if a failed send may
	// have been delivered.
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})

	var body io.Reader
	contentType := ""
	switch {
	case req.form != nil:
		body = strings.NewReader(req.form.Encode())
		contentType = "application/x-www-form-urlencoded"
	case req.json != nil:
		b, err := json.Marshal(req.json)
		if err != nil {
			return &Error{Class: ClassBadRequest, Endpoint: req.endpoint, NotDelivered: true,
				Message: "encode request: " + redact(err.Error(), req.secrets...)}
		}
		body = bytes.NewReader(b)
		contentType = "application/json"
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
	if err != nil {
		// The error would quote the URL: keep only the endpoint.
		return &Error{Class: ClassBadRequest, Endpoint: req.endpoint, NotDelivered: true,
			Message: "build request: invalid URL or method"}
	}
	hr.Header.Set("Accept", "application/json")
	if contentType != "" {
		hr.Header.Set("Content-Type", contentType)
	}
	if req.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+req.bearer)
	}

	resp, err := c.cfg.HTTPClient.Do(hr)
	if err != nil {
		return transportError(req.endpoint, err, wrote.Load(), req.secrets)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		return transportError(req.endpoint, err, true, req.secrets)
	}
	if int64(len(raw)) > c.cfg.MaxResponseBytes {
		return &Error{Class: ClassUnknown, Endpoint: req.endpoint, HTTPStatus: resp.StatusCode,
			NotDelivered: resp.StatusCode >= 400 && resp.StatusCode < 500,
			Message:      "answer larger than " + strconv.FormatInt(c.cfg.MaxResponseBytes, 10) + " bytes"}
	}
	_, hasGraphError := parseGraphError(raw)
	if resp.StatusCode < 200 || resp.StatusCode > 299 || hasGraphError {
		e := classifyResponse(req.endpoint, resp.StatusCode, resp.Header, raw, c.cfg.Clock.Now())
		e.Message = redact(e.Message, req.secrets...)
		return e
	}
	if decode == nil {
		return nil
	}
	if err := decode(raw); err != nil {
		return &Error{Class: ClassUnknown, Endpoint: req.endpoint, HTTPStatus: resp.StatusCode,
			Message: "unexpected answer: " + redact(err.Error(), req.secrets...)}
	}
	return nil
}

// transportError classifies a failure to get an answer. The *url.Error
// wrapper is dropped because its text quotes the URL, query and all.
func transportError(endpoint string, err error, wrote bool, secrets []string) *Error {
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	return &Error{
		Class:        ClassTransient,
		Endpoint:     endpoint,
		IsTransient:  true,
		NotDelivered: !wrote,
		Message:      redact(cause.Error(), secrets...),
		cause:        cause,
	}
}

// unexpected reports an answer that is well-formed JSON but not what the
// endpoint promises.
func unexpected(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}

// AuthorizeURL builds the Business Login URL. The scope is comma-separated
// as Instagram documents it.
func (c *client) AuthorizeURL(p AuthorizeParams) string {
	q := url.Values{}
	q.Set("client_id", c.appID)
	q.Set("redirect_uri", p.RedirectURI)
	q.Set("response_type", "code")
	q.Set("scope", strings.Join(p.Scopes, ","))
	q.Set("state", p.State)
	q.Set("enable_fb_login", "0")
	if p.ForceReauth {
		q.Set("force_reauth", "true")
	}
	return c.cfg.OAuthURL + "/oauth/authorize?" + q.Encode()
}

// tokenFields is one token in the code exchange answer.
type tokenFields struct {
	AccessToken string     `json:"access_token"`
	UserID      flexString `json:"user_id"`
	Permissions flexList   `json:"permissions"`
}

// ExchangeCode trades an authorization code for a short-lived token.
func (c *client) ExchangeCode(ctx context.Context, appSecret, redirectURI, code string) (*ShortLivedToken, error) {
	code = strings.TrimSuffix(strings.TrimSpace(code), "#_")
	form := url.Values{}
	form.Set("client_id", c.appID)
	form.Set("client_secret", appSecret)
	form.Set("grant_type", "authorization_code")
	form.Set("redirect_uri", redirectURI)
	form.Set("code", code)
	var out *ShortLivedToken
	err := c.do(ctx, request{
		endpoint: EndpointExchangeCode,
		method:   http.MethodPost,
		url:      c.cfg.APIURL + "/oauth/access_token",
		form:     form,
		secrets:  []string{appSecret, code},
	}, func(body []byte) error {
		// Flat {access_token,user_id,permissions} or wrapped in
		// {"data":[...]}: Meta's documents show both.
		var answer struct {
			tokenFields
			Data []tokenFields `json:"data"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		t := answer.tokenFields
		if t.AccessToken == "" && len(answer.Data) > 0 {
			t = answer.Data[0]
		}
		if t.AccessToken == "" {
			return unexpected("no access_token in the answer")
		}
		if t.UserID == "" {
			return unexpected("no user_id in the answer")
		}
		out = &ShortLivedToken{AccessToken: t.AccessToken, UserID: string(t.UserID), Permissions: []string(t.Permissions)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeLongLived reads {"access_token","token_type","expires_in"}.
func decodeLongLived(out **LongLivedToken) func([]byte) error {
	return func(body []byte) error {
		var answer struct {
			AccessToken string  `json:"access_token"`
			TokenType   string  `json:"token_type"`
			ExpiresIn   flexInt `json:"expires_in"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		if answer.AccessToken == "" {
			return unexpected("no access_token in the answer")
		}
		*out = &LongLivedToken{
			AccessToken: answer.AccessToken,
			TokenType:   answer.TokenType,
			ExpiresIn:   time.Duration(answer.ExpiresIn) * time.Second,
		}
		return nil
	}
}

// ExchangeLongLived trades a short-lived token for a long-lived one. This
// endpoint takes the token and secret as query parameters only.
func (c *client) ExchangeLongLived(ctx context.Context, appSecret, shortLivedToken string) (*LongLivedToken, error) {
	q := url.Values{}
	q.Set("grant_type", "ig_exchange_token")
	q.Set("client_secret", appSecret)
	q.Set("access_token", shortLivedToken)
	var out *LongLivedToken
	err := c.do(ctx, request{
		endpoint: EndpointExchangeToken,
		method:   http.MethodGet,
		url:      c.cfg.GraphURL + "/access_token?" + q.Encode(),
		secrets:  []string{appSecret, shortLivedToken},
	}, decodeLongLived(&out))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RefreshToken renews a long-lived token.
func (c *client) RefreshToken(ctx context.Context, longLivedToken string) (*LongLivedToken, error) {
	q := url.Values{}
	q.Set("grant_type", "ig_refresh_token")
	q.Set("access_token", longLivedToken)
	var out *LongLivedToken
	err := c.do(ctx, request{
		endpoint: EndpointRefreshToken,
		method:   http.MethodGet,
		url:      c.cfg.GraphURL + "/refresh_access_token?" + q.Encode(),
		secrets:  []string{longLivedToken},
	}, decodeLongLived(&out))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Me looks up the professional account behind token.
func (c *client) Me(ctx context.Context, token string) (*Account, error) {
	q := url.Values{}
	q.Set("fields", strings.Join(meFields, ","))
	var out *Account
	err := c.do(ctx, request{
		endpoint: EndpointMe,
		method:   http.MethodGet,
		url:      c.graphURL("/me", q),
		bearer:   token,
		secrets:  []string{token},
	}, func(body []byte) error {
		var answer struct {
			UserID            flexString `json:"user_id"`
			ID                flexString `json:"id"`
			Username          string     `json:"username"`
			Name              string     `json:"name"`
			AccountType       string     `json:"account_type"`
			ProfilePictureURL string     `json:"profile_picture_url"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		if answer.UserID == "" {
			return unexpected("no user_id in the answer")
		}
		out = &Account{
			UserID:            string(answer.UserID),
			ID:                string(answer.ID),
			Username:          answer.Username,
			Name:              answer.Name,
			AccountType:       answer.AccountType,
			ProfilePictureURL: answer.ProfilePictureURL,
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// badRequest refuses a call before it is made.
func badRequest(endpoint, msg string) error {
	return &Error{Class: ClassBadRequest, Endpoint: endpoint, NotDelivered: true, Message: msg}
}

func (c *client) subscribedAppsURL(userID string, q url.Values) string {
	return c.graphURL("/"+url.PathEscape(userID)+"/subscribed_apps", q)
}

// decodeSuccess accepts only {"success":true}: a subscription that did not
// take must show on the channel.
func decodeSuccess(body []byte) error {
	var answer struct {
		Success json.RawMessage `json:"success"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return err
	}
	switch strings.TrimSpace(string(answer.Success)) {
	case "true", `"true"`:
		return nil
	}
	return unexpected("the answer does not report success")
}

// Subscribe subscribes the account's webhooks to fields.
func (c *client) Subscribe(ctx context.Context, token, userID string, fields []string) error {
	if userID == "" {
		return badRequest(EndpointSubscribe, "no account user ID")
	}
	if len(fields) == 0 {
		return badRequest(EndpointSubscribe, "no subscribed fields")
	}
	q := url.Values{}
	q.Set("subscribed_fields", strings.Join(fields, ","))
	return c.do(ctx, request{
		endpoint: EndpointSubscribe,
		method:   http.MethodPost,
		url:      c.subscribedAppsURL(userID, q),
		bearer:   token,
		secrets:  []string{token},
	}, decodeSuccess)
}

// Subscriptions returns the fields the account is subscribed to.
func (c *client) Subscriptions(ctx context.Context, token, userID string) ([]string, error) {
	if userID == "" {
		return nil, badRequest(EndpointSubscriptions, "no account user ID")
	}
	var out []string
	err := c.do(ctx, request{
		endpoint: EndpointSubscriptions,
		method:   http.MethodGet,
		url:      c.subscribedAppsURL(userID, nil),
		bearer:   token,
		secrets:  []string{token},
	}, func(body []byte) error {
		// The shape is unconfirmed for Instagram: accept the Messenger one
		// ({"data":[{"subscribed_fields":...}]}) and a bare object.
		type entry struct {
			SubscribedFields flexList `json:"subscribed_fields"`
		}
		var answer struct {
			entry
			Data []entry `json:"data"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		out = []string{}
		for _, e := range append([]entry{answer.entry}, answer.Data...) {
			for _, f := range e.SubscribedFields {
				if !slices.Contains(out, f) {
					out = append(out, f)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Unsubscribe removes the account's webhook subscription.
func (c *client) Unsubscribe(ctx context.Context, token, userID string) error {
	if userID == "" {
		return badRequest(EndpointUnsubscribe, "no account user ID")
	}
	return c.do(ctx, request{
		endpoint: EndpointUnsubscribe,
		method:   http.MethodDelete,
		url:      c.subscribedAppsURL(userID, nil),
		bearer:   token,
		secrets:  []string{token},
	}, decodeSuccess)
}

// Send sends text or one attachment: a SendRequest built from msg, through
// SendMessage, so every send takes one path.
func (c *client) Send(ctx context.Context, token string, msg OutgoingMessage) (*SendResult, error) {
	req := SendRequest{RecipientID: msg.RecipientID, HumanAgent: msg.HumanAgent, ReplyTo: msg.ReplyTo, Message: &MessageContent{Text: msg.Text}}
	if msg.AttachmentType != "" || msg.AttachmentURL != "" {
		req.Message.Attachment = &Attachment{Type: msg.AttachmentType, URL: msg.AttachmentURL}
	}
	return c.SendMessage(ctx, token, req)
}

// Profile looks up a customer's profile.
func (c *client) Profile(ctx context.Context, token, igsid string) (*Profile, error) {
	if igsid == "" {
		return nil, badRequest(EndpointProfile, "no IGSID")
	}
	q := url.Values{}
	q.Set("fields", strings.Join(profileFields, ","))
	var out *Profile
	err := c.do(ctx, request{
		endpoint: EndpointProfile,
		method:   http.MethodGet,
		url:      c.graphURL("/"+url.PathEscape(igsid), q),
		bearer:   token,
		secrets:  []string{token},
	}, func(body []byte) error {
		var answer struct {
			Name                 string   `json:"name"`
			Username             string   `json:"username"`
			ProfilePic           string   `json:"profile_pic"`
			FollowerCount        *flexInt `json:"follower_count"`
			IsUserFollowBusiness *bool    `json:"is_user_follow_business"`
			IsBusinessFollowUser *bool    `json:"is_business_follow_user"`
			IsVerifiedUser       *bool    `json:"is_verified_user"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			return err
		}
		out = &Profile{
			Name:                 answer.Name,
			Username:             answer.Username,
			ProfilePic:           answer.ProfilePic,
			IsUserFollowBusiness: answer.IsUserFollowBusiness,
			IsBusinessFollowUser: answer.IsBusinessFollowUser,
			IsVerifiedUser:       answer.IsVerifiedUser,
		}
		if answer.FollowerCount != nil {
			out.FollowerCount = ptr.To(int64(*answer.FollowerCount))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
