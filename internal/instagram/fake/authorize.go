package fake

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// The authorize page (www.instagram.com/oauth/authorize) shows one "Log in
// as" link per account and a deny link. Following a link redirects to the
// redirect URI as Instagram does: ?code=...&state=...#_ on approval,
// ?error=access_denied&error_reason=user_denied&... on denial.

var authorizePage = template.Must(template.New("authorize").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Log in with Instagram (fake)</title></head>
<body>
<h1>Allow app {{.AppID}} to access your Instagram professional account?</h1>
<p>Scopes: {{.Scope}}</p>
<ul>
{{range .Accounts}}<li><a class="approve" href="{{.Href}}">Log in as @{{.Username}} ({{.UserID}})</a></li>
{{end}}</ul>
<p><a class="deny" href="{{.DenyHref}}">Cancel</a></p>
</body></html>
`))

type authorizeLink struct {
	Href, Username, UserID string
}

// authorizeRequest is the validated query of the authorize page.
type authorizeRequest struct {
	appID, redirectURI, state string
	scopes                    []string
}

func parseScopes(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// checkAuthorize applies Instagram's checks of the authorize query.
func (s *Server) checkAuthorize(q url.Values) (authorizeRequest, error) {
	req := authorizeRequest{
		appID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"),
		state: q.Get("state"), scopes: parseScopes(q.Get("scope")),
	}
	s.mu.Lock()
	a, ok := s.apps[req.appID]
	var registered []string
	if ok {
		registered = a.redirectURIs
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return req, errors.New("invalid platform app")
	case q.Get("response_type") != "code":
		return req, errors.New("invalid response_type: only code is supported")
	case req.redirectURI == "":
		return req, errors.New("invalid redirect_uri")
	case len(registered) > 0 && !slices.Contains(registered, req.redirectURI):
		return req, errors.New("invalid redirect_uri")
	case len(req.scopes) == 0:
		return req, errors.New("invalid scope: at least one scope is required")
	}
	return req, nil
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	req, err := s.checkAuthorize(q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	var links []authorizeLink
	for _, acc := range s.accounts {
		aq := cloneValues(q)
		aq.Set("user_id", acc.UserID)
		links = append(links, authorizeLink{Href: "/oauth/authorize/approve?" + aq.Encode(), Username: acc.Username, UserID: acc.UserID})
	}
	s.mu.Unlock()
	sort.Slice(links, func(i, j int) bool { return links[i].UserID < links[j].UserID })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = authorizePage.Execute(w, map[string]any{
		"AppID": req.appID, "Scope": strings.Join(req.scopes, ", "), "Accounts": links,
		"DenyHref": "/oauth/authorize/deny?" + q.Encode(),
	})
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// approveRedirect issues a code for userID and returns the redirect.
func (s *Server) approveRedirect(q url.Values, userID string) (string, error) {
	req, err := s.checkAuthorize(q)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[userID]; !ok {
		return "", fmt.Errorf("unknown account %q", userID)
	}
	code := s.issueCodeLocked(req.appID, userID, req.redirectURI, req.scopes)
	return redirectWith(req.redirectURI, url.Values{"code": {code}, "state": {req.state}}, "_")
}

func redirectWith(redirectURI string, params url.Values, fragment string) (string, error) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return "", errors.New("invalid redirect_uri")
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	u.Fragment = fragment
	return u.String(), nil
}

func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	q := r.URL.Query()
	rc.accountUserID = q.Get("user_id")
	q.Del("user_id")
	loc, err := s.approveRedirect(q, rc.accountUserID)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, loc, http.StatusFound)
}

func (s *Server) handleDeny(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	req, err := s.checkAuthorize(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	loc, err := redirectWith(req.redirectURI, url.Values{
		"error":             {"access_denied"},
		"error_reason":      {"user_denied"},
		"error_description": {"Permissions error"},
		"state":             {req.state},
	}, "")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, loc, http.StatusFound)
}

// AuthorizeRedirect plays the person who opens authorizeURL (as built by
// the operator) and logs in as userID: it applies the authorize page's
// checks, issues a code and returns the URL Instagram would redirect the
// browser to (redirect_uri?code=...&state=...#_).
func (s *Server) AuthorizeRedirect(authorizeURL, userID string) (string, error) {
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return "", fmt.Errorf("fake: parse authorize URL: %w", err)
	}
	if u.Path != "/oauth/authorize" {
		return "", fmt.Errorf("fake: %q is not the authorize path", u.Path)
	}
	loc, err := s.approveRedirect(u.Query(), userID)
	if err != nil {
		return "", fmt.Errorf("fake: authorize: %w", err)
	}
	return loc, nil
}
