package webhookserver

import (
	"net/http"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.5")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		trusted bool
		remote  string
		xff     []string
		want    string
	}{
		"no trusted proxy: the peer":            {false, "10.1.2.3:5555", []string{"203.0.113.7"}, "10.1.2.3"},
		"untrusted peer: header ignored":        {true, "198.51.100.1:5555", []string{"203.0.113.7"}, "198.51.100.1"},
		"trusted peer: the forwarded client":    {true, "10.1.2.3:5555", []string{"203.0.113.7"}, "203.0.113.7"},
		"chain of trusted proxies":              {true, "10.1.2.3:5555", []string{"203.0.113.7, 192.168.1.5, 10.9.9.9"}, "203.0.113.7"},
		"client-written prefix is not believed": {true, "10.1.2.3:5555", []string{"1.1.1.1, 203.0.113.7"}, "203.0.113.7"},
		"several header lines":                  {true, "10.1.2.3:5555", []string{"1.1.1.1", "203.0.113.7"}, "203.0.113.7"},
		"only proxies: the leftmost":            {true, "10.1.2.3:5555", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		"garbage: the last readable hop":        {true, "10.1.2.3:5555", []string{"junk, 10.0.0.2"}, "10.0.0.2"},
		"no header: the proxy":                  {true, "10.1.2.3:5555", nil, "10.1.2.3"},
		"IPv6 client":                           {true, "10.1.2.3:5555", []string{"2001:db8::1"}, "2001:db8::1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := clientAddr{}
			if tc.trusted {
				c.trusted = proxies
			}
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := c.of(r); got != tc.want {
				t.Fatalf("client = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxiesRefusesGarbage(t *testing.T) {
	for _, s := range []string{"10.0.0.0/33", "not-an-ip", "10.0.0.0/8,,nope"} {
		if _, err := ParseTrustedProxies(s); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted", s)
		}
	}
}

func TestFailureLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newFailureLimiter(1, 2)
	if !l.allow("a", t0) {
		t.Fatal("a client with no failure is refused")
	}
	l.fail("a", t0)
	l.fail("a", t0)
	if l.allow("a", t0) {
		t.Fatal("allowed past the burst of failures")
	}
	if !l.allow("b", t0) {
		t.Fatal("another client is held back")
	}
	if !l.allow("a", t0.Add(time.Second)) {
		t.Fatal("the budget does not refill")
	}
}
