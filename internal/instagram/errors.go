package instagram

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Class is what the operator does about a failed Instagram call. Every
// failure is classified once, in this file; reconcilers switch on the class
// and never look at Graph codes themselves.
type Class string

const (
	// ClassTokenInvalid: the token is expired, revoked or otherwise unusable
	// (code 190). Stop using it; a person must log in again.
	ClassTokenInvalid Class = "TokenInvalid"
	// ClassPermissionDenied: a permission or app review is missing (codes 10,
	// 200-299). No retry until something changes.
	ClassPermissionDenied Class = "PermissionDenied"
	// ClassRateLimited: back off for RetryAfter (codes 4, 17, 32, 613,
	// 80000-80014, HTTP 429, or the client-side limiter).
	ClassRateLimited Class = "RateLimited"
	// ClassOutsideWindow: the messaging window is closed (code 10, subcode
	// 2534022). HUMAN_AGENT may still be allowed.
	ClassOutsideWindow Class = "OutsideWindow"
	// ClassUserUnavailable: the person cannot be messaged (code 551), or
	// their profile cannot be read: they blocked the account or deleted
	// theirs (the profile lookup's code 100, subcode 33).
	ClassUserUnavailable Class = "UserUnavailable"
	// ClassNoConsent: the customer has not messaged the account (or tapped
	// an ice breaker or menu item) yet, so their profile is not readable
	// (code 230).
	ClassNoConsent Class = "NoConsent"
	// ClassBadRequest: the request itself is wrong (code 100 family). No retry.
	ClassBadRequest Class = "BadRequest"
	// ClassTransient: retry with backoff (codes 1, 2, is_transient, HTTP 5xx,
	// timeouts, connection errors).
	ClassTransient Class = "Transient"
	// ClassOAuthCodeInvalid: the code exchange was refused (wrong
	// redirect_uri, used or expired code, missing developer role...). The
	// Message says which.
	ClassOAuthCodeInvalid Class = "OAuthCodeInvalid"
	// ClassUnknown: anything else, including answers that could not be
	// understood.
	ClassUnknown Class = "Unknown"
)

// Graph error codes and subcodes the classification relies on.
const (
	codeUnknown             = 1
	codeService             = 2
	codeTooManyCalls        = 4
	codePermission          = 10
	codeUserTooManyCalls    = 17
	codePageTooManyCalls    = 32
	codeInvalidParameter    = 100
	codeAPISession          = 102
	codeAccessToken         = 190
	codeCustomRateLimit     = 613
	codeUserUnavailable     = 551
	codeConsentRequired     = 230
	subcodeObjectNotFound   = 33
	subcodeOutsideWindow    = 2534022
	codeOAuthCodeExchange   = 400
	defaultRateLimitBackoff = 60 * time.Second
	// maxRetryAfter caps what an answer can ask for: a bogus header must
	// not park a channel, a refresh or a message for days.
	maxRetryAfter = time.Hour
	// usageExhaustedBackoff is used when a usage header says a quota is at
	// 100% but gives no time to regain access.
	usageExhaustedBackoff = time.Minute
)

