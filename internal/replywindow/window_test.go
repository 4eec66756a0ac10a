package replywindow

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestCompute(t *testing.T) {
	const msg = "2026-03-01T10:00:00.250Z"
	cases := map[string]struct {
		events Events
		now    string
		want   Windows
	}{
		"nothing recorded: Instagram decides": {
			now:  "2026-03-01T10:00:00Z",
			want: Windows{State: Unknown},
		},
		"message, just after": {
			events: Events{Opened: at(msg)},
			now:    "2026-03-01T10:00:01Z",
			want: Windows{State: Open, StandardClosesAt: at("2026-03-02T10:00:00.250Z"),
				HumanAgentClosesAt: at("2026-03-08T10:00:00.250Z"), NextChange: at("2026-03-02T10:00:00.250Z")},
		},
		"one millisecond before 24 h": {
			events: Events{Opened: at(msg)},
			now:    "2026-03-02T10:00:00.249Z",
			want: Windows{State: Open, StandardClosesAt: at("2026-03-02T10:00:00.250Z"),
				HumanAgentClosesAt: at("2026-03-08T10:00:00.250Z"), NextChange: at("2026-03-02T10:00:00.250Z")},
		},
		"exactly 24 h: closed, HUMAN_AGENT open": {
			events: Events{Opened: at(msg)},
			now:    "2026-03-02T10:00:00.250Z",
			want: Windows{State: HumanAgentOnly, StandardClosesAt: at("2026-03-02T10:00:00.250Z"),
				HumanAgentClosesAt: at("2026-03-08T10:00:00.250Z"), NextChange: at("2026-03-08T10:00:00.250Z")},
		},
		"one millisecond before 7 d": {
			events: Events{Opened: at(msg)},
			now:    "2026-03-08T10:00:00.249Z",
			want: Windows{State: HumanAgentOnly, StandardClosesAt: at("2026-03-02T10:00:00.250Z"),
				HumanAgentClosesAt: at("2026-03-08T10:00:00.250Z"), NextChange: at("2026-03-08T10:00:00.250Z")},
		},
		"exactly 7 d: closed": {
			events: Events{Opened: at(msg)},
			now:    "2026-03-08T10:00:00.250Z",
			want: Windows{State: Closed, StandardClosesAt: at("2026-03-02T10:00:00.250Z"),
				HumanAgentClosesAt: at("2026-03-08T10:00:00.250Z")},
		},
		"unconfirmed event alone (story mention, postback, referral, reaction): unknown for 24 h": {
			events: Events{Unconfirmed: at(msg)},
			now:    "2026-03-01T12:00:00Z",
			want:   Windows{State: Unknown, NextChange: at("2026-03-02T10:00:00.250Z")},
		},
		"unconfirmed event alone, after 24 h: still unknown (HUMAN_AGENT may work)": {
			events: Events{Unconfirmed: at(msg)},
			now:    "2026-03-03T12:00:00Z",
			want:   Windows{State: Unknown, NextChange: at("2026-03-08T10:00:00.250Z")},
		},
		"unconfirmed event alone, after 7 d: closed": {
			events: Events{Unconfirmed: at(msg)},
			now:    "2026-03-08T10:00:00.250Z",
			want:   Windows{State: Closed},
		},
		"unconfirmed event after a message: unknown past the message's 24 h": {
			events: Events{Opened: at(msg), Unconfirmed: at("2026-03-02T09:00:00Z")},
			now:    "2026-03-02T11:00:00Z",
			want: Windows{State: Unknown, StandardClosesAt: at("2026-03-02T10:00:00.250Z"),
				HumanAgentClosesAt: at("2026-03-08T10:00:00.250Z"), NextChange: at("2026-03-03T09:00:00Z")},
		},
		"unconfirmed event older than the message changes nothing": {
			events: Events{Opened: at(msg), Unconfirmed: at("2026-02-28T09:00:00Z")},
			now:    "2026-03-02T11:00:00Z",
			want: Windows{State: HumanAgentOnly, StandardClosesAt: at("2026-03-02T10:00:00.250Z"),
				HumanAgentClosesAt: at("2026-03-08T10:00:00.250Z"), NextChange: at("2026-03-08T10:00:00.250Z")},
		},
		"Instagram refused inside the computed window: closed at the refusal": {
			events: Events{Opened: at(msg), Refused: at("2026-03-01T20:00:00Z")},
			now:    "2026-03-01T20:00:01Z",
			want: Windows{State: HumanAgentOnly, StandardClosesAt: at("2026-03-01T20:00:00Z"),
				HumanAgentClosesAt: at("2026-03-08T10:00:00.250Z"), NextChange: at("2026-03-08T10:00:00.250Z")},
		},
		"Instagram refused a HUMAN_AGENT send: both closed": {
			events: Events{Opened: at(msg), Refused: at("2026-03-03T20:00:00Z"), RefusedHumanAgent: true},
			now:    "2026-03-03T20:00:01Z",
			want: Windows{State: Closed, StandardClosesAt: at("2026-03-02T10:00:00.250Z"),
				HumanAgentClosesAt: at("2026-03-03T20:00:00Z")},
		},
		"a message after the refusal opens the window again": {
			events: Events{Opened: at("2026-03-02T08:00:00Z"), Refused: at("2026-03-01T20:00:00Z"), RefusedHumanAgent: true},
			now:    "2026-03-02T09:00:00Z",
			want: Windows{State: Open, StandardClosesAt: at("2026-03-03T08:00:00Z"),
				HumanAgentClosesAt: at("2026-03-09T08:00:00Z"), NextChange: at("2026-03-03T08:00:00Z")},
		},
		"refusal after an unconfirmed event: it did not open the window": {
			events: Events{Unconfirmed: at(msg), Refused: at("2026-03-01T11:00:00Z")},
			now:    "2026-03-01T11:00:01Z",
			want:   Windows{State: Unknown, NextChange: at("2026-03-08T10:00:00.250Z")},
		},
		"refused HUMAN_AGENT send with nothing recorded: closed": {
			events: Events{Refused: at(msg), RefusedHumanAgent: true},
			now:    "2026-03-01T11:00:00Z",
			want:   Windows{State: Closed},
		},
		"refused plain send with nothing recorded: Instagram decides": {
			events: Events{Refused: at(msg)},
			now:    "2026-03-01T11:00:00Z",
			want:   Windows{State: Unknown},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Compute(tc.events, at(tc.now))
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("Compute (-want +got):\n%s", d)
			}
		})
	}
}

