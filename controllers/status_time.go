package controllers

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Time fields of status: one meaning for each helper, used by every
// reconciler of this package.

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

// setTime sets *p to t unless it already holds that instant, so an
// unchanged value never shows up as a status change.
func setTime(p **metav1.Time, t time.Time) {
	if t.IsZero() {
		*p = nil
		return
	}
	if *p != nil && (*p).Time.Equal(t) {
		return
	}
	*p = &metav1.Time{Time: t.UTC()}
}
