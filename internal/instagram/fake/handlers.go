package fake

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxRequestBytes bounds the bodies the fake reads.
const maxRequestBytes = 1 << 20

var versionPattern = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// ServeHTTP serves the paths of www.instagram.com, api.instagram.com and
// graph.instagram.com.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// reqCtx carries what a handler learnt about a request to the call log.
type reqCtx struct {
	accountUserID string
}

type handler func(w http.ResponseWriter, r *http.Request, rc *reqCtx)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	fixed := func(name string) func(*http.Request) string {
		return func(*http.Request) string { return name }
	}
	// www.instagram.com
	mux.Handle("/oauth/authorize", s.endpoint(fixed(EndpointAuthorize), s.handleAuthorize))
	mux.Handle("/oauth/authorize/approve", s.endpoint(fixed(EndpointAuthorize), s.handleApprove))
	mux.Handle("/oauth/authorize/deny", s.endpoint(fixed(EndpointAuthorize), s.handleDeny))
	// api.instagram.com
	mux.Handle("/oauth/access_token", s.endpoint(fixed(EndpointExchangeCode), s.handleExchangeCode))
	// graph.instagram.com, unversioned token endpoints
	mux.Handle("/access_token", s.endpoint(fixed(EndpointExchangeToken), s.handleExchangeToken))
	mux.Handle("/refresh_access_token", s.endpoint(fixed(EndpointRefreshToken), s.handleRefresh))
	// graph.instagram.com, versioned
	mux.Handle("/{version}/me", s.endpoint(fixed(EndpointMe), versioned(s.handleMe)))
	mux.Handle("/{version}/me/messages", s.endpoint(fixed(EndpointSend), versioned(s.handleSend)))
	mux.Handle("/{version}/{id}/messages", s.endpoint(fixed(EndpointSend), versioned(s.handleSend)))
	mux.Handle("/{version}/{id}/subscribed_apps", s.endpoint(subscribedAppsEndpoint, versioned(s.handleSubscribedApps)))
	mux.Handle("/{version}/me/conversations", s.endpoint(fixed(EndpointConversations), versioned(s.handleConversations)))
	mux.Handle("/{version}/{id}/replies", s.endpoint(fixed(EndpointReplyComment), versioned(s.handleReplies)))
	mux.Handle("/{version}/me/messenger_profile", s.endpoint(profileEndpoint, versioned(s.handleMessengerProfile)))
	mux.Handle("/{version}/{id}/messenger_profile", s.endpoint(profileEndpoint, versioned(s.handleMessengerProfile)))
	mux.Handle("/{version}/{id}", s.endpoint(s.objectEndpoint, versioned(s.handleObject)))
	mux.Handle("/", s.endpoint(fixed(EndpointUnknown), handleUnknown))
	return mux
}

func subscribedAppsEndpoint(r *http.Request) string {
	switch r.Method {
	case http.MethodPost:
		return EndpointSubscribe
	case http.MethodDelete:
		return EndpointUnsubscribe
	}
	return EndpointSubscriptions
}

// versioned refuses paths whose first segment is not a Graph version.
func versioned(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		if !versionPattern.MatchString(r.PathValue("version")) {
			handleUnknown(w, r, rc)
			return
		}
		h(w, r, rc)
	}
}

func handleUnknown(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	writeGraphError(w, &graphError{Code: codeActiveTokenNeeded, Message: "Unknown path components: " + r.URL.Path})
}

// endpoint wraps a handler with the call log and fault injection.
func (s *Server) endpoint(name func(*http.Request) string, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ep := name(r)
		rc := &reqCtx{accountUserID: s.accountOfRequest(r)}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.calls = append(s.calls, Call{
				Endpoint: ep, Method: r.Method, Path: r.URL.Path,
				AccountUserID: rc.accountUserID, Status: sw.status, At: s.clock.Now(),
			})
		}()
		r.Body = http.MaxBytesReader(sw, r.Body, maxRequestBytes)
		if f := s.takeFault(ep); f != nil {
			s.serveFault(sw, r, f, func(w http.ResponseWriter, r *http.Request) { h(w, r, rc) })
			return
		}
		h(sw, r, rc)
	})
}

// accountOfRequest names the account of the request's token for the call
// log, valid or not.
func (s *Server) accountOfRequest(r *http.Request) string {
	token := requestToken(r)
	if token == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[token]; ok {
		return t.UserID
	}
	return ""
}

// requestToken reads the token from the Authorization header or, as Meta
// also accepts, the access_token query parameter.
func requestToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if ok && (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth")) {
			return strings.TrimSpace(token)
		}
		return ""
	}
	return r.URL.Query().Get("access_token")
}

// statusWriter remembers the status written and lets faults hijack the
// connection.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("fake: the response writer cannot be hijacked")
	}
	return hj.Hijack()
}

