// Package replywindow computes when Instagram accepts replies to a customer,
// from the customer's events the operator recorded. The receiver (when it
// records an event) and the manager (when a window closes, and before a
// send) both compute it with this package, so the two cannot disagree.
//
// Meta's rules (INSTAGRAM-API.md, "Sending, extended"): a customer message
// (text, media, share, story reply, quick-reply tap) opens a 24-hour window
// for any reply; HUMAN_AGENT tagged replies are allowed for 7 days after it.
// Whether a story mention, a postback (ice breaker, menu or button tap), a
// referral or a reaction opens it is not confirmed: such an event is kept
// apart as "unconfirmed", and while it might have opened a window the
// computation says Unknown rather than Closed, so nothing is refused that
// Instagram might accept. Instagram's refusal of a send (subcode 2534022)
// overrides the computation until the customer's next event.
package replywindow

import "time"

// Meta's windows.
const (
	Standard   = 24 * time.Hour
	HumanAgent = 7 * 24 * time.Hour
)

// State is whether replies are accepted now.
type State string

const (
	Open           State = "Open"
	HumanAgentOnly State = "HumanAgent"
	Closed         State = "Closed"
	Unknown        State = "Unknown"
)

// Events are the customer's recorded events that bear on the window. A zero
// time means none is recorded.
type Events struct {
	// Opened is the last event known to open the window.
	Opened time.Time
	// Unconfirmed is the last event that may or may not open it.
	Unconfirmed time.Time
	// Refused is when Instagram last refused a send as outside the window;
	// RefusedHumanAgent says that send was tagged HUMAN_AGENT.
	Refused           time.Time
	RefusedHumanAgent bool
}

// Windows is the computed state.
type Windows struct {
	State State
	// StandardClosesAt and HumanAgentClosesAt are when the windows opened
	// by Events.Opened close (earlier when Instagram refused a send); zero
	// when no opening event is recorded.
	StandardClosesAt   time.Time
	HumanAgentClosesAt time.Time
	// NextChange is when State changes next without a new event; zero when
	// it never does.
	NextChange time.Time
}

// Compute is the window state at now.
func Compute(e Events, now time.Time) Windows {
	var w Windows
	if !e.Opened.IsZero() {
		w.StandardClosesAt = e.Opened.Add(Standard)
		w.HumanAgentClosesAt = e.Opened.Add(HumanAgent)
		// A refusal after the last opening event is Instagram's word that
		// the window is closed then, whatever the record computes. A
		// refused HUMAN_AGENT send closes both: the 24-hour window lies
		// inside the 7-day one.
		if refusedSince(e, e.Opened) {
			w.StandardClosesAt = earliest(w.StandardClosesAt, e.Refused)
			if e.RefusedHumanAgent {
				w.HumanAgentClosesAt = earliest(w.HumanAgentClosesAt, e.Refused)
			}
		}
	}
	// An unconfirmed event newer than the opening one may have opened the
	// windows again, unless Instagram refused a send after it.
	var mayStandard, mayHumanAgent time.Time
	if e.Unconfirmed.After(e.Opened) {
		if !refusedSince(e, e.Unconfirmed) {
			mayStandard = e.Unconfirmed.Add(Standard)
		}
		if !refusedSince(e, e.Unconfirmed) || !e.RefusedHumanAgent {
			mayHumanAgent = e.Unconfirmed.Add(HumanAgent)
		}
	}
	switch {
	case now.Before(w.StandardClosesAt):
		w.State, w.NextChange = Open, w.StandardClosesAt
	case now.Before(mayStandard):
		w.State, w.NextChange = Unknown, mayStandard
	case now.Before(w.HumanAgentClosesAt):
		w.State, w.NextChange = HumanAgentOnly, w.HumanAgentClosesAt
	case now.Before(mayHumanAgent):
		w.State, w.NextChange = Unknown, mayHumanAgent
	case e.Opened.IsZero() && e.Unconfirmed.IsZero() && !(e.RefusedHumanAgent && !e.Refused.IsZero()):
		// Nothing recorded: the history predates the operator, and
		// Instagram decides. (Only a refused HUMAN_AGENT send says for
		// sure that every window is closed.)
		w.State = Unknown
	default:
		w.State = Closed
	}
	return w
}

// refusedSince reports whether Instagram refused a send at or after t.
func refusedSince(e Events, t time.Time) bool {
	return !e.Refused.IsZero() && !e.Refused.Before(t)
}

// Allows reports whether the record says a reply goes out at now: tagged
// says the reply carries HUMAN_AGENT. Unknown always allows (Instagram
// decides).
func (w Windows) Allows(tagged bool) bool {
	switch w.State {
	case Open, Unknown:
		return true
	case HumanAgentOnly:
		return tagged
	}
	return false
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Latest is the later of two times (a zero time is older than any): how a
// record keeps the last event of a kind when events arrive out of order.
func Latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
