package instagram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestClassifyResponse(t *testing.T) {
	now := time.Date(2025, 11, 21, 12, 0, 0, 0, time.UTC)
	type want struct {
		Class        Class
		Code         int
		Subcode      int
		Message      string
		RetryAfter   time.Duration
		NotDelivered bool
		IsTransient  bool
	}
	tests := map[string]struct {
		endpoint string
		status   int
		header   http.Header
		body     string
		want     want
	}{
		"token expired (190/463)": {
			endpoint: EndpointMe, status: 400,
			body: `{"error":{"message":"Error validating access token: Session has expired on Friday, 21-Nov-25 11:00:00 PST.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"AbC"}}`,
			want: want{Class: ClassTokenInvalid, Code: 190, Subcode: 463, NotDelivered: true,
				Message: "Error validating access token: Session has expired on Friday, 21-Nov-25 11:00:00 PST."},
		},
		"password changed (190/460)": {
			endpoint: EndpointSend, status: 400,
			body: `{"error":{"message":"Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.","type":"OAuthException","code":190,"error_subcode":460,"fbtrace_id":"x"}}`,
			want: want{Class: ClassTokenInvalid, Code: 190, Subcode: 460, NotDelivered: true,
				Message: "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."},
		},
		"invalid token without subcode, code as string": {
			endpoint: EndpointRefreshToken, status: 400,
			body: `{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":"190"}}`,
			want: want{Class: ClassTokenInvalid, Code: 190, NotDelivered: true, Message: "Invalid OAuth access token - Cannot parse access token"},
		},
		"outside the messaging window (10/2534022)": {
			endpoint: EndpointSend, status: 400,
			body: `{"error":{"message":"(#10) This message is sent outside of allowed window.","type":"OAuthException","code":10,"error_subcode":2534022,"fbtrace_id":"x"}}`,
			want: want{Class: ClassOutsideWindow, Code: 10, Subcode: 2534022, NotDelivered: true, Message: "(#10) This message is sent outside of allowed window."},
		},
		"permission (10)": {
			endpoint: EndpointSubscribe, status: 403,
			body: `{"error":{"message":"(#10) Application does not have permission for this action","type":"OAuthException","code":10}}`,
			want: want{Class: ClassPermissionDenied, Code: 10, NotDelivered: true, Message: "(#10) Application does not have permission for this action"},
		},
		"permission (200)": {
			endpoint: EndpointSend, status: 400,
			body: `{"error":{"message":"(#200) Requires instagram_business_manage_messages permission","type":"OAuthException","code":200}}`,
			want: want{Class: ClassPermissionDenied, Code: 200, NotDelivered: true, Message: "(#200) Requires instagram_business_manage_messages permission"},
		},
		"consent required (230)": {
			endpoint: EndpointProfile, status: 400,
			body: `{"error":{"message":"(#230) User consent is required to access user profile","type":"OAuthException","code":230}}`,
			want: want{Class: ClassNoConsent, Code: 230, NotDelivered: true, Message: "(#230) User consent is required to access user profile"},
		},
		"profile of a blocked or deleted user (100/33)": {
			endpoint: EndpointProfile, status: 400,
			body: `{"error":{"message":"Unsupported get request. Object with ID '5550001' does not exist","type":"GraphMethodException","code":100,"error_subcode":33}}`,
			want: want{Class: ClassUserUnavailable, Code: 100, Subcode: 33, NotDelivered: true, Message: "Unsupported get request. Object with ID '5550001' does not exist"},
		},
		"object not found elsewhere stays a bad request (100/33)": {
			endpoint: EndpointSubscribe, status: 400,
			body: `{"error":{"message":"Unsupported post request.","type":"GraphMethodException","code":100,"error_subcode":33}}`,
			want: want{Class: ClassBadRequest, Code: 100, Subcode: 33, NotDelivered: true, Message: "Unsupported post request."},
		},
		"rate limited (4) with Retry-After seconds": {
			endpoint: EndpointSend, status: 400, header: http.Header{"Retry-After": {"120"}},
			body: `{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4,"is_transient":true}}`,
			want: want{Class: ClassRateLimited, Code: 4, NotDelivered: true, IsTransient: true, RetryAfter: 2 * time.Minute, Message: "(#4) Application request limit reached"},
		},
		"rate limited with an absurd Retry-After, capped at an hour": {
			endpoint: EndpointSend, status: 400, header: http.Header{"Retry-After": {"864000"}},
			body: `{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4,"is_transient":true}}`,
			want: want{Class: ClassRateLimited, Code: 4, NotDelivered: true, IsTransient: true, RetryAfter: time.Hour, Message: "(#4) Application request limit reached"},
		},
		"rate limited (17) with Retry-After date": {
			endpoint: EndpointMe, status: 400, header: http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}},
			body: `{"error":{"message":"(#17) User request limit reached","type":"OAuthException","code":17}}`,
			want: want{Class: ClassRateLimited, Code: 17, NotDelivered: true, RetryAfter: 90 * time.Second, Message: "(#17) User request limit reached"},
		},
		"rate limited (32) from business use case usage": {
			endpoint: EndpointSend, status: 400,
			header: http.Header{"X-Business-Use-Case-Usage": {`{"17841400000000000":[{"type":"instagram","call_count":100,"total_cputime":20,"total_time":30,"estimated_time_to_regain_access":5}]}`}},
			body:   `{"error":{"message":"(#32) Page request limit reached","type":"OAuthException","code":32}}`,
			want:   want{Class: ClassRateLimited, Code: 32, NotDelivered: true, RetryAfter: 5 * time.Minute, Message: "(#32) Page request limit reached"},
		},
		"rate limited (613) from app usage at 100%": {
			endpoint: EndpointSend, status: 400,
			header: http.Header{"X-App-Usage": {`{"call_count":100,"total_time":12,"total_cputime":3}`}},
			body:   `{"error":{"message":"(#613) Calls to this api have exceeded the rate limit.","type":"OAuthException","code":613}}`,
			want:   want{Class: ClassRateLimited, Code: 613, NotDelivered: true, RetryAfter: time.Minute, Message: "(#613) Calls to this api have exceeded the rate limit."},
		},
		"rate limited (80002) default backoff": {
			endpoint: EndpointProfile, status: 400,
			body: `{"error":{"message":"There have been too many calls to this Instagram account.","type":"OAuthException","code":80002}}`,
			want: want{Class: ClassRateLimited, Code: 80002, NotDelivered: true, RetryAfter: 60 * time.Second, Message: "There have been too many calls to this Instagram account."},
		},
		"HTTP 429 without a body": {
			endpoint: EndpointSend, status: 429, header: http.Header{"Retry-After": {"7"}},
			want: want{Class: ClassRateLimited, NotDelivered: true, RetryAfter: 7 * time.Second, Message: "Too Many Requests"},
		},
		"user unavailable (551)": {
			endpoint: EndpointSend, status: 400,
			body: `{"error":{"message":"(#551) This person isn't available right now.","type":"OAuthException","code":551,"error_subcode":1545041}}`,
			want: want{Class: ClassUserUnavailable, Code: 551, Subcode: 1545041, NotDelivered: true, Message: "(#551) This person isn't available right now."},
		},
		"bad request (100/2018001)": {
			endpoint: EndpointSend, status: 400,
			body: `{"error":{"message":"(#100) No matching user found","type":"OAuthException","code":100,"error_subcode":2018001}}`,
			want: want{Class: ClassBadRequest, Code: 100, Subcode: 2018001, NotDelivered: true, Message: "(#100) No matching user found"},
		},
		"code exchange by GET (100)": {
			endpoint: EndpointExchangeCode, status: 400,
			body: `{"error":{"message":"Unsupported request - method type: get","type":"GraphMethodException","code":100}}`,
			want: want{Class: ClassBadRequest, Code: 100, NotDelivered: true, Message: "Unsupported request - method type: get"},
		},
		"temporary (2) with is_transient": {
			endpoint: EndpointSend, status: 500,
			body: `{"error":{"message":"An unexpected error has occurred. Please retry your request later.","type":"OAuthException","code":2,"is_transient":true}}`,
			want: want{Class: ClassTransient, Code: 2, NotDelivered: false, IsTransient: true, Message: "An unexpected error has occurred. Please retry your request later."},
		},
		"unknown error (1)": {
			endpoint: EndpointMe, status: 500,
			body: `{"error":{"message":"An unknown error occurred","type":"OAuthException","code":1}}`,
			want: want{Class: ClassTransient, Code: 1, NotDelivered: false, IsTransient: true, Message: "An unknown error occurred"},
		},
		"unknown code flagged transient": {
			endpoint: EndpointMe, status: 400,
			body: `{"error":{"message":"Something odd","type":"OAuthException","code":12345,"is_transient":true}}`,
			want: want{Class: ClassTransient, Code: 12345, NotDelivered: false, IsTransient: true, Message: "Something odd"},
		},
		"5xx without a Graph error is ambiguous": {
			endpoint: EndpointSend, status: 502, body: `<html>Bad Gateway</html>`,
			want: want{Class: ClassTransient, IsTransient: true, NotDelivered: false, Message: "Bad Gateway"},
		},
		// Whether a failed send may be retried hangs on NotDelivered: only
		// a reasoned refusal proves that nothing went out.
		"send: 5xx with a non-transient Graph error is ambiguous": {
			endpoint: EndpointSend, status: 500,
			body: `{"error":{"message":"Invalid parameter","type":"OAuthException","code":100}}`,
			want: want{Class: ClassBadRequest, Code: 100, NotDelivered: false, Message: "Invalid parameter"},
		},
		"send: 4xx with code 2 is ambiguous": {
			endpoint: EndpointSend, status: 400,
			body: `{"error":{"message":"Service temporarily unavailable","type":"OAuthException","code":2}}`,
			want: want{Class: ClassTransient, Code: 2, NotDelivered: false, IsTransient: true, Message: "Service temporarily unavailable"},
		},
		"send: 4xx with code 1 is ambiguous": {
			endpoint: EndpointSend, status: 400,
			body: `{"error":{"message":"An unknown error occurred","type":"OAuthException","code":1}}`,
			want: want{Class: ClassTransient, Code: 1, NotDelivered: false, IsTransient: true, Message: "An unknown error occurred"},
		},
		"send: 4xx with is_transient is ambiguous": {
			endpoint: EndpointSend, status: 400,
			body: `{"error":{"message":"Please retry","type":"OAuthException","code":100,"is_transient":true}}`,
			want: want{Class: ClassTransient, Code: 100, NotDelivered: false, IsTransient: true, Message: "Please retry"},
		},
		"send: 4xx with a Graph error is a refusal": {
			endpoint: EndpointSend, status: 400,
			body: `{"error":{"message":"(#100) No matching user found","type":"OAuthException","code":100,"error_subcode":2018001}}`,
			want: want{Class: ClassBadRequest, Code: 100, Subcode: 2018001, NotDelivered: true, Message: "(#100) No matching user found"},
		},
		"send: rate-limit code on a 5xx is a refusal": {
			endpoint: EndpointSend, status: 500,
			body: `{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4,"is_transient":true}}`,
			want: want{Class: ClassRateLimited, Code: 4, NotDelivered: true, IsTransient: true, RetryAfter: time.Minute, Message: "(#4) Application request limit reached"},
		},
		"send: 429 without a body is a refusal": {
			endpoint: EndpointSend, status: 429,
			want: want{Class: ClassRateLimited, NotDelivered: true, RetryAfter: time.Minute, Message: "Too Many Requests"},
		},
		"send: 4xx without a Graph error is a refusal": {
			endpoint: EndpointSend, status: 404, body: `<html>Not Found</html>`,
			want: want{Class: ClassUnknown, NotDelivered: true, Message: "Not Found"},
		},
		"send: 5xx without a body is ambiguous": {
			endpoint: EndpointSend, status: 503,
			want: want{Class: ClassTransient, IsTransient: true, NotDelivered: false, Message: "Service Unavailable"},
		},
		"5xx with Retry-After": {
			endpoint: EndpointMe, status: 503, header: http.Header{"Retry-After": {"30"}},
			want: want{Class: ClassTransient, IsTransient: true, RetryAfter: 30 * time.Second, Message: "Service Unavailable"},
		},
		"unknown code, 4xx": {
			endpoint: EndpointMe, status: 400,
			body: `{"error":{"message":"Weird","type":"OAuthException","code":9999}}`,
			want: want{Class: ClassUnknown, Code: 9999, NotDelivered: true, Message: "Weird"},
		},
		"code exchange: used code": {
			endpoint: EndpointExchangeCode, status: 400,
			body: `{"error_type": "OAuthException", "code": 400, "error_message": "Matching code was not found or was already used"}`,
			want: want{Class: ClassOAuthCodeInvalid, Code: 400, NotDelivered: true, Message: "Matching code was not found or was already used"},
		},
		"code exchange: redirect_uri": {
			endpoint: EndpointExchangeCode, status: 400,
			body: `{"error_type":"OAuthException","code":400,"error_message":"Invalid redirect_uri"}`,
			want: want{Class: ClassOAuthCodeInvalid, Code: 400, NotDelivered: true, Message: "Invalid redirect_uri"},
		},
		"code exchange: developer role": {
			endpoint: EndpointExchangeCode, status: 400,
			body: `{"error_type":"OAuthException","code":400,"error_message":"Insufficient developer role"}`,
			want: want{Class: ClassOAuthCodeInvalid, Code: 400, NotDelivered: true, Message: "Insufficient developer role"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			e := classifyResponse(tc.endpoint, tc.status, h, []byte(tc.body), now)
			got := want{Class: e.Class, Code: e.Code, Subcode: e.Subcode, Message: e.Message,
				RetryAfter: e.RetryAfter, NotDelivered: e.NotDelivered, IsTransient: e.IsTransient}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("classification (-want +got):\n%s", diff)
			}
			if e.Endpoint != tc.endpoint || e.HTTPStatus != tc.status {
				t.Errorf("endpoint/status = %q/%d, want %q/%d", e.Endpoint, e.HTTPStatus, tc.endpoint, tc.status)
			}
		})
	}
}

