package instagram_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

const (
	appID     = "1000000000000001"
	appSecret = "app-secret-0123456789abcdef"
	userID    = "17841400000000001"
	customer  = "5550001"
	redirect  = "https://operator.example.com/oauth/instagram/callback"
)

type env struct {
	fake    *fake.Server
	srv     *httptest.Server
	clock   *clocktesting.FakeClock
	clients *instagram.Clients
	api     instagram.API
	reg     *prometheus.Registry
	// secrets must never show in an error text.
	mu      sync.Mutex
	secrets []string
}

func newEnv(t *testing.T, opts fake.Options, mutate ...func(*instagram.Config)) *env {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2025, 11, 21, 12, 0, 0, 0, time.UTC))
	opts.Clock = clk
	f := fake.New(opts)
	f.AddApp(appID, appSecret)
	f.AddAccount(fake.Account{UserID: userID, ID: "9000000000000001", Username: "shop", Name: "The Shop",
		AccountType: "BUSINESS", ProfilePictureURL: "https://cdn.example.com/p.jpg"})
	srv := httptest.NewServer(f)
	t.Cleanup(func() {
		srv.Close()
		f.Close()
	})
	reg := prometheus.NewRegistry()
	cfg := instagram.Config{GraphURL: srv.URL, APIURL: srv.URL, OAuthURL: srv.URL, Registerer: reg, Clock: clk, Timeout: 5 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	clients := instagram.NewClients(cfg)
	return &env{fake: f, srv: srv, clock: clk, clients: clients, api: clients.ForApp(appID), reg: reg, secrets: []string{appSecret}}
}

func (e *env) token(t *testing.T) string {
	t.Helper()
	tok := e.fake.IssueLongLivedToken(appID, userID)
	e.addSecret(tok)
	return tok
}

func (e *env) addSecret(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, s)
}

// checkErr fails when err is nil or carries a secret in its text.
func (e *env) checkErr(t *testing.T, err error) *instagram.Error {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.secrets {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error text leaks a secret: %q", err.Error())
		}
		if u := errors.Unwrap(err); u != nil && strings.Contains(u.Error(), s) {
			t.Fatalf("wrapped error leaks a secret: %q", u.Error())
		}
	}
	var ie *instagram.Error
	if !errors.As(err, &ie) {
		t.Fatalf("not an *instagram.Error: %T %v", err, err)
	}
	return ie
}

func TestLoginFlow(t *testing.T) {
	e := newEnv(t, fake.Options{})
	ctx := context.Background()
	e.fake.SetRedirectURIs(appID, redirect)

	authURL := e.api.AuthorizeURL(instagram.AuthorizeParams{
		AppID: appID, RedirectURI: redirect, State: "s1",
		Scopes: []string{fake.ScopeBasic, fake.ScopeManageMessages}, ForceReauth: true,
	})
	back, err := e.fake.AuthorizeRedirect(authURL, userID)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(back)
	if u.Query().Get("state") != "s1" {
		t.Fatalf("state lost: %s", back)
	}
	// The code as a sloppy callback handler might read it, "#_" included.
	code := u.Query().Get("code") + "#_"
	e.addSecret(u.Query().Get("code"))

	short, err := e.api.ExchangeCode(ctx, appSecret, redirect, code)
	if err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	e.addSecret(short.AccessToken)
	if short.UserID != userID || !cmp.Equal(short.Permissions, []string{fake.ScopeBasic, fake.ScopeManageMessages}) {
		t.Errorf("short-lived token = %+v", short)
	}

	// The code is single-use.
	ie := e.checkErr(t, func() error { _, err := e.api.ExchangeCode(ctx, appSecret, redirect, code); return err }())
	if ie.Class != instagram.ClassOAuthCodeInvalid || ie.Message != "Matching code was not found or was already used" {
		t.Errorf("reused code: %v", ie)
	}

	long, err := e.api.ExchangeLongLived(ctx, appSecret, short.AccessToken)
	if err != nil {
		t.Fatalf("ExchangeLongLived: %v", err)
	}
	e.addSecret(long.AccessToken)
	if long.ExpiresIn != 60*24*time.Hour || long.TokenType != "bearer" {
		t.Errorf("long-lived = %+v", long)
	}

	ie = e.checkErr(t, func() error { _, err := e.api.RefreshToken(ctx, long.AccessToken); return err }())
	if ie.Class != instagram.ClassTokenInvalid {
		t.Errorf("refresh of a young token: %v", ie)
	}
	e.clock.Step(24 * time.Hour)
	refreshed, err := e.api.RefreshToken(ctx, long.AccessToken)
	if err != nil {
		t.Fatalf("RefreshToken: %v", err)
	}
	e.addSecret(refreshed.AccessToken)

	acc, err := e.api.Me(ctx, refreshed.AccessToken)
	if err != nil {
		t.Fatalf("Me: %v", err)
	}
	want := &instagram.Account{UserID: userID, ID: "9000000000000001", Username: "shop", Name: "The Shop",
		AccountType: "BUSINESS", ProfilePictureURL: "https://cdn.example.com/p.jpg"}
	if diff := cmp.Diff(want, acc); diff != "" {
		t.Errorf("Me (-want +got):\n%s", diff)
	}

	if got := testutil.ToFloat64(e.clients.RequestsTotal().WithLabelValues(instagram.EndpointRefreshToken, "tokeninvalid")); got != 1 {
		t.Errorf("refresh tokeninvalid count = %v", got)
	}
	if got := testutil.ToFloat64(e.clients.RequestsTotal().WithLabelValues(instagram.EndpointExchangeCode, instagram.ResultSuccess)); got != 1 {
		t.Errorf("exchange_code success count = %v", got)
	}
	if n, err := testutil.GatherAndCount(e.reg, instagram.MetricRequestsTotal); err != nil || n == 0 {
		t.Errorf("the counter is not registered: %d %v", n, err)
	}
}

