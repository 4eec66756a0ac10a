package replywindow

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// Of reads the events a contact's status records.
func Of(s *igv1.InstagramContactStatus) Events {
	w := &s.Window
	return Events{
		Opened:            micro(w.OpenedAt),
		Unconfirmed:       micro(w.UnconfirmedAt),
		Refused:           micro(w.RefusedAt),
		RefusedHumanAgent: w.RefusedHumanAgent,
	}
}

// Apply writes w into a contact's status and its window label, and reports
// whether anything changed.
func Apply(c *igv1.InstagramContact, w Windows) bool {
	s := &c.Status.Window
	changed := false
	if s.State != igv1.WindowState(w.State) {
		s.State, changed = igv1.WindowState(w.State), true
	}
	if setMicro(&s.StandardClosesAt, w.StandardClosesAt) {
		changed = true
	}
	if setMicro(&s.HumanAgentClosesAt, w.HumanAgentClosesAt) {
		changed = true
	}
	if c.Labels[igv1.LabelWindow] != Label(w.State) {
		labels := make(map[string]string, len(c.Labels)+1)
		for k, v := range c.Labels {
			labels[k] = v
		}
		labels[igv1.LabelWindow] = Label(w.State)
		c.Labels, changed = labels, true
	}
	return changed
}

// Label is the instagram.leadchat.io/window value of a state.
func Label(s State) string {
	switch s {
	case Open:
		return igv1.WindowLabelOpen
	case HumanAgentOnly:
		return igv1.WindowLabelHumanAgent
	case Closed:
		return igv1.WindowLabelClosed
	}
	return igv1.WindowLabelUnknown
}

func micro(t *metav1.MicroTime) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

// setMicro sets *p to t (nil for a zero t) and reports a change. Times are
// compared at the microsecond the API stores.
func setMicro(p **metav1.MicroTime, t time.Time) bool {
	if t.IsZero() {
		if *p == nil {
			return false
		}
		*p = nil
		return true
	}
	t = t.UTC().Truncate(time.Microsecond)
	if *p != nil && (*p).Time.Equal(t) {
		return false
	}
	m := metav1.NewMicroTime(t)
	*p = &m
	return true
}