func TestErrorHelpers(t *testing.T) {
	base := &Error{Class: ClassRateLimited, Endpoint: EndpointSend, RetryAfter: 3 * time.Second, NotDelivered: true}
	wrapped := fmt.Errorf("send message: %w", base)
	if got := ClassOf(wrapped); got != ClassRateLimited {
		t.Errorf("ClassOf = %q", got)
	}
	if !IsClass(wrapped, ClassRateLimited) || IsClass(wrapped, ClassTransient) {
		t.Error("IsClass does not see through wrapping")
	}
	if got := RetryAfterOf(wrapped); got != 3*time.Second {
		t.Errorf("RetryAfterOf = %v", got)
	}
	if !NotDelivered(wrapped) {
		t.Error("NotDelivered = false")
	}
	if ClassOf(nil) != "" || IsClass(nil, ClassUnknown) {
		t.Error("nil error has a class")
	}
	if ClassOf(errors.New("other")) != ClassUnknown || RetryAfterOf(errors.New("x")) != 0 || NotDelivered(errors.New("x")) {
		t.Error("foreign errors are not Unknown / zero")
	}
	cause := &Error{Class: ClassTransient, Endpoint: EndpointMe, cause: context.DeadlineExceeded}
	if !errors.Is(fmt.Errorf("x: %w", cause), context.DeadlineExceeded) {
		t.Error("the transport cause is not reachable with errors.Is")
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Class: ClassTokenInvalid, Endpoint: EndpointMe, HTTPStatus: 400, Code: 190, Subcode: 463,
		Type: "OAuthException", Message: "Session has expired", FBTraceID: "AbC"}
	want := "instagram me: TokenInvalid (HTTP 400, code 190/463, OAuthException): Session has expired [fbtrace_id AbC]"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestRedact(t *testing.T) {
	got := redact("token IGAAsecret123 and IGAAsecret123 again, secret s3cr3t", "IGAAsecret123", "s3cr3t", "")
	if strings.Contains(got, "IGAAsecret123") || strings.Contains(got, "s3cr3t") {
		t.Errorf("redact left a secret: %q", got)
	}
}

func TestFlexibleJSON(t *testing.T) {
	var v struct {
		A flexString `json:"a"`
		B flexString `json:"b"`
		C flexList   `json:"c"`
		D flexList   `json:"d"`
		E flexInt    `json:"e"`
		F flexInt    `json:"f"`
	}
	body := `{"a":17841400000000001,"b":"17841400000000002","c":"x, y,,z","d":["x","y"],"e":"5184000","f":5184000}`
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != "17841400000000001" || v.B != "17841400000000002" {
		t.Errorf("flexString lost precision: %q %q", v.A, v.B)
	}
	if diff := cmp.Diff([]string{"x", "y", "z"}, []string(v.C)); diff != "" {
		t.Errorf("comma list: %s", diff)
	}
	if diff := cmp.Diff([]string{"x", "y"}, []string(v.D)); diff != "" {
		t.Errorf("array list: %s", diff)
	}
	if v.E != 5184000 || v.F != 5184000 {
		t.Errorf("flexInt = %d %d", v.E, v.F)
	}
}
