package names

import (
	"regexp"
	"strings"
	"testing"
)

// dns1123 is the shape Kubernetes requires of an object name.
var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestIncomingMessageName(t *testing.T) {
	a := IncomingMessageName("support", "mid.1")
	if a != IncomingMessageName("support", "mid.1") {
		t.Fatalf("name is not deterministic")
	}
	if !dns1123.MatchString(a) || len(a) > 63 {
		t.Fatalf("name %q is not a valid object name", a)
	}
	for _, other := range []string{
		IncomingMessageName("support", "mid.2"),
		IncomingMessageName("sales", "mid.1"),
		IncomingMessageName("support/mid.1", ""),
	} {
		if other == a {
			t.Fatalf("different inputs gave the same name %q", a)
		}
	}
}

func TestMIDHash(t *testing.T) {
	// Fixed value: the manager and the receiver must compute the same label
	// in every release, so a change here is a breaking change.
	const want = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4" // sha256("")
	if got := MIDHash(""); got != want {
		t.Fatalf("MIDHash(\"\") = %q, want %q", got, want)
	}
	if h := MIDHash("aWdfZAG1faWQ6MTIzNDU2Nzg5"); len(h) != 40 || !regexp.MustCompile(`^[0-9a-f]+$`).MatchString(h) {
		t.Fatalf("MIDHash gave %q, want 40 hex characters", h)
	}
}

func TestContactName(t *testing.T) {
	cases := map[string]struct {
		channel, igsid, want string
	}{
		"readable":    {"support", "5512340000000001", "support-5512340000000001"},
		"dotted":      {"shop.eu", "17", "shop.eu-17"},
		"hyphenated":  {"a-1", "2", "a-1-2"},
		"too long":    {strings.Repeat("c", 250), "12345", "igct-" + hashHex(strings.Repeat("c", 250)+"/12345")},
		"exactly 253": {strings.Repeat("c", 248), "1234", strings.Repeat("c", 248) + "-1234"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := ContactName(tc.channel, tc.igsid); got != tc.want {
				t.Fatalf("ContactName(%q, %q) = %q, want %q", tc.channel, tc.igsid, got, tc.want)
			}
		})
	}
	if ContactName("a-1", "2") == ContactName("a", "12") {
		t.Fatal("different pairs share a name")
	}
}