// Events recorded in any order give the same answer: the record keeps the
// latest of each kind, so Compute sees only the maximum.
func TestComputeOrderIndependent(t *testing.T) {
	times := []time.Time{at("2026-03-01T10:00:00Z"), at("2026-03-01T09:00:00Z"), at("2026-03-01T11:30:00Z")}
	var fwd, rev Events
	for i := range times {
		fwd.Opened = Latest(fwd.Opened, times[i])
		rev.Opened = Latest(rev.Opened, times[len(times)-1-i])
	}
	now := at("2026-03-02T11:00:00Z")
	if d := cmp.Diff(Compute(fwd, now), Compute(rev, now)); d != "" {
		t.Fatalf("order matters (-fwd +rev):\n%s", d)
	}
	if got := Compute(fwd, now).State; got != Open {
		t.Fatalf("state %s, want Open (the latest message is 23.5 h old)", got)
	}
}

func TestAllows(t *testing.T) {
	cases := map[string]struct {
		state         State
		plain, tagged bool
	}{
		"open":        {Open, true, true},
		"human agent": {HumanAgentOnly, false, true},
		"closed":      {Closed, false, false},
		"unknown":     {Unknown, true, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := Windows{State: tc.state}
			if w.Allows(false) != tc.plain || w.Allows(true) != tc.tagged {
				t.Fatalf("Allows(false)=%v Allows(true)=%v, want %v %v", w.Allows(false), w.Allows(true), tc.plain, tc.tagged)
			}
		})
	}
}
