package webhookserver

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"

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
	outcomeConnected        = "connected"
	outcomeDenied           = "denied"
	outcomeMalformed        = "malformed"
	outcomeForged           = "forged"
	outcomeStateExpired     = "state_expired"
	outcomeStateUsed        = "state_used"
	outcomePending          = "login_pending"
	outcomeRateLimited      = "rate_limited"
	outcomeUnavailable      = "unavailable"
	outcomeNotConfigured    = "not_configured"
	outcomeCodeInvalid      = "code_invalid"
	outcomeRedirectMismatch = "redirect_uri_mismatch"
	outcomeDeveloperRole    = "insufficient_developer_role"
	outcomePermission       = "permission_denied"
	outcomeAppSecret        = "app_secret_refused"
	outcomeInstagramError   = "instagram_error"
)

// page is one answer of the callback.
type page struct {
	status  int
	outcome string

	Kind  string // ok, denied or error: the accent colour
	Badge string
	// Next heads the steps; "What to do" when empty.
	Next    string
	Title   string
	Lead    string
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

func connectedPage(ch *igv1.InstagramChannel, username, userID string) page {
	account := "@" + username
	if username == "" {
		account = "user ID " + userID
	}
	return page{
		status: http.StatusOK, outcome: outcomeConnected, Kind: "ok", Badge: "Connected",
		Title: "Instagram account connected",
		Next:  "What happens next",
		Lead:  fmt.Sprintf("%s is now connected to the channel %s. You can close this window.", account, channelName(ch)),
		Facts: []fact{{Label: "Instagram account", Value: account}, {Label: "Channel", Value: channelName(ch)}},
		Steps: []string{
			"The operator exchanges the login for a 60-day token, keeps it refreshed and subscribes the account's webhooks.",
			"The channel becomes Ready within a minute. To follow it:",
		},
		Command: fmt.Sprintf("kubectl -n %s wait --for=condition=Ready instagramchannel/%s", ch.Namespace, ch.Name),
	}
}

func deniedPage(ch *igv1.InstagramChannel, desc string) page {
	facts := []fact{{Label: "Channel", Value: channelName(ch)}}
	if desc != "" {
		facts = append(facts, fact{Label: "Instagram said", Value: desc})
	}
	return page{
		status: http.StatusOK, outcome: outcomeDenied, Kind: "denied", Badge: "Not connected",
		Title: "Connection declined",
		Lead:  fmt.Sprintf("You declined to connect an Instagram account to the channel %s. Nothing was connected and no access was granted.", channelName(ch)),
		Facts: facts,
		Steps: []string{
			"The channel now shows AuthorizationDenied and publishes a new login link; this one no longer works.",
			"To connect after all, open the new link and allow the requested permissions:",
		},
		Command: linkCommand(ch),
	}
}

func stateExpiredPage(ch *igv1.InstagramChannel) page {
	return page{
		status: http.StatusGone, outcome: outcomeStateExpired, Kind: "error", Badge: "Link expired",
		Title: "This login link has expired",
		Lead:  "Login links work for 10 minutes and this one is older. Nothing was connected.",
		Facts: []fact{{Label: "Channel", Value: channelName(ch)}},
		Steps: []string{
			"The channel always publishes a current link, replaced before it expires.",
			"Get it and log in again within 10 minutes:",
		},
		Command: linkCommand(ch),
	}
}

func stateUsedPage(ch *igv1.InstagramChannel) page {
	return page{
		status: http.StatusGone, outcome: outcomeStateUsed, Kind: "error", Badge: "Link already used",
		Title: "This login link was already used",
		Lead:  "Each login link works once. This one already completed a login, or a newer link replaced it (after a declined login, for instance). Nothing was changed.",
		Facts: []fact{{Label: "Channel", Value: channelName(ch)}},
		Steps: []string{
			fmt.Sprintf("Check whether the channel is connected: kubectl -n %s get instagramchannel %s", ch.Namespace, ch.Name),
			"If it still waits for a login, open its current link:",
		},
		Command: linkCommand(ch),
	}
}

func pendingPage(ch *igv1.InstagramChannel) page {
	return page{
		status: http.StatusConflict, outcome: outcomePending, Kind: "error", Badge: "Busy",
		Title: "Another login is being processed",
		Lead:  fmt.Sprintf("A previous login for the channel %s has not been picked up by the operator yet. Nothing was changed.", channelName(ch)),
		Steps: []string{
			"Wait a minute: the operator completes the previous login and publishes a new link if one is still needed.",
			"If the channel is still not Ready, open its current link:",
		},
		Command: linkCommand(ch),
	}
}

func forgedPage() page {
	return page{
		status: http.StatusForbidden, outcome: outcomeForged, Kind: "error", Badge: "Refused",
		Title: "This login link was not issued here",
		Lead:  "The link's signature does not match a channel this operator serves, so nothing was done.",
		Steps: []string{
			"Use the login link published on the channel itself, not a copy from elsewhere:",
		},
		Command: genericLinkCommand,
	}
}

func malformedPage() page {
	return page{
		status: http.StatusBadRequest, outcome: outcomeMalformed, Kind: "error", Badge: "Incomplete",
		Title: "This login link is incomplete",
		Lead:  "The page was opened without the parameters Instagram adds after a login, or they were cut short. Nothing was done.",
		Steps: []string{
			"Start again from the login link published on the channel:",
		},
		Command: genericLinkCommand,
	}
}

func rateLimitedPage() page {
	return page{
		status: http.StatusTooManyRequests, outcome: outcomeRateLimited, Kind: "error", Badge: "Slow down",
		Title: "Too many attempts",
		Lead:  "This receiver got too many login attempts in a short time. Nothing was done.",
		Steps: []string{"Wait a minute, then open the channel's login link again."},
	}
}

func unavailablePage() page {
	return page{
		status: http.StatusServiceUnavailable, outcome: outcomeUnavailable, Kind: "error", Badge: "Unavailable",
		Title: "Temporarily unavailable",
		Lead:  "The receiver could not reach the Kubernetes API to complete the login. Nothing was connected.",
		Steps: []string{"Try again in a minute with the channel's current login link."},
	}
}

func notConfiguredPage() page {
	return page{
		status: http.StatusServiceUnavailable, outcome: outcomeNotConfigured, Kind: "error", Badge: "Unavailable",
		Title: "Business Login is not set up on this receiver",
		Lead:  "This receiver was started without access to Instagram's login endpoints. Nothing was done.",
		Steps: []string{"Ask the platform team to check the webhook receiver's --instagram-api-url and --graph-api-url flags."},
	}
}

// exchangeFailedPage explains a refused code exchange, with the fix for
// each setup mistake Meta's answers reveal.
func exchangeFailedPage(ch *igv1.InstagramChannel, err error, redirectURI string) page {
	p := page{status: http.StatusBadGateway, outcome: exchangeOutcome(err), Kind: "error", Badge: "Not connected"}
	facts := []fact{{Label: "Channel", Value: channelName(ch)}}
	if ie, ok := errors.AsType[*instagram.Error](err); ok && ie.Message != "" {
		facts = append(facts, fact{Label: "Instagram said", Value: ie.Message})
	}
	again := "Then open the channel's login link again:"
	switch p.outcome {
	case outcomeRedirectMismatch:
		p.Title = "The redirect URI is not registered for the app"
		p.Lead = "Instagram refused the login because the redirect URI the operator used does not match one registered for the Meta app, byte for byte."
		p.Facts = append([]fact{{Label: "Redirect URI used", Value: redirectURI, Code: true}}, facts...)
		p.Steps = []string{
			"In the Meta dashboard, open Instagram > API setup with Instagram login > Set up Instagram business login > Business login settings.",
			"Add exactly the redirect URI above to OAuth redirect URIs (trailing slash included) and save. Or set spec.redirectURL on the channel to a URI that is registered.",
			again,
		}
	case outcomeDeveloperRole:
		p.Title = "This Instagram account has no role on the app"
		p.Lead = "The Meta app is in development mode: only Instagram accounts with a role on it can connect."
		p.Facts = facts
		p.Steps = []string{
			"In the Meta dashboard, open App roles > Roles > Add people > Instagram Tester and add this Instagram account.",
			"Accept the invitation in Instagram: Settings > Website permissions > Apps and websites > Tester invites.",
			"For accounts you do not manage, complete App Review and switch the app to Live.",
			again,
		}
	case outcomePermission:
		p.Title = "The app lacks a permission"
		p.Lead = "Instagram refused because the Meta app does not have the access it needs: it is not Live, or Advanced Access for instagram_business_basic and instagram_business_manage_messages is missing."
		p.Facts = facts
		p.Steps = []string{
			"Complete App Review for instagram_business_basic and instagram_business_manage_messages, request Advanced Access and switch the app to Live.",
			"Until then, only accounts with a role on the app can connect (App roles > Instagram Tester).",
			again,
		}
	case outcomeAppSecret:
		p.Title = "Instagram refused the app secret"
		p.Lead = "The app secret configured for this channel's app is not the one Instagram knows."
		p.Facts = facts
		p.Steps = []string{
			"Compare appSecret in the app's Secret with the Instagram app secret in the Meta dashboard (Instagram > API setup with Instagram login), not the Facebook app secret.",
			again,
		}
	case outcomeCodeInvalid:
		p.status = http.StatusGone
		p.Title = "This login expired or was already completed"
		p.Lead = "Instagram's authorization code works once and only for a short time. It was already used (was the page reloaded?) or expired before it reached the receiver. Nothing was changed."
		p.Facts = facts
		p.Steps = []string{
			fmt.Sprintf("Check whether the channel is connected: kubectl -n %s get instagramchannel %s", ch.Namespace, ch.Name),
			"If it still waits for a login, start again from its current link:",
		}
	default:
		p.Title = "Instagram did not complete the login"
		p.Lead = "Instagram answered with an error while the receiver exchanged the login for a token. Nothing was connected."
		p.Facts = facts
		p.Steps = []string{
			"Try again in a minute. If it keeps failing, the receiver's log has the details (search for the reference below).",
			again,
		}
	}
	p.Command = linkCommand(ch)
	return p
}