func TestAuthorizeURL(t *testing.T) {
	api := instagram.NewClients(instagram.Config{}).ForApp(appID)
	got, err := url.Parse(api.AuthorizeURL(instagram.AuthorizeParams{
		RedirectURI: redirect, State: "xyz", Scopes: []string{"instagram_business_basic", "instagram_business_manage_messages"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Scheme+"://"+got.Host+got.Path != "https://www.instagram.com/oauth/authorize" {
		t.Errorf("base = %s", got)
	}
	want := url.Values{"client_id": {appID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"instagram_business_basic,instagram_business_manage_messages"}, "state": {"xyz"}, "enable_fb_login": {"0"}}
	if diff := cmp.Diff(want, got.Query()); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
}

func TestExchangeCodeWrappedShapeFromFake(t *testing.T) {
	e := newEnv(t, fake.Options{WrapCodeExchange: true})
	code := e.fake.IssueCode(appID, userID, redirect, fake.DefaultScopes)
	short, err := e.api.ExchangeCode(context.Background(), appSecret, redirect, code)
	if err != nil {
		t.Fatal(err)
	}
	if short.UserID != userID || len(short.Permissions) != 2 || short.AccessToken == "" {
		t.Errorf("wrapped: %+v", short)
	}
}

// inline serves one canned answer and records the request.
type inline struct {
	status int
	header http.Header
	body   string

	mu  sync.Mutex
	req *http.Request
	raw []byte
}

func (h *inline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.req, h.raw = r, raw
	h.mu.Unlock()
	for k, v := range h.header {
		w.Header()[k] = v
	}
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
	_, _ = io.WriteString(w, h.body)
}

func newInline(t *testing.T, h *inline) instagram.API {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return instagram.NewClients(instagram.Config{GraphURL: srv.URL, APIURL: srv.URL, OAuthURL: srv.URL, GraphVersion: "v24.0"}).ForApp(appID)
}

func TestExchangeCodeShapes(t *testing.T) {
	tests := map[string]struct {
		body string
		want instagram.ShortLivedToken
	}{
		"flat, numeric user_id, list": {
			body: `{"access_token":"IGAAx","user_id":17841400000000001,"permissions":["instagram_business_basic"]}`,
			want: instagram.ShortLivedToken{AccessToken: "IGAAx", UserID: "17841400000000001", Permissions: []string{"instagram_business_basic"}},
		},
		"flat, string user_id, comma string": {
			body: `{"access_token":"IGAAx","user_id":"17841400000000001","permissions":"instagram_business_basic,instagram_business_manage_messages"}`,
			want: instagram.ShortLivedToken{AccessToken: "IGAAx", UserID: "17841400000000001", Permissions: []string{"instagram_business_basic", "instagram_business_manage_messages"}},
		},
		"wrapped in data": {
			body: `{"data":[{"access_token":"IGAAy","user_id":"17841400000000002","permissions":"instagram_business_basic"}]}`,
			want: instagram.ShortLivedToken{AccessToken: "IGAAy", UserID: "17841400000000002", Permissions: []string{"instagram_business_basic"}},
		},
		"wrapped, numeric user_id, list": {
			body: `{"data":[{"access_token":"IGAAz","user_id":17841400000000003,"permissions":["a","b"]}]}`,
			want: instagram.ShortLivedToken{AccessToken: "IGAAz", UserID: "17841400000000003", Permissions: []string{"a", "b"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := &inline{body: tc.body}
			got, err := newInline(t, h).ExchangeCode(context.Background(), appSecret, redirect, "CODE#_")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, *got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if h.req.Method != http.MethodPost || h.req.URL.Path != "/oauth/access_token" || h.req.URL.RawQuery != "" {
				t.Errorf("request %s %s", h.req.Method, h.req.URL)
			}
			form, _ := url.ParseQuery(string(h.raw))
			want := url.Values{"client_id": {appID}, "client_secret": {appSecret}, "grant_type": {"authorization_code"},
				"redirect_uri": {redirect}, "code": {"CODE"}}
			if diff := cmp.Diff(want, form); diff != "" {
				t.Errorf("form (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		_, err := newInline(t, &inline{body: `{"data":[]}`}).ExchangeCode(context.Background(), appSecret, redirect, "C")
		if instagram.ClassOf(err) != instagram.ClassUnknown {
			t.Errorf("empty answer: %v", err)
		}
	})
}

// TestRequestShapes pins each call's method, path, query and headers: the
// token travels in the Authorization header on every versioned Graph call
// and only the two token endpoints take it in the query.
func TestRequestShapes(t *testing.T) {
	ctx := context.Background()
	const tok = "IGAAtoken"
	tests := map[string]struct {
		answer    string
		call      func(api instagram.API) error
		method    string
		path      string
		query     url.Values
		bearer    bool
		checkBody func(t *testing.T, body []byte)
	}{
		"exchange_token": {
			answer: `{"access_token":"IGAAlong","token_type":"bearer","expires_in":5184000}`,
			call:   func(api instagram.API) error { _, err := api.ExchangeLongLived(ctx, appSecret, tok); return err },
			method: "GET", path: "/access_token",
			query: url.Values{"grant_type": {"ig_exchange_token"}, "client_secret": {appSecret}, "access_token": {tok}},
		},
		"refresh_token": {
			answer: `{"access_token":"IGAAlong","token_type":"bearer","expires_in":"5184000"}`,
			call:   func(api instagram.API) error { _, err := api.RefreshToken(ctx, tok); return err },
			method: "GET", path: "/refresh_access_token",
			query: url.Values{"grant_type": {"ig_refresh_token"}, "access_token": {tok}},
		},
		"me": {
			answer: `{"user_id":"1","id":"2"}`,
			call:   func(api instagram.API) error { _, err := api.Me(ctx, tok); return err },
			method: "GET", path: "/v24.0/me", bearer: true,
			query: url.Values{"fields": {"user_id,username,name,account_type,profile_picture_url,id"}},
		},
		"subscribe": {
			answer: `{"success":true}`,
			call: func(api instagram.API) error {
				return api.Subscribe(ctx, tok, userID, []string{"messages", "messaging_seen", "message_reactions"})
			},
			method: "POST", path: "/v24.0/" + userID + "/subscribed_apps", bearer: true,
			query: url.Values{"subscribed_fields": {"messages,messaging_seen,message_reactions"}},
		},
		"subscriptions": {
			answer: `{"data":[]}`,
			call:   func(api instagram.API) error { _, err := api.Subscriptions(ctx, tok, userID); return err },
			method: "GET", path: "/v24.0/" + userID + "/subscribed_apps", bearer: true, query: url.Values{},
		},
		"unsubscribe": {
			answer: `{"success":true}`,
			call:   func(api instagram.API) error { return api.Unsubscribe(ctx, tok, userID) },
			method: "DELETE", path: "/v24.0/" + userID + "/subscribed_apps", bearer: true, query: url.Values{},
		},
		"send text with tag and reply": {
			answer: `{"recipient_id":"5550001","message_id":"mid.1"}`,
			call: func(api instagram.API) error {
				_, err := api.Send(ctx, tok, instagram.OutgoingMessage{RecipientID: customer, Text: "hi", HumanAgent: true, ReplyTo: "mid.0"})
				return err
			},
			method: "POST", path: "/v24.0/me/messages", bearer: true, query: url.Values{},
			checkBody: func(t *testing.T, body []byte) {
				want := `{"recipient":{"id":"5550001"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"text":"hi","reply_to":{"mid":"mid.0"}}}`
				if string(body) != want {
					t.Errorf("body %s\nwant %s", body, want)
				}
			},
		},
		"send attachment": {
			answer: `{"recipient_id":"5550001","message_id":"mid.2"}`,
			call: func(api instagram.API) error {
				_, err := api.Send(ctx, tok, instagram.OutgoingMessage{RecipientID: customer, AttachmentType: "image", AttachmentURL: "https://cdn.example.com/a.png"})
				return err
			},
			method: "POST", path: "/v24.0/me/messages", bearer: true, query: url.Values{},
			checkBody: func(t *testing.T, body []byte) {
				want := `{"recipient":{"id":"5550001"},"message":{"attachment":{"type":"image","payload":{"url":"https://cdn.example.com/a.png"}}}}`
				if string(body) != want {
					t.Errorf("body %s\nwant %s", body, want)
				}
			},
		},
		"profile": {
			answer: `{"name":"Ann"}`,
			call:   func(api instagram.API) error { _, err := api.Profile(ctx, tok, customer); return err },
			method: "GET", path: "/v24.0/" + customer, bearer: true,
			query: url.Values{"fields": {"name,username,profile_pic,follower_count,is_user_follow_business,is_business_follow_user,is_verified_user"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := &inline{body: tc.answer}
			if err := tc.call(newInline(t, h)); err != nil {
				t.Fatal(err)
			}
			r := h.req
			if r.Method != tc.method || r.URL.Path != tc.path {
				t.Errorf("request %s %s, want %s %s", r.Method, r.URL.Path, tc.method, tc.path)
			}
			if diff := cmp.Diff(tc.query, r.URL.Query()); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			auth := r.Header.Get("Authorization")
			if tc.bearer && auth != "Bearer "+tok {
				t.Errorf("Authorization = %q", auth)
			}
			if !tc.bearer && auth != "" {
				t.Errorf("unexpected Authorization header")
			}
			if tc.checkBody != nil {
				tc.checkBody(t, h.raw)
			}
		})
	}
}

func TestSubscriptionLifecycle(t *testing.T) {
	e := newEnv(t, fake.Options{})
	ctx := context.Background()
	tok := e.token(t)
	fields := []string{"messages", "messaging_seen", "message_reactions"}
	if got, err := e.api.Subscriptions(ctx, tok, userID); err != nil || len(got) != 0 || got == nil {
		t.Fatalf("before subscribe: %#v %v", got, err)
	}
	if err := e.api.Subscribe(ctx, tok, userID, fields); err != nil {
		t.Fatal(err)
	}
	got, err := e.api.Subscriptions(ctx, tok, userID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fields, got); diff != "" {
		t.Errorf("Subscriptions: %s", diff)
	}
	if err := e.api.Unsubscribe(ctx, tok, userID); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.Subscriptions(userID); len(got) != 0 {
		t.Errorf("still subscribed: %v", got)
	}
	ie := e.checkErr(t, e.api.Subscribe(ctx, tok, userID, []string{"bogus"}))
	if ie.Class != instagram.ClassBadRequest {
		t.Errorf("bogus field: %v", ie)
	}
}

func TestSubscriptionAnswerShapes(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		body string
		want []string
	}{
		"data with list":         {`{"data":[{"subscribed_fields":["messages","messaging_seen"]}]}`, []string{"messages", "messaging_seen"}},
		"data with comma string": {`{"data":[{"subscribed_fields":"messages,message_reactions"}]}`, []string{"messages", "message_reactions"}},
		"several entries":        {`{"data":[{"subscribed_fields":["messages"]},{"subscribed_fields":["messages","messaging_seen"]}]}`, []string{"messages", "messaging_seen"}},
		"not subscribed":         {`{"data":[]}`, []string{}},
		"bare object":            {`{"subscribed_fields":["messages"]}`, []string{"messages"}},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := newInline(t, &inline{body: tc.body}).Subscriptions(ctx, "tok", userID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for name, body := range map[string]string{
		"success false": `{"success":false}`,
		"no success":    `{}`,
		"not json":      `ok`,
	} {
		t.Run("subscribe "+name, func(t *testing.T) {
			err := newInline(t, &inline{body: body}).Subscribe(ctx, "tok", userID, []string{"messages"})
			if instagram.ClassOf(err) != instagram.ClassUnknown {
				t.Errorf("Subscribe with %s: %v", body, err)
			}
			err = newInline(t, &inline{body: body}).Unsubscribe(ctx, "tok", userID)
			if instagram.ClassOf(err) != instagram.ClassUnknown {
				t.Errorf("Unsubscribe with %s: %v", body, err)
			}
		})
	}
}

func TestSendAndProfile(t *testing.T) {
	e := newEnv(t, fake.Options{})
	ctx := context.Background()
	tok := e.token(t)
	r1, err := e.api.Send(ctx, tok, instagram.OutgoingMessage{RecipientID: customer, Text: "hello", ReplyTo: "mid.in"})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.api.Send(ctx, tok, instagram.OutgoingMessage{RecipientID: customer, AttachmentType: "image", AttachmentURL: "https://cdn.example.com/a.png", HumanAgent: true})
	if err != nil {
		t.Fatal(err)
	}
	if r1.MessageID == "" || r1.MessageID == r2.MessageID || r1.RecipientID != customer {
		t.Errorf("results %+v %+v", r1, r2)
	}
	sent := e.fake.Sent()
	want := []fake.SentMessage{
		{AppID: appID, AccountUserID: userID, RecipientID: customer, MID: r1.MessageID, Text: "hello", ReplyTo: "mid.in", At: e.clock.Now(),
			Kind: "text", Body: []byte(`{"recipient":{"id":"5550001"},"message":{"text":"hello","reply_to":{"mid":"mid.in"}}}`)},
		{AppID: appID, AccountUserID: userID, RecipientID: customer, MID: r2.MessageID, AttachmentType: "image",
			AttachmentURL: "https://cdn.example.com/a.png", MessagingType: "MESSAGE_TAG", Tag: "HUMAN_AGENT", At: e.clock.Now(),
			Kind: "image", Attachments: []fake.SentAttachment{{Type: "image", URL: "https://cdn.example.com/a.png"}},
			Body: []byte(`{"recipient":{"id":"5550001"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"attachment":{"type":"image","payload":{"url":"https://cdn.example.com/a.png"}}}}`)},
	}
	if diff := cmp.Diff(want, sent); diff != "" {
		t.Errorf("Sent (-want +got):\n%s", diff)
	}

	for name, msg := range map[string]instagram.OutgoingMessage{
		"no recipient":       {Text: "x"},
		"empty":              {RecipientID: customer},
		"text and image":     {RecipientID: customer, Text: "x", AttachmentType: "image", AttachmentURL: "u"},
		"attachment, no URL": {RecipientID: customer, AttachmentType: "image"},
	} {
		ie := e.checkErr(t, func() error { _, err := e.api.Send(ctx, tok, msg); return err }())
		if ie.Class != instagram.ClassBadRequest || !ie.NotDelivered {
			t.Errorf("%s: %v", name, ie)
		}
	}

	f := true
	e.fake.AddCustomer(fake.Customer{IGSID: customer, Name: "Ann", Username: "ann", ProfilePic: "https://cdn.example.com/ann.jpg", FollowerCount: 42, IsUserFollowBusiness: true})
	p, err := e.api.Profile(ctx, tok, customer)
	if err != nil {
		t.Fatal(err)
	}
	no := false
	followers := int64(42)
	wantProfile := &instagram.Profile{Name: "Ann", Username: "ann", ProfilePic: "https://cdn.example.com/ann.jpg",
		FollowerCount: &followers, IsUserFollowBusiness: &f, IsBusinessFollowUser: &no, IsVerifiedUser: &no}
	if diff := cmp.Diff(wantProfile, p); diff != "" {
		t.Errorf("Profile (-want +got):\n%s", diff)
	}

	// Instagram sends null for a name or picture the person has none of:
	// they stay empty.
	e.fake.AddCustomer(fake.Customer{IGSID: "5550077", Username: "nameless", IsVerifiedUser: true})
	p, err = e.api.Profile(ctx, tok, "5550077")
	if err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	wantProfile = &instagram.Profile{Username: "nameless", FollowerCount: &zero, IsUserFollowBusiness: &no, IsBusinessFollowUser: &no, IsVerifiedUser: &f}
	if diff := cmp.Diff(wantProfile, p); diff != "" {
		t.Errorf("Profile without name and picture (-want +got):\n%s", diff)
	}

	for name, c := range map[string]struct {
		customer fake.Customer
		class    instagram.Class
	}{
		"no consent": {fake.Customer{IGSID: "5550078", NoConsent: true}, instagram.ClassNoConsent},
		"blocked":    {fake.Customer{IGSID: "5550079", Blocked: true}, instagram.ClassUserUnavailable},
		"deleted":    {fake.Customer{IGSID: "5550080", Deleted: true}, instagram.ClassUserUnavailable},
	} {
		e.fake.AddCustomer(c.customer)
		_, err := e.api.Profile(ctx, tok, c.customer.IGSID)
		if got := instagram.ClassOf(err); got != c.class {
			t.Errorf("%s: class %s, want %s (%v)", name, got, c.class, err)
		}
	}
}

// TestErrorClasses produces every class through the real client and the
// fake, and checks that no error text carries the token or the secret.
func TestErrorClasses(t *testing.T) {
	ctx := context.Background()
	type result struct {
		Class        instagram.Class
		NotDelivered bool
		RetryAfter   time.Duration
	}
	send := func(e *env, tok string) error {
		_, err := e.api.Send(ctx, tok, instagram.OutgoingMessage{RecipientID: customer, Text: "hi"})
		return err
	}
	tests := map[string]struct {
		opts     fake.Options
		setup    func(e *env, tok string)
		call     func(e *env, tok string) error
		want     result
		wantSent int
	}{
		"token expired": {
			setup: func(e *env, _ string) { e.clock.Step(61 * 24 * time.Hour) },
			call:  send,
			want:  result{Class: instagram.ClassTokenInvalid, NotDelivered: true},
		},
		"password changed": {
			setup: func(e *env, _ string) { e.fake.InvalidateAccountTokens(userID, 460) },
			call:  func(e *env, tok string) error { _, err := e.api.Me(ctx, tok); return err },
			want:  result{Class: instagram.ClassTokenInvalid, NotDelivered: true},
		},
		"revoked token on subscribe": {
			setup: func(e *env, tok string) { e.fake.RevokeToken(tok) },
			call: func(e *env, tok string) error {
				return e.api.Subscribe(ctx, tok, userID, []string{"messages"})
			},
			want: result{Class: instagram.ClassTokenInvalid, NotDelivered: true},
		},
		"outside window": {
			opts: fake.Options{EnforceMessagingWindow: true},
			call: send,
			want: result{Class: instagram.ClassOutsideWindow, NotDelivered: true},
		},
		"permission denied": {
			setup: func(e *env, _ string) {
				e.fake.FailNext(fake.EndpointSubscribe, 1, fake.Fault{Code: 200, Message: "(#200) Requires instagram_business_manage_messages permission"})
			},
			call: func(e *env, tok string) error { return e.api.Subscribe(ctx, tok, userID, []string{"messages"}) },
			want: result{Class: instagram.ClassPermissionDenied, NotDelivered: true},
		},
		"consent required": {
			setup: func(e *env, _ string) { e.fake.AddCustomer(fake.Customer{IGSID: customer, NoConsent: true}) },
			call:  func(e *env, tok string) error { _, err := e.api.Profile(ctx, tok, customer); return err },
			want:  result{Class: instagram.ClassNoConsent, NotDelivered: true},
		},
		"rate limited with usage header": {
			setup: func(e *env, _ string) {
				e.fake.FailNext(fake.EndpointSend, 1, fake.Fault{Code: 80002, Message: "Too many calls",
					BusinessUseCaseUsage: `{"` + userID + `":[{"type":"instagram","call_count":100,"estimated_time_to_regain_access":3}]}`})
			},
			call: send,
			want: result{Class: instagram.ClassRateLimited, NotDelivered: true, RetryAfter: 3 * time.Minute},
		},
		"rate limited by HTTP 429": {
			setup: func(e *env, _ string) {
				e.fake.FailNext(fake.EndpointMe, 1, fake.Fault{HTTPStatus: 429, Body: "slow down", RetryAfter: "12"})
			},
			call: func(e *env, tok string) error { _, err := e.api.Me(ctx, tok); return err },
			want: result{Class: instagram.ClassRateLimited, NotDelivered: true, RetryAfter: 12 * time.Second},
		},
		"user unavailable": {
			setup: func(e *env, _ string) { e.fake.AddCustomer(fake.Customer{IGSID: customer, Unavailable: true}) },
			call:  send,
			want:  result{Class: instagram.ClassUserUnavailable, NotDelivered: true},
		},
		"bad request": {
			setup: func(e *env, _ string) {
				e.fake.FailNext(fake.EndpointSend, 1, fake.Fault{Code: 100, Subcode: 2018001, Message: "(#100) No matching user found"})
			},
			call: send,
			want: result{Class: instagram.ClassBadRequest, NotDelivered: true},
		},
		"transient Graph error on a 5xx is ambiguous": {
			setup: func(e *env, _ string) {
				e.fake.FailNext(fake.EndpointSend, 1, fake.Fault{HTTPStatus: 500, Code: 2, IsTransient: true, Message: "Service temporarily unavailable"})
			},
			call: send,
			want: result{Class: instagram.ClassTransient, NotDelivered: false},
		},
		"5xx without a Graph error is ambiguous": {
			setup: func(e *env, _ string) {
				e.fake.FailNext(fake.EndpointSend, 1, fake.Fault{HTTPStatus: 502, Body: "<html>bad gateway</html>", AfterProcessing: true})
			},
			call:     send,
			want:     result{Class: instagram.ClassTransient, NotDelivered: false},
			wantSent: 1,
		},
		"connection dropped after the send went out": {
			setup: func(e *env, _ string) {
				e.fake.FailNext(fake.EndpointSend, 1, fake.Fault{DropConnection: true, AfterProcessing: true})
			},
			call:     send,
			want:     result{Class: instagram.ClassTransient, NotDelivered: false},
			wantSent: 1,
		},
		"timeout": {
			setup: func(e *env, _ string) { e.fake.FailNext(fake.EndpointSend, 1, fake.Fault{Hang: true}) },
			call: func(e *env, tok string) error {
				ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
				_, err := e.api.Send(ctx, tok, instagram.OutgoingMessage{RecipientID: customer, Text: "hi"})
				if !errors.Is(err, context.DeadlineExceeded) {
					return errors.New("not a deadline error: " + err.Error())
				}
				return err
			},
			want: result{Class: instagram.ClassTransient, NotDelivered: false},
		},
		"code exchange: redirect_uri": {
			call: func(e *env, _ string) error {
				code := e.fake.IssueCode(appID, userID, redirect, fake.DefaultScopes)
				e.addSecret(code)
				_, err := e.api.ExchangeCode(ctx, appSecret, redirect+"/", code)
				return err
			},
			want: result{Class: instagram.ClassOAuthCodeInvalid, NotDelivered: true},
		},
		"code exchange: developer role": {
			setup: func(e *env, _ string) {
				e.fake.AddAccount(fake.Account{UserID: userID, Username: "shop", InsufficientDeveloperRole: true})
			},
			call: func(e *env, _ string) error {
				code := e.fake.IssueCode(appID, userID, redirect, fake.DefaultScopes)
				e.addSecret(code)
				_, err := e.api.ExchangeCode(ctx, appSecret, redirect, code)
				return err
			},
			want: result{Class: instagram.ClassOAuthCodeInvalid, NotDelivered: true},
		},
		"long-lived exchange with a wrong secret": {
			call: func(e *env, _ string) error {
				short := e.fake.IssueShortLivedToken(appID, userID)
				e.addSecret(short)
				e.addSecret("wrong-secret-value")
				_, err := e.api.ExchangeLongLived(ctx, "wrong-secret-value", short)
				return err
			},
			want: result{Class: instagram.ClassBadRequest, NotDelivered: true},
		},
		"refresh of an expired token": {
			setup: func(e *env, _ string) { e.clock.Step(60 * 24 * time.Hour) },
			call:  func(e *env, tok string) error { _, err := e.api.RefreshToken(ctx, tok); return err },
			want:  result{Class: instagram.ClassTokenInvalid, NotDelivered: true},
		},
		"garbled success answer": {
			setup: func(e *env, _ string) {
				e.fake.FailNext(fake.EndpointSend, 1, fake.Fault{HTTPStatus: 200, Body: "{", AfterProcessing: true})
			},
			call:     send,
			want:     result{Class: instagram.ClassUnknown, NotDelivered: false},
			wantSent: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			tok := e.token(t)
			if tc.setup != nil {
				tc.setup(e, tok)
			}
			ie := e.checkErr(t, tc.call(e, tok))
			got := result{Class: ie.Class, NotDelivered: ie.NotDelivered, RetryAfter: ie.RetryAfter}
			if tc.want.Class == instagram.ClassRateLimited && tc.want.RetryAfter == 0 {
				got.RetryAfter = 0
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s\nerror: %v", diff, ie)
			}
			if n := len(e.fake.Sent()); n != tc.wantSent {
				t.Errorf("sent %d messages, want %d", n, tc.wantSent)
			}
			result := strings.ToLower(string(tc.want.Class))
			if got := testutil.ToFloat64(e.clients.RequestsTotal().WithLabelValues(ie.Endpoint, result)); got != 1 {
				t.Errorf("%s{endpoint=%q,result=%q} = %v", instagram.MetricRequestsTotal, ie.Endpoint, result, got)
			}
		})
	}
}

func TestConnectionRefusedIsNotDelivered(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	api := instagram.NewClients(instagram.Config{GraphURL: base, APIURL: base, OAuthURL: base}).ForApp(appID)
	const tok = "IGAAsecret-token-value"
	ctx := context.Background()
	errs := []error{
		func() error {
			_, err := api.Send(ctx, tok, instagram.OutgoingMessage{RecipientID: customer, Text: "x"})
			return err
		}(),
		func() error { _, err := api.ExchangeLongLived(ctx, appSecret, tok); return err }(),
		func() error { _, err := api.RefreshToken(ctx, tok); return err }(),
		func() error { _, err := api.ExchangeCode(ctx, appSecret, redirect, tok); return err }(),
	}
	for _, err := range errs {
		var ie *instagram.Error
		if !errors.As(err, &ie) || ie.Class != instagram.ClassTransient || !ie.NotDelivered {
			t.Errorf("connection refused: %#v", err)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			t.Errorf("the *url.Error (and its URL) survived: %v", err)
		}
		if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), appSecret) {
			t.Errorf("secret in %q", err.Error())
		}
	}
}

func TestResponseSizeLimit(t *testing.T) {
	h := &inline{body: `{"user_id":"1","name":"` + strings.Repeat("x", 2<<20) + `"}`}
	_, err := newInline(t, h).Me(context.Background(), "tok")
	if instagram.ClassOf(err) != instagram.ClassUnknown || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized answer: %v", err)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var hits int
	var mu sync.Mutex
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	t.Cleanup(target.Close)
	h := &inline{status: http.StatusFound, header: http.Header{"Location": {target.URL + "/steal"}}}
	_, err := newInline(t, h).Me(context.Background(), "tok")
	if err == nil {
		t.Fatal("a redirect was accepted as an answer")
	}
	if hits != 0 {
		t.Error("the client followed a redirect with the token")
	}
}

func TestRateLimiterIsSharedPerApp(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(c *instagram.Config) {
		c.RatePerSecond = 0.001 // one token every ~17 minutes
		c.Burst = 2
	})
	tok := e.token(t)
	a1, a2 := e.clients.ForApp(appID), e.clients.ForApp(appID)
	ctx := context.Background()
	for i, api := range []instagram.API{a1, a2} {
		if _, err := api.Me(ctx, tok); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	deadline, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := a1.Me(deadline, tok)
	ie := e.checkErr(t, err)
	if ie.Class != instagram.ClassRateLimited || !ie.NotDelivered || ie.RetryAfter < time.Minute {
		t.Errorf("third call: %+v", ie)
	}
	// A canceled wait gives up without sending.
	canceled, cancelNow := context.WithCancel(ctx)
	go cancelNow()
	if _, err := a2.Me(canceled, tok); !instagram.NotDelivered(err) {
		t.Errorf("canceled wait: %v", err)
	}

	other := e.clients.ForApp("2000000000000002")
	if _, err := other.Me(ctx, tok); err != nil {
		t.Errorf("another app shares the bucket: %v", err)
	}
	if n := e.fake.CallCount(fake.EndpointMe); n != 3 {
		t.Errorf("fake saw %d calls, want 3", n)
	}
}

func TestNewClientsSharesCounterOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	c1 := instagram.NewClients(instagram.Config{Registerer: reg})
	c2 := instagram.NewClients(instagram.Config{Registerer: reg})
	if c1.RequestsTotal() != c2.RequestsTotal() {
		t.Error("a second NewClients on the same registry made a second counter")
	}
}

func TestReserveTakesTheTurnOnceForTheNextCall(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(c *instagram.Config) {
		c.RatePerSecond = 0.001 // one token every ~17 minutes
		c.Burst = 1
	})
	tok := e.token(t)
	ctx := context.Background()

	reserved, err := e.api.Reserve(ctx)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	// The bucket is empty now: only the reserved call goes through, and
	// it does not wait (a deadline it could not meet would refuse it).
	deadline, cancel := context.WithTimeout(context.WithoutCancel(reserved), time.Second)
	defer cancel()
	if _, err := e.api.Send(deadline, tok, instagram.OutgoingMessage{RecipientID: "5512340000000001", Text: "hi"}); err != nil {
		t.Fatalf("reserved send: %v", err)
	}
	// A reservation is used once.
	_, err = e.api.Me(deadline, tok)
	if ie := e.checkErr(t, err); ie.Class != instagram.ClassRateLimited || !ie.NotDelivered {
		t.Errorf("second call on the same reservation: %+v", ie)
	}
	// Another app's reservation does not open this app's bucket.
	other, err := e.clients.ForApp("2000000000000002").Reserve(ctx)
	if err != nil {
		t.Fatalf("Reserve other app: %v", err)
	}
	otherDeadline, cancelOther := context.WithTimeout(other, time.Second)
	defer cancelOther()
	if _, err := e.api.Me(otherDeadline, tok); !instagram.IsClass(err, instagram.ClassRateLimited) {
		t.Errorf("call with another app's reservation: %v", err)
	}
	// A Reserve that cannot be served before its deadline refuses at once.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if _, err := e.api.Reserve(short); !instagram.IsClass(err, instagram.ClassRateLimited) || !instagram.NotDelivered(err) {
		t.Errorf("Reserve past the deadline: %v", err)
	}
	if n := e.fake.CallCount(fake.EndpointSend) + e.fake.CallCount(fake.EndpointMe); n != 1 {
		t.Errorf("fake saw %d calls, want 1", n)
	}
}
