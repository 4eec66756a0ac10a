package fake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Graph error codes the fake answers with.
const (
	codeUnsupported       = 100
	codeClientSecret      = 101
	codeTokenMissing      = 104
	codeAccessToken       = 190
	codePermission        = 10
	codeConsentRequired   = 230
	codeUserUnavailable   = 551
	codeActiveTokenNeeded = 2500

	subcodeObjectNotFound = 33
	subcodeAppRemoved     = 458
	subcodePasswordChange = 460
	subcodeExpired        = 463
	subcodeLoggedOut      = 467
	subcodeOutsideWindow  = 2534022
	subcodeUnavailable    = 1545041
)

// graphError is Meta's {"error":{...}} answer.
type graphError struct {
	Status      int
	Code        int
	Subcode     int
	Type        string
	Message     string
	IsTransient bool
}

type graphErrorJSON struct {
	Message     string `json:"message"`
	Type        string `json:"type"`
	Code        int    `json:"code"`
	Subcode     int    `json:"error_subcode,omitempty"`
	IsTransient bool   `json:"is_transient"`
	FBTraceID   string `json:"fbtrace_id"`
}

func writeGraphError(w http.ResponseWriter, e *graphError) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	typ := e.Type
	if typ == "" {
		typ = "OAuthException"
	}
	writeJSON(w, status, map[string]graphErrorJSON{"error": {
		Message: e.Message, Type: typ, Code: e.Code, Subcode: e.Subcode,
		IsTransient: e.IsTransient, FBTraceID: newTraceID(),
	}})
}

// writeOAuthError writes the code exchange's flat error shape.
func writeOAuthError(w http.ResponseWriter, message string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"error_type": "OAuthException", "code": 400, "error_message": message,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func errInvalidToken() *graphError {
	return &graphError{Code: codeAccessToken, Message: "Invalid OAuth access token - Cannot parse access token"}
}

// metaTime formats times as Meta's token errors do.
func metaTime(t time.Time) string {
	return t.UTC().Format("Monday, 02-Jan-06 15:04:05 MST")
}

func errTokenSubcode(subcode int, appID, userID string, expiresAt, now time.Time) *graphError {
	msg := "Error validating access token"
	switch subcode {
	case subcodeAppRemoved:
		msg = fmt.Sprintf("Error validating access token: User %s has not authorized application %s.", userID, appID)
	case subcodePasswordChange:
		msg = "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."
	case subcodeExpired:
		msg = fmt.Sprintf("Error validating access token: Session has expired on %s. The current time is %s.", metaTime(expiresAt), metaTime(now))
	case subcodeLoggedOut:
		msg = "Error validating access token: The session is invalid because the user logged out."
	}
	return &graphError{Code: codeAccessToken, Subcode: subcode, Message: msg}
}

func errUnsupportedMethod(method string) *graphError {
	return &graphError{Code: codeUnsupported, Type: "GraphMethodException",
		Message: "Unsupported request - method type: " + strings.ToLower(method)}
}

func errObjectNotFound(method, id string) *graphError {
	return &graphError{Code: codeUnsupported, Subcode: subcodeObjectNotFound, Type: "GraphMethodException",
		Message: fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", strings.ToLower(method), id)}
}

func errParam(msg string) *graphError {
	return &graphError{Code: codeUnsupported, Message: "(#100) " + msg}
}

func errPermission() *graphError {
	return &graphError{Code: codePermission, Status: http.StatusForbidden,
		Message: "(#10) Application does not have permission for this action"}
}