// Error is a classified failure of one Instagram call. Its text never
// contains a token or an app secret.
type Error struct {
	Class Class
	// Endpoint is the fixed endpoint name (see the Endpoint* constants).
	Endpoint   string
	HTTPStatus int
	Code       int
	Subcode    int
	Type       string
	Message    string
	FBTraceID  string
	// IsTransient is Meta's is_transient flag (or true for transport errors).
	IsTransient bool
	// RetryAfter is how long to wait before the next call, when known.
	RetryAfter time.Duration
	// NotDelivered is true when Instagram surely did not act on the request:
	// it was never sent, or Instagram refused it with a reason (a 4xx with
	// a Graph error, a rate limit). When false for a send (a 5xx with or
	// without a body, codes 1 and 2, is_transient, a timeout after the
	// request was written), the message may or may not have gone out.
	NotDelivered bool

	// cause is the transport error (already stripped of its URL), kept so
	// errors.Is(err, context.DeadlineExceeded) works.
	cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "instagram %s: %s", e.Endpoint, e.Class)
	var details []string
	if e.HTTPStatus != 0 {
		details = append(details, "HTTP "+strconv.Itoa(e.HTTPStatus))
	}
	if e.Code != 0 {
		c := "code " + strconv.Itoa(e.Code)
		if e.Subcode != 0 {
			c += "/" + strconv.Itoa(e.Subcode)
		}
		details = append(details, c)
	}
	if e.Type != "" {
		details = append(details, e.Type)
	}
	if len(details) > 0 {
		b.WriteString(" (" + strings.Join(details, ", ") + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.FBTraceID != "" {
		b.WriteString(" [fbtrace_id " + e.FBTraceID + "]")
	}
	return b.String()
}

// Unwrap returns the transport error behind the failure, if any.
func (e *Error) Unwrap() error { return e.cause }

// ClassOf returns the class of err: "" for nil, ClassUnknown for an error
// that did not come from this package.
func ClassOf(err error) Class {
	if err == nil {
		return ""
	}
	var ie *Error
	if errors.As(err, &ie) {
		return ie.Class
	}
	return ClassUnknown
}

// IsClass reports whether err is an *Error of class c.
func IsClass(err error, c Class) bool {
	return err != nil && ClassOf(err) == c
}

// RetryAfterOf returns how long Instagram asked to wait, or 0.
func RetryAfterOf(err error) time.Duration {
	var ie *Error
	if errors.As(err, &ie) {
		return ie.RetryAfter
	}
	return 0
}

// NotDelivered reports whether Instagram surely did not act on the request
// behind err. A send that failed with NotDelivered false has an ambiguous
// outcome and must not be retried blindly.
func NotDelivered(err error) bool {
	var ie *Error
	if errors.As(err, &ie) {
		return ie.NotDelivered
	}
	return false
}

// graphErrorBody is Meta's error envelope, plus the flat shape the code
// exchange uses ({"error_type","code","error_message"}).
type graphErrorBody struct {
	Error *struct {
		Message      string  `json:"message"`
		Type         string  `json:"type"`
		Code         flexInt `json:"code"`
		Subcode      flexInt `json:"error_subcode"`
		FBTraceID    string  `json:"fbtrace_id"`
		IsTransient  bool    `json:"is_transient"`
		ErrorUserMsg string  `json:"error_user_msg"`
	} `json:"error"`
	ErrorType    string  `json:"error_type"`
	Code         flexInt `json:"code"`
	ErrorMessage string  `json:"error_message"`
}

// parsedGraphError is a Graph error found in a body.
type parsedGraphError struct {
	code, subcode int
	typ, message  string
	fbtraceID     string
	isTransient   bool
	// flatOAuth marks the {"error_type","code","error_message"} shape.
	flatOAuth bool
}

// parseGraphError finds a Graph error in body; ok is false when the body
// carries none (HTML error pages, empty bodies, success answers).
func parseGraphError(body []byte) (parsedGraphError, bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return parsedGraphError{}, false
	}
	var b graphErrorBody
	if err := json.Unmarshal(body, &b); err != nil {
		return parsedGraphError{}, false
	}
	if b.Error != nil {
		msg := b.Error.Message
		if msg == "" {
			msg = b.Error.ErrorUserMsg
		}
		return parsedGraphError{
			code:        int(b.Error.Code),
			subcode:     int(b.Error.Subcode),
			typ:         b.Error.Type,
			message:     msg,
			fbtraceID:   b.Error.FBTraceID,
			isTransient: b.Error.IsTransient,
		}, true
	}
	if b.ErrorType != "" || b.ErrorMessage != "" {
		return parsedGraphError{
			code:      int(b.Code),
			typ:       b.ErrorType,
			message:   b.ErrorMessage,
			flatOAuth: true,
		}, true
	}
	return parsedGraphError{}, false
}

// classifyResponse turns a non-success answer into an *Error. now is used to
// read a Retry-After header given as an HTTP date.
func classifyResponse(endpoint string, status int, header http.Header, body []byte, now time.Time) *Error {
	e := &Error{Endpoint: endpoint, HTTPStatus: status}
	g, hasGraphError := parseGraphError(body)
	if hasGraphError {
		e.Code, e.Subcode = g.code, g.subcode
		e.Type, e.Message, e.FBTraceID = g.typ, g.message, g.fbtraceID
		e.IsTransient = g.isTransient
	} else {
		e.Message = http.StatusText(status)
	}

	switch {
	case hasGraphError && g.flatOAuth && endpoint == EndpointExchangeCode:
		e.Class = ClassOAuthCodeInvalid
	case hasGraphError && endpoint == EndpointProfile && g.code == codeInvalidParameter && g.subcode == subcodeObjectNotFound:
		// The IGSID came from a webhook, so it existed: the person is
		// blocked or gone.
		e.Class = ClassUserUnavailable
	case hasGraphError:
		e.Class = classifyCode(g.code, g.subcode, g.isTransient)
		if e.Class == ClassUnknown {
			e.Class = classifyStatus(status)
		}
	default:
		e.Class = classifyStatus(status)
	}
	if e.Class == ClassTransient {
		e.IsTransient = true
	}
	e.NotDelivered = refused(status, hasGraphError, g, e.Class)

	e.RetryAfter = retryAfterHeader(header.Get("Retry-After"), now)
	if e.Class == ClassRateLimited && e.RetryAfter == 0 {
		e.RetryAfter = usageBackoff(header)
		if e.RetryAfter == 0 {
			e.RetryAfter = defaultRateLimitBackoff
		}
	}
	e.RetryAfter = min(e.RetryAfter, maxRetryAfter)
	return e
}