// handleExchangeCode is POST api.instagram.com/oauth/access_token.
func (s *Server) handleExchangeCode(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if r.Method != http.MethodPost {
		writeGraphError(w, errUnsupportedMethod(r.Method))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, "Invalid request body")
		return
	}
	get := r.PostForm.Get
	for _, k := range []string{"client_id", "client_secret", "grant_type", "redirect_uri", "code"} {
		if get(k) == "" {
			writeOAuthError(w, "Missing required parameter: "+k)
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[get("client_id")]
	switch {
	case !ok:
		writeOAuthError(w, "Invalid platform app")
		return
	case get("client_secret") != a.secret:
		writeOAuthError(w, "Error validating client secret.")
		return
	case get("grant_type") != "authorization_code":
		writeOAuthError(w, "Unsupported grant_type")
		return
	}
	c, ok := s.codes[get("code")]
	if !ok || c.used || c.appID != a.id {
		writeOAuthError(w, "Matching code was not found or was already used")
		return
	}
	rc.accountUserID = c.userID
	switch acc := s.accounts[c.userID]; {
	case !s.clock.Now().Before(c.expiresAt):
		writeOAuthError(w, "This authorization code has expired")
		return
	case c.redirectURI != get("redirect_uri"):
		writeOAuthError(w, "Invalid redirect_uri")
		return
	case acc != nil && acc.InsufficientDeveloperRole:
		writeOAuthError(w, "Insufficient developer role")
		return
	}
	c.used = true
	token := s.issueTokenLocked(a.id, c.userID, false, c.scopes)

	if s.opts.WrapCodeExchange {
		writeJSON(w, http.StatusOK, map[string]any{"data": []map[string]any{{
			"access_token": token, "user_id": c.userID, "permissions": strings.Join(c.scopes, ","),
		}}})
		return
	}
	var userID any = c.userID
	if isNumeric(c.userID) {
		userID = json.Number(c.userID)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token, "user_id": userID, "permissions": c.scopes,
	})
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// longLivedAnswer is the answer of the long-lived exchange and of refresh.
func longLivedAnswer(token string) map[string]any {
	return map[string]any{
		"access_token": token,
		"token_type":   "bearer",
		"expires_in":   int64(LongLivedTTL / time.Second),
	}
}

// handleExchangeToken is GET graph.instagram.com/access_token.
func (s *Server) handleExchangeToken(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if r.Method != http.MethodGet {
		writeGraphError(w, errUnsupportedMethod(r.Method))
		return
	}
	q := r.URL.Query()
	switch {
	case q.Get("grant_type") != "ig_exchange_token":
		writeGraphError(w, errParam("Unsupported grant_type"))
		return
	case q.Get("client_secret") == "":
		writeGraphError(w, errParam("The parameter client_secret is required"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, gerr := s.validTokenLocked(q.Get("access_token"))
	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	rc.accountUserID = t.UserID
	if a, ok := s.apps[t.AppID]; !ok || a.secret != q.Get("client_secret") {
		writeGraphError(w, &graphError{Code: codeClientSecret, Message: "Error validating client secret."})
		return
	}
	if t.LongLived {
		// Meta's documentation only allows short-lived tokens here.
		writeGraphError(w, errParam("Only a short-lived token can be exchanged for a long-lived one"))
		return
	}
	writeJSON(w, http.StatusOK, longLivedAnswer(s.issueTokenLocked(t.AppID, t.UserID, true, t.Scopes)))
}

// handleRefresh is GET graph.instagram.com/refresh_access_token.
func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if r.Method != http.MethodGet {
		writeGraphError(w, errUnsupportedMethod(r.Method))
		return
	}
	q := r.URL.Query()
	if q.Get("grant_type") != "ig_refresh_token" {
		writeGraphError(w, errParam("Unsupported grant_type"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, gerr := s.validTokenLocked(q.Get("access_token"))
	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	rc.accountUserID = t.UserID
	if !t.LongLived {
		writeGraphError(w, errParam("Only a long-lived token can be refreshed"))
		return
	}
	if age := s.clock.Now().Sub(t.IssuedAt); age < MinRefreshAge {
		writeGraphError(w, &graphError{Code: codeAccessToken,
			Message: "Error validating access token: a long-lived token can be refreshed only once it is at least 24 hours old"})
		return
	}
	writeJSON(w, http.StatusOK, longLivedAnswer(s.issueTokenLocked(t.AppID, t.UserID, true, t.Scopes)))
}

// graphToken authenticates a versioned Graph call. missing is the error for
// a call without a token. It must be called with s.mu held.
func (s *Server) graphTokenLocked(r *http.Request, rc *reqCtx, missing *graphError) (*TokenInfo, *graphError) {
	token := requestToken(r)
	if token == "" {
		return nil, missing
	}
	t, gerr := s.validTokenLocked(token)
	if gerr != nil {
		return nil, gerr
	}
	rc.accountUserID = t.UserID
	return t, nil
}

var (
	errNoActiveToken = &graphError{Code: codeActiveTokenNeeded,
		Message: "An active access token must be used to query information about the current user."}
	errTokenRequired = &graphError{Code: codeTokenMissing, Message: "An access token is required to request this resource."}
)

// requestedFields filters v down to the fields asked for (always with id).
func requestedFields(r *http.Request, all map[string]any) map[string]any {
	out := map[string]any{"id": all["id"]}
	for _, f := range strings.Split(r.URL.Query().Get("fields"), ",") {
		if v, ok := all[strings.TrimSpace(f)]; ok {
			out[strings.TrimSpace(f)] = v
		}
	}
	return out
}

// handleMe is GET /vNN.0/me.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if r.Method != http.MethodGet {
		writeGraphError(w, errUnsupportedMethod(r.Method))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, gerr := s.graphTokenLocked(r, rc, errNoActiveToken)
	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	acc, ok := s.accounts[t.UserID]
	if !ok {
		writeGraphError(w, errObjectNotFound(r.Method, "me"))
		return
	}
	id := acc.ID
	if id == "" {
		id = acc.UserID
	}
	writeJSON(w, http.StatusOK, requestedFields(r, map[string]any{
		"id": id, "user_id": acc.UserID, "username": acc.Username, "name": acc.Name,
		"account_type": acc.AccountType, "profile_picture_url": acc.ProfilePictureURL,
	}))
}

// ownAccount reports whether the path ID names the token's account (by
// user_id or app-scoped id).
func (s *Server) ownAccountLocked(t *TokenInfo, id string) bool {
	if id == "me" || id == t.UserID {
		return true
	}
	acc, ok := s.accounts[t.UserID]
	return ok && acc.ID != "" && acc.ID == id
}

// handleSubscribedApps is POST/GET/DELETE /vNN.0/<user_id>/subscribed_apps.
func (s *Server) handleSubscribedApps(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
	default:
		writeGraphError(w, errUnsupportedMethod(r.Method))
		return
	}
	fieldsParam := r.URL.Query().Get("subscribed_fields")
	if r.Method == http.MethodPost && fieldsParam == "" {
		if err := r.ParseForm(); err == nil {
			fieldsParam = r.PostForm.Get("subscribed_fields")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, gerr := s.graphTokenLocked(r, rc, errTokenRequired)
	if gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	id := r.PathValue("id")
	if !s.ownAccountLocked(t, id) {
		writeGraphError(w, errObjectNotFound(r.Method, id))
		return
	}
	key := subKey{t.AppID, t.UserID}
	switch r.Method {
	case http.MethodPost:
		if !slices.Contains(t.Scopes, ScopeManageMessages) {
			writeGraphError(w, errPermission())
			return
		}
		var fields []string
		for _, f := range strings.Split(fieldsParam, ",") {
			if f = strings.TrimSpace(f); f != "" {
				fields = append(fields, f)
			}
		}
		if len(fields) == 0 {
			writeGraphError(w, errParam("The parameter subscribed_fields is required."))
			return
		}
		for i, f := range fields {
			if !slices.Contains(knownFields, f) {
				writeGraphError(w, errParam(fmt.Sprintf("Param subscribed_fields[%d] must be one of {%s} - got %q",
					i, strings.Join(knownFields, ", "), f)))
				return
			}
		}
		s.subs[key] = fields
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	case http.MethodGet:
		data := []map[string]any{}
		if fields, ok := s.subs[key]; ok {
			data = append(data, map[string]any{"id": t.AppID, "subscribed_fields": fields})
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": data})
	case http.MethodDelete:
		delete(s.subs, key)
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	}
}

// handleProfile is GET /vNN.0/<igsid>.
func (s *Server) handleProfile(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	if r.Method != http.MethodGet {
		writeGraphError(w, errUnsupportedMethod(r.Method))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, gerr := s.graphTokenLocked(r, rc, errTokenRequired); gerr != nil {
		writeGraphError(w, gerr)
		return
	}
	id := r.PathValue("id")
	c, ok := s.customers[id]
	if !ok {
		writeGraphError(w, errObjectNotFound(r.Method, id))
		return
	}
	if c.Blocked || c.Deleted {
		writeGraphError(w, errObjectNotFound(r.Method, id))
		return
	}
	if c.NoConsent {
		writeGraphError(w, &graphError{Code: codeConsentRequired, Message: "(#230) User consent is required to access user profile"})
		return
	}
	writeJSON(w, http.StatusOK, requestedFields(r, map[string]any{
		"id": c.IGSID, "name": nullable(c.Name), "username": c.Username, "profile_pic": nullable(s.pictureURL(c.ProfilePic)),
		"follower_count": c.FollowerCount, "is_user_follow_business": c.IsUserFollowBusiness,
		"is_business_follow_user": c.IsBusinessFollowUser, "is_verified_user": c.IsVerifiedUser,
	}))
}

// nullable is s, or JSON null for "" as Meta sends a name or picture a
// person has none of.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// pictureURL is a picture URL as the CDN hands it out: with its expiry in
// the oe parameter when Options.ProfilePicTTL is set.
func (s *Server) pictureURL(u string) string {
	if u == "" || s.opts.ProfilePicTTL <= 0 {
		return u
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "oe=" + strconv.FormatInt(s.clock.Now().Add(s.opts.ProfilePicTTL).Unix(), 16)
}
