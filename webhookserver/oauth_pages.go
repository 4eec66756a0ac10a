package webhookserver

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

// The pages a person sees after Business Login. One template, inline CSS,
// no scripts, no external assets: the page works behind any proxy and
// leaks nothing through referrers. Pages never carry a token, a code, a
// state, an app secret or an error's internals; Instagram's own message is
// shown where it helps, escaped.

//go:embed pages/page.html
var pagesFS embed.FS

var pageTemplate = template.Must(template.ParseFS(pagesFS, "pages/page.html"))

// Outcomes of a callback: the outcome label of
// instagram_login_callbacks_total, the "reference" on the page and the
// outcome field of the receiver's log line.
const (
	outcomeConnected          = "connected"
	outcomeChecking           = "connected_unconfirmed"
	outcomeDuplicate          = "duplicate_account"
	outcomePermissionsMissing = "permissions_missing"
	outcomeSetupFailed        = "setup_failed"
	outcomeDenied             = "denied"
	outcomeMalformed          = "malformed"
	outcomeForged             = "forged"
	outcomeStateExpired       = "state_expired"
	outcomeStateUsed          = "state_used"
	outcomePending            = "login_pending"
	outcomeRateLimited        = "rate_limited"
	outcomeUnavailable        = "unavailable"
	outcomeNotConfigured      = "not_configured"
	outcomeCodeInvalid        = "code_invalid"
	outcomeRedirectMismatch   = "redirect_uri_mismatch"
	outcomeDeveloperRole      = "insufficient_developer_role"
	outcomePermission         = "permission_denied"
	outcomeAppSecret          = "app_secret_refused"
	outcomeInstagramError     = "instagram_error"
)

// page is one answer of the callback. The person who opens a login link
// is usually the account's owner, not the cluster's admin: Title, Lead and
// Owner speak to them; Facts, Steps and Command are for the admin and are
// folded away under "Details for the administrator".
type page struct {
	status  int
	outcome string

	Kind  string // ok, pending, denied or error: the accent colour
	Badge string
	Title string
	Lead  string
	// Owner are short steps for the account owner, if any.
	Owner []string

	// Next heads the admin steps; "What to do" when empty.
	Next    string
	Facts   []fact
	Steps   []string
	Command string
}

type fact struct {
	Label, Value string
	Code         bool
}

func renderPage(w http.ResponseWriter, p page) {
	var buf bytes.Buffer
	err := pageTemplate.Execute(&buf, struct {
		page
		Status  string
		Outcome string
	}{p, strconv.Itoa(p.status) + " " + http.StatusText(p.status), p.outcome})
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// Inline styles only; nothing else may load.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	if err != nil {
		// The template is fixed and tested; this cannot happen with valid
		// data, but a person still gets an answer.
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("internal error\n"))
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(p.status)
	_, _ = buf.WriteTo(w)
}

func channelName(ch *igv1.InstagramChannel) string { return ch.Namespace + "/" + ch.Name }

// linkCommand prints the channel's current login link.
func linkCommand(ch *igv1.InstagramChannel) string {
	return fmt.Sprintf("kubectl -n %s get instagramchannel %s -o jsonpath='{.status.authorizationURL}'", ch.Namespace, ch.Name)
}

// genericLinkCommand is shown when the channel is not known for sure.
const genericLinkCommand = "kubectl -n <namespace> get instagramchannel <name> -o jsonpath='{.status.authorizationURL}'"

// askSender is what an owner can always do: the person who sent the link
// can issue a new one and see what went wrong.
const askSender = "Ask the person who sent you the link for a new one."

func accountName(username, userID string) string {
	if username == "" {
		return "user ID " + userID
	}
	return "@" + username
}

func connectedPage(ch *igv1.InstagramChannel, account string) page {
	return page{
		status: http.StatusOK, outcome: outcomeConnected, Kind: "ok", Badge: "Connected",
		Title:   "Connected. You can close this tab.",
		Lead:    fmt.Sprintf("Your Instagram account %s is connected. Messages sent to it now reach your team.", account),
		Next:    "What happened",
		Facts:   []fact{{Label: "Instagram account", Value: account}, {Label: "Channel", Value: channelName(ch)}},
		Steps:   []string{"The operator exchanged the login for a 60-day token, keeps it refreshed and subscribed the account's webhooks. The channel is Ready:"},
		Command: fmt.Sprintf("kubectl -n %s get instagramchannel %s", ch.Namespace, ch.Name),
	}
}