// refused reports whether an answer proves that Instagram did not act on
// the request. Only a refusal that names its reason does: a rate limit
// (Meta counts and rejects before doing anything), or a 4xx with a Graph
// error that is not one of the "something went wrong on our side" codes.
// A 5xx may come from a proxy or a backend that failed after the message
// was queued, whatever body it carries; codes 1 and 2 and is_transient say
// the same in Graph's words. Those are ambiguous for a send: retrying them
// could deliver the message twice.
func refused(status int, hasGraphError bool, g parsedGraphError, class Class) bool {
	switch {
	case class == ClassRateLimited:
		return true
	case status >= 500:
		return false
	case !hasGraphError:
		// A 4xx without a Graph error is a refusal of the request
		// itself (a gateway's 404, 413, 431...).
		return status >= 400 && status < 500
	case g.code == codeUnknown || g.code == codeService || g.isTransient:
		return false
	}
	return true
}

// classifyCode maps a Graph error code to a class; ClassUnknown when the
// code alone does not say.
func classifyCode(code, subcode int, isTransient bool) Class {
	switch {
	case code == codeAccessToken || code == codeAPISession:
		return ClassTokenInvalid
	case isRateLimitCode(code):
		return ClassRateLimited
	case code == codePermission && subcode == subcodeOutsideWindow:
		return ClassOutsideWindow
	case code == codeConsentRequired:
		return ClassNoConsent
	case code == codePermission || (code >= 200 && code <= 299):
		return ClassPermissionDenied
	case code == codeUserUnavailable:
		return ClassUserUnavailable
	case code == codeUnknown || code == codeService || isTransient:
		return ClassTransient
	case code >= codeInvalidParameter && code <= 199:
		return ClassBadRequest
	}
	return ClassUnknown
}

func isRateLimitCode(code int) bool {
	switch code {
	case codeTooManyCalls, codeUserTooManyCalls, codePageTooManyCalls, codeCustomRateLimit:
		return true
	}
	// 80000-80014 are Meta's business-use-case rate limits (80002 is the
	// Instagram one).
	return code >= 80000 && code <= 80014
}

func classifyStatus(status int) Class {
	switch {
	case status == http.StatusTooManyRequests:
		return ClassRateLimited
	case status >= 500:
		return ClassTransient
	}
	return ClassUnknown
}

// retryAfterHeader reads Retry-After as seconds or as an HTTP date.
func retryAfterHeader(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(math.MaxInt64/int64(time.Second)))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// appUsage is X-App-Usage: percentages of the app's quota.
type appUsage struct {
	CallCount    float64 `json:"call_count"`
	TotalTime    float64 `json:"total_time"`
	TotalCPUTime float64 `json:"total_cputime"`
}

func (u appUsage) exhausted() bool {
	return u.CallCount >= 100 || u.TotalTime >= 100 || u.TotalCPUTime >= 100
}

// businessUseCaseUsage is one entry of X-Business-Use-Case-Usage.
type businessUseCaseUsage struct {
	appUsage
	// EstimatedTimeToRegainAccess is in minutes.
	EstimatedTimeToRegainAccess float64 `json:"estimated_time_to_regain_access"`
}

// usageBackoff derives a wait from Meta's usage headers; 0 when they do not
// say anything useful.
func usageBackoff(h http.Header) time.Duration {
	var wait time.Duration
	if v := h.Get("X-Business-Use-Case-Usage"); v != "" {
		var usage map[string][]businessUseCaseUsage
		if json.Unmarshal([]byte(v), &usage) == nil {
			for _, entries := range usage {
				for _, u := range entries {
					if u.EstimatedTimeToRegainAccess > 0 {
						wait = max(wait, time.Duration(u.EstimatedTimeToRegainAccess*float64(time.Minute)))
					} else if u.exhausted() {
						wait = max(wait, usageExhaustedBackoff)
					}
				}
			}
		}
	}
	if v := h.Get("X-App-Usage"); v != "" {
		var u appUsage
		if json.Unmarshal([]byte(v), &u) == nil && u.exhausted() {
			wait = max(wait, usageExhaustedBackoff)
		}
	}
	return wait
}

// redact removes every secret from s. Meta does not echo tokens in its
// messages, but an error string is the last line of defence.
func redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "[REDACTED]")
		}
	}
	return s
}
