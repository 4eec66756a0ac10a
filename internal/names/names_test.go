package names

import (
	"regexp"
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
