package sink

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestClassify(t *testing.T) {
	tests := map[string]struct {
		status    int
		permanent bool
		reason    string
	}{
		"bad request":       {400, true, "refused"},
		"unauthorized":      {401, true, "refused"},
		"forbidden":         {403, true, "refused"},
		"not found":         {404, true, "refused"},
		"too large":         {413, true, "refused"},
		"request timeout":   {408, false, "throttled"},
		"too many requests": {429, false, "throttled"},
		"server error":      {500, false, "unavailable"},
		"bad gateway":       {502, false, "unavailable"},
		"unavailable":       {503, false, "unavailable"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			permanent, reason := Classify(tc.status)
			if permanent != tc.permanent || reason != tc.reason {
				t.Errorf("Classify(%d) = %v, %q; want %v, %q", tc.status, permanent, reason, tc.permanent, tc.reason)
			}
		})
	}
}

func testEvent(t *testing.T) cloudevents.Event {
	t.Helper()
	ev, err := New(Spec{Namespace: "ns", Channel: "ch", Type: TypeMessageReceived, Key: "mid.1", Subject: "55", Time: time.UnixMilli(1793534400001), Data: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestSendStatus: what the sink answers decides the error class.
func TestSendStatus(t *testing.T) {
	tests := map[string]struct {
		status    int
		wantErr   bool
		permanent bool
		reason    string
	}{
		"accepted":    {http.StatusAccepted, false, false, ""},
		"ok":          {http.StatusOK, false, false, ""},
		"refused":     {http.StatusBadRequest, true, true, "refused"},
		"throttled":   {http.StatusTooManyRequests, true, false, "throttled"},
		"unavailable": {http.StatusServiceUnavailable, true, false, "unavailable"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got http.Header
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Header.Clone()
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			err := NewSender(Options{}).Send(context.Background(), Target{URI: srv.URL}, testEvent(t), time.Second)
			if (err != nil) != tc.wantErr || IsPermanent(err) != tc.permanent || (err != nil && ReasonOf(err) != tc.reason) {
				t.Fatalf("err = %v (permanent %v, reason %q)", err, IsPermanent(err), ReasonOf(err))
			}
			// Binary mode: attributes as ce- headers, the data as the body.
			if got.Get("Ce-Id") == "" || got.Get("Ce-Type") != TypeMessageReceived || got.Get("Ce-Partitionkey") != "ns/ch/55" || got.Get("Content-Type") != "application/json" {
				t.Errorf("headers %v", got)
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	err := NewSender(Options{}).Send(context.Background(), Target{URI: srv.URL}, testEvent(t), 50*time.Millisecond)
	if err == nil || IsPermanent(err) || ReasonOf(err) != "timeout" {
		t.Fatalf("err = %v, reason %q", err, ReasonOf(err))
	}
}

// TestBreaker: after BreakerFailures transient failures the sink is not
// called until the cooldown ends; then one probe goes, and its success
// closes the circuit. A 4xx is an answer and never opens it.
func TestBreaker(t *testing.T) {
	var calls atomic.Int32
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	s := NewSender(Options{BreakerFailures: 3, BreakerCooldown: 10 * time.Second, Clock: clk})
	tg := Target{URI: srv.URL}
	send := func() error { return s.Send(context.Background(), tg, testEvent(t), time.Second) }
	for range 3 {
		if err := send(); ReasonOf(err) != "unavailable" {
			t.Fatalf("err = %v", err)
		}
	}
	if !s.Open(tg) {
		t.Fatal("circuit not open after 3 failures")
	}
	if err := send(); ReasonOf(err) != "circuit_open" || calls.Load() != 3 {
		t.Fatalf("open circuit: err = %v, calls %d", err, calls.Load())
	}
	clk.Step(10 * time.Second)
	status.Store(http.StatusOK)
	if err := send(); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if s.Open(tg) || calls.Load() != 4 {
		t.Fatalf("after a good probe: open %v, calls %d", s.Open(tg), calls.Load())
	}
	status.Store(http.StatusBadRequest)
	for range 5 {
		if err := send(); !IsPermanent(err) {
			t.Fatalf("err = %v", err)
		}
	}
	if s.Open(tg) {
		t.Fatal("4xx answers opened the circuit")
	}
}

// TestMaxInFlight: a sink with every slot taken fails further attempts as
// busy (transient) at their deadline instead of queueing them.
func TestMaxInFlight(t *testing.T) {
	release := make(chan struct{})
	var inFlight, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
	}))
	defer srv.Close()
	s := NewSender(Options{MaxInFlight: 2})
	tg := Target{URI: srv.URL}
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- s.Send(context.Background(), tg, testEvent(t), 5*time.Second) }()
	}
	for inFlight.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	err := s.Send(context.Background(), tg, testEvent(t), 100*time.Millisecond)
	if ReasonOf(err) != "busy" || IsPermanent(err) {
		t.Fatalf("third attempt: %v", err)
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if peak.Load() != 2 {
		t.Fatalf("peak in flight %d", peak.Load())
	}
}

func TestIDs(t *testing.T) {
	at := time.UnixMilli(1793534400001)
	base := ID("ns", "ch", TypeMessageReceived, "mid", at)
	if len(base) != 32 {
		t.Fatalf("id %q", base)
	}
	if ID("ns", "ch", TypeMessageReceived, "mid", at.Add(500*time.Microsecond)) != base {
		t.Error("the id depends on time below the millisecond")
	}
	for name, other := range map[string]string{
		"namespace": ID("ns2", "ch", TypeMessageReceived, "mid", at),
		"channel":   ID("ns", "ch2", TypeMessageReceived, "mid", at),
		"type":      ID("ns", "ch", TypeMessageEcho, "mid", at),
		"key":       ID("ns", "ch", TypeMessageReceived, "mid2", at),
		"time":      ID("ns", "ch", TypeMessageReceived, "mid", at.Add(time.Millisecond)),
		"boundary":  ID("ns", "chm", TypeMessageReceived, "id", at),
	} {
		if other == base {
			t.Errorf("a different %s gives the same id", name)
		}
	}
}

func TestRedactURI(t *testing.T) {
	if got := RedactURI("https://user:pw@sink.example/path?token=x#f"); got != "https://sink.example/path" {
		t.Errorf("RedactURI = %q", got)
	}
}