// checkingPage is the answer when the operator has not reported the
// outcome within the wait: the login reached us, the rest is not known.
func checkingPage(ch *igv1.InstagramChannel, account string) page {
	return page{
		status: http.StatusAccepted, outcome: outcomeChecking, Kind: "pending", Badge: "Almost done",
		Title:   "Checking your connection...",
		Lead:    fmt.Sprintf("Instagram confirmed your login as %s and we are finishing the setup. This can take a minute. You can close this tab: the person who sent you the link will see whether it worked.", account),
		Next:    "For the administrator",
		Facts:   []fact{{Label: "Instagram account", Value: account}, {Label: "Channel", Value: channelName(ch)}},
		Steps:   []string{"The login was handed to the operator, which has not reported the outcome yet (is the manager running?). Follow it:"},
		Command: fmt.Sprintf("kubectl -n %s wait --for=condition=Ready instagramchannel/%s", ch.Namespace, ch.Name),
	}
}

// outcomePage shows what the operator made of a login, in the owner's
// words; ch is the channel as the operator left it.
func outcomePage(ch *igv1.InstagramChannel, account string) page {
	ready := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady)
	if ready != nil && ready.Status == metav1.ConditionTrue {
		return connectedPage(ch, account)
	}
	reason, message := "Unknown", ""
	if ready != nil {
		reason, message = ready.Reason, ready.Message
	}
	facts := []fact{{Label: "Instagram account", Value: account}, {Label: "Channel", Value: channelName(ch)}, {Label: "Reason", Value: reason}}
	// A duplicate's message names the other channel, perhaps another
	// team's: the person at this page need not learn it.
	if message != "" && reason != igv1.ReasonDuplicateAccount {
		facts = append(facts, fact{Label: "Operator said", Value: message})
	}
	status := fmt.Sprintf("kubectl -n %s describe instagramchannel %s", ch.Namespace, ch.Name)
	switch reason {
	case igv1.ReasonDuplicateAccount:
		return page{
			status: http.StatusConflict, outcome: outcomeDuplicate, Kind: "error", Badge: "Already connected",
			Title:   "This Instagram account is already connected elsewhere",
			Lead:    fmt.Sprintf("%s is already connected to another channel, so it was not connected a second time. Nothing else changed.", account),
			Owner:   []string{"Tell the person who sent you the link: they can remove the other connection, then send you a new link."},
			Facts:   facts,
			Steps:   []string{"One Instagram account is served by one channel cluster-wide; the older channel keeps it (named in the operator's message). Delete one of the two channels:"},
			Command: status,
		}
	case igv1.ReasonPermissionDenied, igv1.ReasonScopesChanged:
		return page{
			status: http.StatusForbidden, outcome: outcomePermissionsMissing, Kind: "error", Badge: "Permissions missing",
			Title:   "Some permissions are missing",
			Lead:    "The connection needs every permission Instagram asked you about, and at least one was not granted. Nothing was connected for messaging.",
			Owner:   []string{askSender, "Open it and allow all the requested permissions."},
			Facts:   facts,
			Steps:   []string{"The channel publishes a new login link; the granted scopes or the app's access level do not cover spec.scopes:"},
			Command: linkCommand(ch),
		}
	}
	return page{
		status: http.StatusBadGateway, outcome: outcomeSetupFailed, Kind: "error", Badge: "Not connected",
		Title:   "The connection did not work",
		Lead:    "Instagram confirmed your login, but the setup that follows failed. Tell the person who sent you the link: they can see why and fix it.",
		Facts:   facts,
		Steps:   []string{"The Ready reason has a troubleshooting entry (docs/troubleshooting.md):"},
		Command: status,
	}
}

func deniedPage(ch *igv1.InstagramChannel, desc string) page {
	facts := []fact{{Label: "Channel", Value: channelName(ch)}}
	if desc != "" {
		facts = append(facts, fact{Label: "Instagram said", Value: desc})
	}
	return page{
		status: http.StatusOK, outcome: outcomeDenied, Kind: "denied", Badge: "Not connected",
		Title: "Not connected",
		Lead:  "You chose not to connect your Instagram account. Nothing was shared and no access was granted. You can close this tab.",
		Owner: []string{"Changed your mind? " + askSender},
		Facts: facts,
		Steps: []string{
			"The channel now shows AuthorizationDenied and publishes a new login link; this one no longer works:",
		},
		Command: linkCommand(ch),
	}
}

