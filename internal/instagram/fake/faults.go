package fake

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"time"
)

// Fault is a failure injected into the next calls of one endpoint.
//
// By default the fault answers instead of the real handler, so the call has
// no effect. With AfterProcessing the real handler runs first (a send is
// recorded, a token issued) and the fault then replaces its answer: that is
// how a send that went out but whose answer was lost looks.
type Fault struct {
	// HTTPStatus of the error answer; default 400 with a Graph error, 500
	// with neither Code nor Body.
	HTTPStatus int
	// Code, Subcode, Type, Message and IsTransient make the Graph error
	// body {"error":{...}}. Type defaults to OAuthException.
	Code        int
	Subcode     int
	Type        string
	Message     string
	IsTransient bool
	// OAuthFlat answers in the code exchange's flat shape
	// {"error_type":"OAuthException","code":400,"error_message":Message}.
	OAuthFlat bool
	// Body, when set, is answered verbatim instead of a Graph error.
	Body string
	// RetryAfter, AppUsage and BusinessUseCaseUsage set the Retry-After,
	// X-App-Usage and X-Business-Use-Case-Usage headers.
	RetryAfter           string
	AppUsage             string
	BusinessUseCaseUsage string
	// Delay waits (wall time) before answering; a fault with only a Delay
	// answers normally after it.
	Delay time.Duration
	// Hang never answers: the request waits until the client gives up.
	Hang bool
	// DropConnection reads the request and closes the connection without
	// an answer.
	DropConnection bool
	// AfterProcessing lets the request take effect before the fault.
	AfterProcessing bool
	// AnswerDelay waits (wall time) after the request took effect (with
	// AfterProcessing) and before answering: a window in which a client
	// that dies leaves a delivered message without an answer.
	AnswerDelay time.Duration
	// Hold keeps the answer back until the channel is closed (or the
	// client gives up): a slow Instagram under the test's control. With
	// AfterProcessing the request has taken effect meanwhile (a send is
	// in Sent()); without it, it takes effect when released.
	Hold <-chan struct{}
}

// answersError reports whether the fault replaces the answer with an error.
func (f *Fault) answersError() bool {
	return f.Code != 0 || f.Body != "" || f.HTTPStatus != 0 || f.OAuthFlat
}

type faultEntry struct {
	remaining int
	fault     Fault
}

// FailNext makes the next n calls of endpoint (an Endpoint* constant) fail
// with f. Faults queue: a second FailNext applies after the first is used up.
func (s *Server) FailNext(endpoint string, n int, f Fault) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[endpoint] = append(s.faults[endpoint], &faultEntry{remaining: n, fault: f})
}

func (s *Server) takeFault(endpoint string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	queue := s.faults[endpoint]
	if len(queue) == 0 {
		return nil
	}
	e := queue[0]
	e.remaining--
	if e.remaining == 0 {
		s.faults[endpoint] = queue[1:]
	}
	f := e.fault
	return &f
}

func (s *Server) serveFault(w *statusWriter, r *http.Request, f *Fault, next func(http.ResponseWriter, *http.Request)) {
	// Read the whole request first: the client has then finished writing
	// it, so a dropped connection leaves the outcome truly unknown, and the
	// server notices a client that gives up (it only watches the
	// connection once the body is consumed).
	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f.Hang {
		<-r.Context().Done()
		return
	}

	var processed *httptest.ResponseRecorder
	if f.AfterProcessing {
		processed = httptest.NewRecorder()
		next(processed, r)
	}

	if f.AnswerDelay > 0 {
		t := time.NewTimer(f.AnswerDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f.Hold != nil {
		select {
		case <-f.Hold:
		case <-r.Context().Done():
			return
		}
	}

	if f.DropConnection {
		conn, _, err := w.Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		_ = conn.Close()
		return
	}

	if !f.answersError() {
		if processed == nil {
			next(w, r)
			return
		}
		for k, v := range processed.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(processed.Code)
		_, _ = w.Write(processed.Body.Bytes())
		return
	}

	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.AppUsage != "" {
		w.Header().Set("X-App-Usage", f.AppUsage)
	}
	if f.BusinessUseCaseUsage != "" {
		w.Header().Set("X-Business-Use-Case-Usage", f.BusinessUseCaseUsage)
	}
	switch {
	case f.Body != "":
		status := f.HTTPStatus
		if status == 0 {
			status = http.StatusInternalServerError
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, f.Body)
	case f.OAuthFlat:
		writeOAuthError(w, f.Message)
	case f.Code != 0:
		writeGraphError(w, &graphError{Status: f.HTTPStatus, Code: f.Code, Subcode: f.Subcode,
			Type: f.Type, Message: f.Message, IsTransient: f.IsTransient})
	default:
		w.WriteHeader(f.HTTPStatus)
	}
}
