package fake

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/leadchat/instagram-operator/webhookserver"
)

const (
	appID     = "1000000000000001"
	appSecret = "app-secret-0123456789"
	userID    = "17841400000000001"
	redirect  = "https://operator.example.com/oauth/instagram/callback"
)

type env struct {
	fake  *Server
	srv   *httptest.Server
	clock *clocktesting.FakeClock
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2025, 11, 21, 12, 0, 0, 0, time.UTC))
	opts.Clock = clk
	f := New(opts)
	f.AddApp(appID, appSecret)
	f.AddAccount(Account{UserID: userID, ID: "9000000000000001", Username: "shop", Name: "The Shop", AccountType: "BUSINESS"})
	srv := httptest.NewServer(f)
	t.Cleanup(func() {
		srv.Close()
		f.Close()
	})
	return &env{fake: f, srv: srv, clock: clk}
}

// answer is a decoded response.
type answer struct {
	status int
	body   map[string]any
	header http.Header
}

func (a answer) graphCode() (code, subcode int) {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(float64)
	s, _ := e["error_subcode"].(float64)
	return int(c), int(s)
}

func (e *env) do(t *testing.T, method, path string, query url.Values, token string, body io.Reader, contentType string) answer {
	t.Helper()
	u := e.srv.URL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func (e *env) exchangeCode(t *testing.T, method, code, redirectURI, secret string) answer {
	form := url.Values{"client_id": {appID}, "client_secret": {secret}, "grant_type": {"authorization_code"},
		"redirect_uri": {redirectURI}, "code": {code}}
	if method == http.MethodGet {
		return e.do(t, method, "/oauth/access_token", form, "", nil, "")
	}
	return e.do(t, method, "/oauth/access_token", nil, "", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
}

func TestCodeExchange(t *testing.T) {
	e := newEnv(t, Options{})
	code := e.fake.IssueCode(appID, userID, redirect, DefaultScopes)

	if a := e.exchangeCode(t, http.MethodGet, code, redirect, appSecret); a.status != 400 {
		t.Errorf("GET exchange: status %d", a.status)
	} else if c, _ := a.graphCode(); c != 100 {
		t.Errorf("GET exchange: code %d, want 100", c)
	}
	for name, tc := range map[string]struct{ redirect, secret, want string }{
		"wrong redirect": {redirect + "/", appSecret, "Invalid redirect_uri"},
		"wrong secret":   {redirect, "nope", "Error validating client secret."},
	} {
		a := e.exchangeCode(t, http.MethodPost, code, tc.redirect, tc.secret)
		if a.status != 400 || a.body["error_type"] != "OAuthException" || a.body["error_message"] != tc.want {
			t.Errorf("%s: got %d %v", name, a.status, a.body)
		}
	}

	a := e.exchangeCode(t, http.MethodPost, code, redirect, appSecret)
	if a.status != 200 {
		t.Fatalf("exchange: %d %v", a.status, a.body)
	}
	token, _ := a.body["access_token"].(string)
	info, ok := e.fake.Token(token)
	if !ok || info.LongLived || info.UserID != userID || info.ExpiresAt.Sub(info.IssuedAt) != ShortLivedTTL {
		t.Errorf("issued token = %+v, %v", info, ok)
	}
	if diff := cmp.Diff([]any{ScopeBasic, ScopeManageMessages}, a.body["permissions"]); diff != "" {
		t.Errorf("permissions: %s", diff)
	}

	a = e.exchangeCode(t, http.MethodPost, code, redirect, appSecret)
	if a.body["error_message"] != "Matching code was not found or was already used" {
		t.Errorf("second use of the code: %v", a.body)
	}
	if a := e.exchangeCode(t, http.MethodPost, code+"#_", redirect, appSecret); a.status != 400 {
		t.Errorf("a code with #_ must not match: %v", a.body)
	}
}

func TestCodeExpires(t *testing.T) {
	e := newEnv(t, Options{})
	code := e.fake.IssueCode(appID, userID, redirect, DefaultScopes)
	e.clock.Step(CodeTTL)
	if a := e.exchangeCode(t, http.MethodPost, code, redirect, appSecret); a.body["error_message"] != "This authorization code has expired" {
		t.Errorf("expired code: %v", a.body)
	}
}

func TestCodeExchangeDeveloperRoleAndWrappedShape(t *testing.T) {
	e := newEnv(t, Options{WrapCodeExchange: true})
	e.fake.AddAccount(Account{UserID: "17841400000000009", Username: "tester", InsufficientDeveloperRole: true})
	code := e.fake.IssueCode(appID, "17841400000000009", redirect, DefaultScopes)
	if a := e.exchangeCode(t, http.MethodPost, code, redirect, appSecret); a.body["error_message"] != "Insufficient developer role" {
		t.Errorf("developer role: %v", a.body)
	}
	code = e.fake.IssueCode(appID, userID, redirect, DefaultScopes)
	a := e.exchangeCode(t, http.MethodPost, code, redirect, appSecret)
	data, _ := a.body["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("wrapped shape: %v", a.body)
	}
	entry := data[0].(map[string]any)
	if entry["user_id"] != userID || entry["permissions"] != ScopeBasic+","+ScopeManageMessages {
		t.Errorf("wrapped entry: %v", entry)
	}
}

func TestLongLivedExchangeAndRefresh(t *testing.T) {
	e := newEnv(t, Options{})
	short := e.fake.IssueShortLivedToken(appID, userID)
	q := func(grant, secret, token string) url.Values {
		v := url.Values{"grant_type": {grant}, "access_token": {token}}
		if secret != "" {
			v.Set("client_secret", secret)
		}
		return v
	}

	if a := e.do(t, "GET", "/access_token", q("ig_exchange_token", "wrong", short), "", nil, ""); a.status != 400 {
		t.Errorf("wrong secret accepted: %v", a.body)
	}
	a := e.do(t, "GET", "/access_token", q("ig_exchange_token", appSecret, short), "", nil, "")
	long, _ := a.body["access_token"].(string)
	if a.status != 200 || a.body["token_type"] != "bearer" || a.body["expires_in"] != float64(5184000) || long == "" {
		t.Fatalf("long-lived exchange: %d %v", a.status, a.body)
	}

	// Too young to refresh.
	e.clock.Step(MinRefreshAge - time.Minute)
	a = e.do(t, "GET", "/refresh_access_token", q("ig_refresh_token", "", long), "", nil, "")
	if c, _ := a.graphCode(); c != 190 {
		t.Errorf("refresh of a young token: %d %v", a.status, a.body)
	}
	e.clock.Step(time.Minute)
	a = e.do(t, "GET", "/refresh_access_token", q("ig_refresh_token", "", long), "", nil, "")
	refreshed, _ := a.body["access_token"].(string)
	if a.status != 200 || refreshed == "" {
		t.Fatalf("refresh at 24h: %v", a.body)
	}
	info, _ := e.fake.Token(refreshed)
	if !info.ExpiresAt.Equal(e.clock.Now().Add(LongLivedTTL)) {
		t.Errorf("refreshed expiry %v", info.ExpiresAt)
	}

	// The short-lived token expired long ago.
	a = e.do(t, "GET", "/access_token", q("ig_exchange_token", appSecret, short), "", nil, "")
	if c, s := a.graphCode(); c != 190 || s != 463 {
		t.Errorf("expired short-lived token: %v", a.body)
	}

	// Past expiry a long-lived token cannot be refreshed.
	e.clock.Step(LongLivedTTL)
	a = e.do(t, "GET", "/refresh_access_token", q("ig_refresh_token", "", refreshed), "", nil, "")
	if c, s := a.graphCode(); c != 190 || s != 463 {
		t.Errorf("refresh after expiry: %v", a.body)
	}
	if a := e.do(t, "POST", "/refresh_access_token", q("ig_refresh_token", "", refreshed), "", nil, ""); a.status != 400 {
		t.Errorf("POST refresh: %v", a.body)
	} else if c, _ := a.graphCode(); c != 100 {
		t.Errorf("POST refresh code: %v", a.body)
	}
}

func TestTokenInvalidation(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.fake.IssueLongLivedToken(appID, userID)
	other := e.fake.IssueLongLivedToken(appID, userID)
	if a := e.do(t, "GET", "/v24.0/me", url.Values{"fields": {"user_id,username"}}, tok, nil, ""); a.status != 200 || a.body["user_id"] != userID || a.body["username"] != "shop" {
		t.Fatalf("/me: %v", a.body)
	}
	e.fake.RevokeToken(tok)
	if a := e.do(t, "GET", "/v24.0/me", nil, tok, nil, ""); a.status != 400 {
		t.Errorf("revoked token accepted")
	} else if c, s := a.graphCode(); c != 190 || s != 0 {
		t.Errorf("revoked: %v", a.body)
	}
	e.fake.InvalidateAccountTokens(userID, 460)
	if c, s := e.do(t, "GET", "/v24.0/me", nil, other, nil, "").graphCode(); c != 190 || s != 460 {
		t.Errorf("invalidated: %d/%d", c, s)
	}
	if c, _ := e.do(t, "GET", "/v24.0/me", nil, "", nil, "").graphCode(); c != 2500 {
		t.Errorf("no token: %d", c)
	}
}

func TestSubscriptions(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.fake.IssueLongLivedToken(appID, userID)
	path := "/v24.0/" + userID + "/subscribed_apps"

	if a := e.do(t, "GET", path, nil, tok, nil, ""); a.status != 200 || len(a.body["data"].([]any)) != 0 {
		t.Errorf("empty inspect: %v", a.body)
	}
	if a := e.do(t, "POST", path, url.Values{"subscribed_fields": {"messages,bogus"}}, tok, nil, ""); a.status != 400 {
		t.Errorf("unknown field accepted: %v", a.body)
	}
	if a := e.do(t, "POST", "/v24.0/17841499999999999/subscribed_apps", url.Values{"subscribed_fields": {"messages"}}, tok, nil, ""); a.status != 400 {
		t.Errorf("another account's subscription accepted: %v", a.body)
	}
	a := e.do(t, "POST", path, url.Values{"subscribed_fields": {"messages,messaging_seen,message_reactions"}}, tok, nil, "")
	if a.status != 200 || a.body["success"] != true {
		t.Fatalf("subscribe: %v", a.body)
	}
	if diff := cmp.Diff([]string{"message_reactions", "messages", "messaging_seen"}, e.fake.Subscriptions(userID)); diff != "" {
		t.Errorf("Subscriptions: %s", diff)
	}
	a = e.do(t, "GET", path, nil, tok, nil, "")
	if diff := cmp.Diff([]any{"messages", "messaging_seen", "message_reactions"}, a.body["data"].([]any)[0].(map[string]any)["subscribed_fields"]); diff != "" {
		t.Errorf("inspect: %s", diff)
	}
	if a := e.do(t, "DELETE", path, nil, tok, nil, ""); a.body["success"] != true {
		t.Errorf("unsubscribe: %v", a.body)
	}
	if got := e.fake.Subscriptions(userID); len(got) != 0 {
		t.Errorf("after unsubscribe: %v", got)
	}
	e.fake.Subscribe(appID, userID, "messages")
	e.fake.RemoveSubscription(userID)
	if got := e.fake.Subscriptions(userID); len(got) != 0 {
		t.Errorf("after RemoveSubscription: %v", got)
	}
}

// receiver records signed webhook deliveries and checks their signature.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []Envelope
	status int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	mac := hmac.New(sha256.New, []byte(r.secret))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(req.Header.Get("X-Hub-Signature-256")), []byte(want)) {
		r.t.Errorf("bad signature %q", req.Header.Get("X-Hub-Signature-256"))
		w.WriteHeader(http.StatusForbidden)
		return
	}
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		r.t.Errorf("bad body: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, env)
	if r.status != 0 {
		w.WriteHeader(r.status)
	}
}

func (r *receiver) events() []Messaging {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Messaging
	for _, env := range r.got {
		for _, e := range env.Entry {
			if env.Object != "instagram" || e.ID != userID {
				r.t.Errorf("envelope %+v", env)
			}
			out = append(out, e.Messaging...)
		}
	}
	return out
}

func newReceiver(t *testing.T) (*receiver, string) {
	r := &receiver{t: t, secret: appSecret}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL + "/webhooks/instagram"
}

func sendText(t *testing.T, e *env, token, to, text string, extra map[string]any) answer {
	body := map[string]any{"recipient": map[string]string{"id": to}, "message": map[string]string{"text": text}}
	for k, v := range extra {
		body[k] = v
	}
	b, _ := json.Marshal(body)
	return e.do(t, "POST", "/v24.0/me/messages", nil, token, strings.NewReader(string(b)), "application/json")
}

func TestSendEchoAndAutoRead(t *testing.T) {
	rcv, url := newReceiver(t)
	e := newEnv(t, Options{ReceiverURL: url, DeliverEcho: true, AutoReadAfter: 2 * time.Second})
	tok := e.fake.IssueLongLivedToken(appID, userID)
	e.fake.Subscribe(appID, userID, FieldMessages, FieldMessagingSeen)

	a1 := sendText(t, e, tok, "5550001", "hello", nil)
	a2 := sendText(t, e, tok, "5550001", "again", nil)
	mid1, _ := a1.body["message_id"].(string)
	mid2, _ := a2.body["message_id"].(string)
	if a1.status != 200 || a1.body["recipient_id"] != "5550001" || mid1 == "" || mid1 == mid2 {
		t.Fatalf("sends: %v %v", a1.body, a2.body)
	}
	sent := e.fake.Sent()
	if len(sent) != 2 || sent[0].Text != "hello" || sent[0].MID != mid1 || sent[0].AccountUserID != userID {
		t.Errorf("Sent() = %+v", sent)
	}

	e.fake.Flush()
	echoes := rcv.events()
	if len(echoes) != 2 {
		t.Fatalf("echoes: %+v", echoes)
	}
	for _, ev := range echoes {
		if ev.Message == nil || !ev.Message.IsEcho || ev.Sender.ID != userID || ev.Recipient.ID != "5550001" {
			t.Errorf("echo %+v", ev)
		}
	}

	e.clock.Step(2 * time.Second)
	e.fake.Flush()
	var reads []string
	for _, ev := range rcv.events() {
		if ev.Read != nil {
			reads = append(reads, ev.Read.MID)
			if ev.Sender.ID != "5550001" || ev.Recipient.ID != userID {
				t.Errorf("read receipt parties %+v", ev)
			}
		}
	}
	if len(reads) != 2 {
		t.Errorf("read receipts: %v", reads)
	}
	for _, d := range e.fake.Deliveries() {
		if d.Status != 200 || d.Signature != SignatureHeader(appSecret, d.Body) {
			t.Errorf("delivery %+v", d)
		}
	}
}

func TestSendRules(t *testing.T) {
	e := newEnv(t, Options{EnforceMessagingWindow: true})
	tok := e.fake.IssueLongLivedToken(appID, userID)
	e.fake.AddCustomer(Customer{IGSID: "gone", Unavailable: true})

	if c, s := sendText(t, e, tok, "5550001", "hi", nil).graphCode(); c != 10 || s != 2534022 {
		t.Errorf("outside window: %d/%d", c, s)
	}
	if _, err := e.fake.DeliverMessage(context.Background(), CustomerMessage{AccountUserID: userID, CustomerID: "5550001", Text: "hey"}); !errors.Is(err, ErrNotSubscribed) {
		t.Errorf("DeliverMessage without subscription: %v", err)
	}
	if a := sendText(t, e, tok, "5550001", "hi", nil); a.status != 200 {
		t.Errorf("inside window: %v", a.body)
	}
	e.clock.Step(MessagingWindow + time.Minute)
	if c, _ := sendText(t, e, tok, "5550001", "late", nil).graphCode(); c != 10 {
		t.Errorf("after 24h: %d", c)
	}
	if a := sendText(t, e, tok, "5550001", "agent", map[string]any{"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}); a.status != 200 {
		t.Errorf("HUMAN_AGENT within 7 days: %v", a.body)
	}
	if c, _ := sendText(t, e, tok, "gone", "x", nil).graphCode(); c != 551 {
		t.Errorf("unavailable: %d", c)
	}
	if c, _ := sendText(t, e, tok, "5550001", strings.Repeat("x", MaxTextLength+1), map[string]any{"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}).graphCode(); c != 100 {
		t.Errorf("long text: %d", c)
	}
	if c, _ := sendText(t, e, tok, "", "x", nil).graphCode(); c != 100 {
		t.Errorf("no recipient: %d", c)
	}
	basicOnly := func() string {
		e.fake.mu.Lock()
		defer e.fake.mu.Unlock()
		return e.fake.issueTokenLocked(appID, userID, true, []string{ScopeBasic})
	}()
	if c, _ := sendText(t, e, basicOnly, "5550001", "x", nil).graphCode(); c != 10 {
		t.Errorf("missing scope: %d", c)
	}
}

func TestProfile(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.fake.IssueLongLivedToken(appID, userID)
	e.fake.AddCustomer(Customer{IGSID: "5550001", Name: "Ann", Username: "ann", FollowerCount: 42, IsUserFollowBusiness: true})
	e.fake.AddCustomer(Customer{IGSID: "5550002", NoConsent: true})
	a := e.do(t, "GET", "/v24.0/5550001", url.Values{"fields": {"name,username,follower_count,is_user_follow_business"}}, tok, nil, "")
	if a.status != 200 || a.body["name"] != "Ann" || a.body["follower_count"] != float64(42) || a.body["is_user_follow_business"] != true {
		t.Errorf("profile: %v", a.body)
	}
	if c, _ := e.do(t, "GET", "/v24.0/5550002", nil, tok, nil, "").graphCode(); c != 230 {
		t.Errorf("no consent: %d", c)
	}
	if c, s := e.do(t, "GET", "/v24.0/5550003", nil, tok, nil, "").graphCode(); c != 100 || s != 33 {
		t.Errorf("unknown: %d/%d", c, s)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.fake.IssueLongLivedToken(appID, userID)
	e.fake.FailNext(EndpointMe, 2, Fault{Code: 4, Message: "(#4) Application request limit reached", RetryAfter: "30",
		BusinessUseCaseUsage: `{"x":[{"call_count":100}]}`})
	e.fake.FailNext(EndpointMe, 1, Fault{HTTPStatus: 503})
	for i := range 2 {
		a := e.do(t, "GET", "/v24.0/me", nil, tok, nil, "")
		if c, _ := a.graphCode(); c != 4 || a.header.Get("Retry-After") != "30" || a.header.Get("X-Business-Use-Case-Usage") == "" {
			t.Errorf("fault %d: %v %v", i, a.body, a.header)
		}
	}
	if a := e.do(t, "GET", "/v24.0/me", nil, tok, nil, ""); a.status != 503 {
		t.Errorf("queued fault: %d", a.status)
	}
	if a := e.do(t, "GET", "/v24.0/me", nil, tok, nil, ""); a.status != 200 {
		t.Errorf("faults used up: %d", a.status)
	}

	// Dropped connection: no answer, no effect.
	e.fake.FailNext(EndpointSend, 1, Fault{DropConnection: true})
	req, _ := http.NewRequest("POST", e.srv.URL+"/v24.0/me/messages", strings.NewReader(`{"recipient":{"id":"1"},"message":{"text":"x"}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	if _, err := e.srv.Client().Do(req); err == nil {
		t.Error("dropped connection answered")
	}
	if len(e.fake.Sent()) != 0 {
		t.Error("a dropped send without AfterProcessing took effect")
	}

	// Dropped after processing: the message went out, the answer is lost.
	e.fake.FailNext(EndpointSend, 1, Fault{DropConnection: true, AfterProcessing: true})
	req, _ = http.NewRequest("POST", e.srv.URL+"/v24.0/me/messages", strings.NewReader(`{"recipient":{"id":"1"},"message":{"text":"x"}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	if _, err := e.srv.Client().Do(req); err == nil {
		t.Error("dropped connection answered")
	}
	if len(e.fake.Sent()) != 1 {
		t.Error("the processed send was not recorded")
	}

	// Held after processing: the message is out, the answer waits.
	release := make(chan struct{})
	e.fake.FailNext(EndpointSend, 1, Fault{AfterProcessing: true, Hold: release})
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v24.0/me/messages", strings.NewReader(`{"recipient":{"id":"1"},"message":{"text":"held"}}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			answered <- 0
			return
		}
		_ = resp.Body.Close()
		answered <- resp.StatusCode
	}()
	for len(e.fake.Sent()) != 2 {
		time.Sleep(time.Millisecond)
	}
	select {
	case code := <-answered:
		t.Fatalf("held send answered before release: %d", code)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if code := <-answered; code != 200 {
		t.Errorf("released send answered %d", code)
	}

	// Hang until the client gives up.
	e.fake.FailNext(EndpointProfile, 1, Fault{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v24.0/5550001", nil)
	if _, err := e.srv.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v", err)
	}

	if got := e.fake.CallCount(EndpointMe); got != 4 {
		t.Errorf("CallCount(me) = %d", got)
	}
	for _, c := range e.fake.Calls() {
		if strings.Contains(c.Path, tok) || strings.Contains(c.Path, "?") {
			t.Errorf("call log holds a query or token: %+v", c)
		}
		if c.Endpoint == EndpointMe && c.AccountUserID != userID {
			t.Errorf("call without account: %+v", c)
		}
	}
}

func TestAuthorizePage(t *testing.T) {
	e := newEnv(t, Options{})
	e.fake.SetRedirectURIs(appID, redirect)
	q := url.Values{"client_id": {appID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"instagram_business_basic,instagram_business_manage_messages"}, "state": {"st4te"}}

	client := e.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(u string) (*http.Response, string) {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	bad := url.Values{}
	for k, v := range q {
		bad[k] = v
	}
	bad.Set("redirect_uri", redirect+"/")
	if resp, _ := get(e.srv.URL + "/oauth/authorize?" + bad.Encode()); resp.StatusCode != 400 {
		t.Errorf("unregistered redirect_uri: %d", resp.StatusCode)
	}

	resp, page := get(e.srv.URL + "/oauth/authorize?" + q.Encode())
	if resp.StatusCode != 200 {
		t.Fatalf("page: %d %s", resp.StatusCode, page)
	}
	links := regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(links) != 2 {
		t.Fatalf("links: %v", links)
	}
	unescape := func(s string) string { return strings.ReplaceAll(s, "&amp;", "&") }

	resp, _ = get(e.srv.URL + unescape(links[0][1]))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc.Query().Get("state") != "st4te" || loc.Fragment != "_" || !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("approve redirect: %d %s", resp.StatusCode, loc)
	}
	if a := e.exchangeCode(t, http.MethodPost, loc.Query().Get("code"), redirect, appSecret); a.status != 200 {
		t.Errorf("code from the page: %v", a.body)
	}

	resp, _ = get(e.srv.URL + unescape(links[1][1]))
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("error_reason") != "user_denied" || loc.Query().Get("state") != "st4te" {
		t.Errorf("deny redirect: %s", loc)
	}

	back, err := e.fake.AuthorizeRedirect(e.srv.URL+"/oauth/authorize?"+q.Encode(), userID)
	if err != nil || !strings.HasSuffix(back, "#_") {
		t.Errorf("AuthorizeRedirect = %q, %v", back, err)
	}
}

func TestCustomerEvents(t *testing.T) {
	rcv, url := newReceiver(t)
	e := newEnv(t, Options{ReceiverURL: url})
	tok := e.fake.IssueLongLivedToken(appID, userID)
	e.fake.Subscribe(appID, userID, FieldMessages, FieldMessagingSeen, FieldMessageReactions)
	ctx := context.Background()

	mid, err := e.fake.DeliverMessage(ctx, CustomerMessage{AccountUserID: userID, CustomerID: "5550001", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	sent := sendText(t, e, tok, "5550001", "reply", nil).body["message_id"].(string)
	if err := e.fake.DeliverReaction(ctx, Reaction{MID: sent, Reaction: "love", Emoji: "❤"}); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.DeliverRead(ctx, sent); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.DeliverRead(ctx, mid); !errors.Is(err, ErrUnknownMessage) {
		t.Errorf("read of an inbound message: %v", err)
	}
	if err := e.fake.DeliverUnsend(ctx, mid); err != nil {
		t.Fatal(err)
	}
	evs := rcv.events()
	if len(evs) != 4 || evs[0].Message.Text != "hi" || evs[1].Reaction.Action != "react" || evs[2].Read.MID != sent || !evs[3].Message.IsDeleted {
		t.Errorf("events: %+v", evs)
	}

	rcv.status = http.StatusInternalServerError
	if _, err := e.fake.Deliver(ctx, appID, []byte(`{"object":"instagram","entry":[]}`)); err == nil {
		t.Error("a 500 from the receiver is not an error")
	}
}

// The fake delivers every documented event kind under the field Meta uses,
// in shapes the receiver's parser classifies as that kind.
func TestDeliverEveryEventKind(t *testing.T) {
	_, url := newReceiver(t)
	e := newEnv(t, Options{ReceiverURL: url})
	e.fake.Subscribe(appID, userID, FieldMessages, FieldMessagingPostbacks, FieldMessagingReferral, FieldMessageEdit,
		FieldMessagingOptins, FieldMessagingHandover, FieldComments, FieldLiveComments, FieldMentions)
	ctx := context.Background()
	items := []struct {
		item    map[string]any
		standby bool
		want    webhookserver.EventType
	}{
		{map[string]any{"message": map[string]any{"mid": "m1", "text": "hi"}}, false, webhookserver.EventMessage},
		{map[string]any{"message": map[string]any{"mid": "m2", "text": "from the app", "is_echo": true}}, false, webhookserver.EventEcho},
		{map[string]any{"message": map[string]any{"mid": "m3", "text": "other app"}}, true, webhookserver.EventMessage},
		{map[string]any{"postback": map[string]any{"mid": "m4", "title": "Start", "payload": "START"}}, false, webhookserver.EventPostback},
		{map[string]any{"referral": map[string]any{"ref": "x", "source": "SHORTLINK", "type": "OPEN_THREAD"}}, false, webhookserver.EventReferral},
		{map[string]any{"message_edit": map[string]any{"mid": "m1", "text": "hello", "num_edit": 1}}, false, webhookserver.EventEdit},
		{map[string]any{"optin": map[string]any{"type": "notification_messages", "payload": "P"}}, false, webhookserver.EventOptin},
		{map[string]any{"pass_thread_control": map[string]any{"new_owner_app_id": "1"}}, false, webhookserver.EventHandover},
	}
	for _, tc := range items {
		if err := e.fake.DeliverItem(ctx, userID, "5550001", tc.item, tc.standby); err != nil {
			t.Fatalf("DeliverItem %v: %v", tc.item, err)
		}
	}
	for _, f := range []string{FieldComments, FieldLiveComments, FieldMentions} {
		if err := e.fake.DeliverChange(ctx, userID, f, map[string]any{"id": "1786", "text": "nice", "media": map[string]any{"id": "1788"}}); err != nil {
			t.Fatalf("DeliverChange %s: %v", f, err)
		}
	}
	if err := e.fake.DeliverItem(ctx, userID, "5550001", map[string]any{"bogus": 1}, false); err == nil {
		t.Error("an undocumented item was delivered")
	}
	if err := e.fake.DeliverChange(ctx, userID, "messages", nil); err == nil {
		t.Error("a messages change was delivered")
	}
	ds := e.fake.Deliveries()
	if len(ds) != len(items)+3 {
		t.Fatalf("%d deliveries", len(ds))
	}
	for i, tc := range items {
		d, err := webhookserver.ParseDelivery(ds[i].Body)
		if err != nil {
			t.Fatal(err)
		}
		its := d.Entry[0].Items()
		if len(its) != 1 || its[0].Kind() != tc.want || its[0].Standby != tc.standby || len(its[0].Unknown) != 0 {
			t.Errorf("delivery %d: %+v, want kind %s standby %v", i, its, tc.want, tc.standby)
		}
		if want := map[bool]string{false: "5550001", true: userID}[tc.want == webhookserver.EventEcho]; string(its[0].Sender.ID) != want {
			t.Errorf("delivery %d: sender %s, want %s", i, its[0].Sender.ID, want)
		}
	}
	for i, f := range []string{FieldComments, FieldLiveComments, FieldMentions} {
		d, err := webhookserver.ParseDelivery(ds[len(items)+i].Body)
		if err != nil {
			t.Fatal(err)
		}
		if c := d.Entry[0].Changes; len(c) != 1 || c[0].Field != f || d.Entry[0].IsTest(&c[0]) {
			t.Errorf("change %s: %+v", f, d.Entry[0])
		}
	}
}