func stateExpiredPage(ch *igv1.InstagramChannel) page {
	return page{
		status: http.StatusGone, outcome: outcomeStateExpired, Kind: "error", Badge: "Link expired",
		Title:   "This link has expired",
		Lead:    "Login links work for 10 minutes and this one is older. Nothing was connected.",
		Owner:   []string{askSender, "Open it within 10 minutes."},
		Facts:   []fact{{Label: "Channel", Value: channelName(ch)}},
		Steps:   []string{"The channel always publishes a current link, replaced before it expires:"},
		Command: linkCommand(ch),
	}
}

func stateUsedPage(ch *igv1.InstagramChannel) page {
	return page{
		status: http.StatusGone, outcome: outcomeStateUsed, Kind: "error", Badge: "Link already used",
		Title: "This link was already used",
		Lead:  "Each login link works once. This one already completed a login, or a newer link replaced it. Nothing was changed.",
		Owner: []string{"If your account is not connected yet: " + askSender},
		Facts: []fact{{Label: "Channel", Value: channelName(ch)}},
		Steps: []string{
			fmt.Sprintf("Check whether the channel is connected: kubectl -n %s get instagramchannel %s", ch.Namespace, ch.Name),
			"If it still waits for a login, send its current link:",
		},
		Command: linkCommand(ch),
	}
}

func pendingPage(ch *igv1.InstagramChannel) page {
	return page{
		status: http.StatusConflict, outcome: outcomePending, Kind: "pending", Badge: "Busy",
		Title: "Another login is being processed",
		Lead:  "A previous login for this connection is still being finished. Nothing was changed. Wait a minute, then check with the person who sent you the link.",
		Facts: []fact{{Label: "Channel", Value: channelName(ch)}},
		Steps: []string{
			"The operator has not consumed the previous login yet; it publishes a new link if one is still needed:",
		},
		Command: linkCommand(ch),
	}
}

// forgedPage answers a state that cannot be verified: a forgery, a link cut
// short, or a genuine link whose channel or app was deleted since. The page
// must not tell these apart (that would tell strangers which channels
// exist), so it blames none of them.
func forgedPage() page {
	return page{
		status: http.StatusForbidden, outcome: outcomeForged, Kind: "error", Badge: "Link not valid",
		Title: "This link can't be used",
		Lead:  "It may be incomplete or old, or the connection it was made for may have been removed. Nothing was done.",
		Owner: []string{askSender},
		Steps: []string{
			"The state's signature matches no app of a channel this receiver serves: the channel or its app was deleted, the link was altered, or it comes from elsewhere. Send the link the channel publishes now:",
		},
		Command: genericLinkCommand,
	}
}

func malformedPage() page {
	return page{
		status: http.StatusBadRequest, outcome: outcomeMalformed, Kind: "error", Badge: "Incomplete",
		Title:   "This link is incomplete",
		Lead:    "The page was opened without the details Instagram adds after a login, or they were cut short. Nothing was done.",
		Owner:   []string{"Open the whole link you were sent again, or " + strings.ToLower(askSender[:1]) + askSender[1:]},
		Steps:   []string{"Send the login link the channel publishes:"},
		Command: genericLinkCommand,
	}
}

func rateLimitedPage() page {
	return page{
		status: http.StatusTooManyRequests, outcome: outcomeRateLimited, Kind: "error", Badge: "Slow down",
		Title: "Too many attempts",
		Lead:  "We got too many login attempts in a short time. Nothing was done. Wait a minute, then open your link again.",
	}
}

func unavailablePage() page {
	return page{
		status: http.StatusServiceUnavailable, outcome: outcomeUnavailable, Kind: "error", Badge: "Unavailable",
		Title: "Temporarily unavailable",
		Lead:  "We could not finish the login right now. Nothing was connected. Try again in a minute with the same link; if it has expired by then, ask for a new one.",
		Steps: []string{"The receiver could not reach the Kubernetes API; see its log."},
	}
}

func notConfiguredPage() page {
	return page{
		status: http.StatusServiceUnavailable, outcome: outcomeNotConfigured, Kind: "error", Badge: "Unavailable",
		Title: "Login is not set up yet",
		Lead:  "This service cannot complete Instagram logins yet. Nothing was done. Tell the person who sent you the link.",
		Steps: []string{"The webhook receiver was started without access to Instagram's login endpoints: check its --instagram-api-url and --graph-api-url flags."},
	}
}

// exchangeFailedPage explains a refused code exchange, with the fix for
// each setup mistake Meta's answers reveal.
func exchangeFailedPage(ch *igv1.InstagramChannel, err error, redirectURI string) page {
	p := page{status: http.StatusBadGateway, outcome: exchangeOutcome(err), Kind: "error", Badge: "Not connected"}
	// The owner can do nothing about the app's setup: they hear what
	// happened and whom to tell; the fix is for the admin.
	setup := "Instagram refused the connection because of how the app is set up, not because of anything you did. Nothing was connected. Tell the person who sent you the link; the details below are for them."
	facts := []fact{{Label: "Channel", Value: channelName(ch)}}
	if ie, ok := errors.AsType[*instagram.Error](err); ok && ie.Message != "" {
		facts = append(facts, fact{Label: "Instagram said", Value: ie.Message})
	}
	again := "Then open the channel's login link again:"
	switch p.outcome {
	case outcomeRedirectMismatch:
		p.Title = "The app's login settings are incomplete"
		p.Lead = setup
		p.Next = "The redirect URI is not registered for the app"
		p.Facts = append([]fact{{Label: "Redirect URI used", Value: redirectURI, Code: true}}, facts...)
		p.Steps = []string{
			"In the Meta dashboard, open Instagram > API setup with Instagram login > Set up Instagram business login > Business login settings.",
			"Add exactly the redirect URI above to OAuth redirect URIs (trailing slash included) and save. Or set spec.redirectURL on the channel to a URI that is registered.",
			again,
		}
	case outcomeDeveloperRole:
		p.Title = "Your account needs an invitation first"
		p.Lead = "This app is still being tested, and only Instagram accounts invited as testers can connect. Nothing was connected."
		p.Owner = []string{"Ask the person who sent you the link to invite your Instagram account as a tester.", "Accept the invitation in Instagram: Settings > Website permissions > Apps and websites > Tester invites. Then open a new link."}
		p.Next = "This Instagram account has no role on the app"
		p.Facts = facts
		p.Steps = []string{
			"In the Meta dashboard, open App roles > Roles > Add people > Instagram Tester and add this Instagram account.",
			"Accept the invitation in Instagram: Settings > Website permissions > Apps and websites > Tester invites.",
			"For accounts you do not manage, the app needs Advanced Access (App Review and Business Verification) and must be Live.",
			again,
		}
	case outcomePermission:
		p.Title = "The app is not allowed to connect this account yet"
		p.Lead = setup
		p.Next = "The app lacks a permission"
		p.Facts = facts
		p.Steps = []string{
			"The Meta app lacks Advanced Access for instagram_business_basic and instagram_business_manage_messages: complete App Review and Business Verification, and keep the app Live.",
			"Until then, only accounts with a role on the app can connect (App roles > Instagram Tester).",
			again,
		}
	case outcomeAppSecret:
		p.Title = "The app's settings are wrong"
		p.Lead = setup
		p.Next = "Instagram refused the app secret"
		p.Facts = facts
		p.Steps = []string{
			"Compare appSecret in the app's Secret with the Instagram app secret in the Meta dashboard (Instagram > API setup with Instagram login), not the Facebook app secret.",
			again,
		}
	case outcomeCodeInvalid:
		p.status = http.StatusGone
		p.Title = "This login expired or was already completed"
		p.Lead = "Instagram's confirmation works once and only for a short time: it was already used (was the page reloaded?) or expired on the way. Nothing was changed."
		p.Owner = []string{"If your account is not connected yet: " + askSender}
		p.Facts = facts
		p.Steps = []string{
			fmt.Sprintf("Check whether the channel is connected: kubectl -n %s get instagramchannel %s", ch.Namespace, ch.Name),
			"If it still waits for a login, start again from its current link:",
		}
	default:
		p.Title = "Instagram did not complete the login"
		p.Lead = "Instagram answered with an error while finishing your login. Nothing was connected. Try again in a minute; if it keeps failing, tell the person who sent you the link."
		p.Facts = facts
		p.Steps = []string{
			"If it keeps failing, the receiver's log has the details (search for the reference below).",
			again,
		}
	}
	p.Command = linkCommand(ch)
	return p
}
