// Package conditions is the one condition helper of every reconciler, in
// the spirit of Flux's runtime/conditions: conditions are set the same way
// everywhere (observedGeneration of the object, transition time from the
// reconciler's clock), and a status writer that lost an optimistic-lock
// race re-applies only the conditions it changed on top of what the other
// writer stored, so neither clobbers the other.
package conditions

import (
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Set sets the condition condType on conds. observedGeneration is the
// object's generation; now is the transition time, used only when the
// status changes (meta.SetStatusCondition keeps it otherwise). A zero now
// means the wall clock.
func Set(conds *[]metav1.Condition, generation int64, condType string, status metav1.ConditionStatus, reason, message string, now time.Time) {
	c := metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	}
	if !now.IsZero() {
		c.LastTransitionTime = metav1.NewTime(now)
	}
	meta.SetStatusCondition(conds, c)
}

// Remove removes the condition condType from conds.
func Remove(conds *[]metav1.Condition, condType string) {
	meta.RemoveStatusCondition(conds, condType)
}

// Changed lists the condition types that differ between before and after:
// added, removed, or with another status, reason, message or
// observedGeneration. A new transition time alone is no change.
func Changed(before, after []metav1.Condition) []string {
	var types []string
	for _, a := range after {
		if b := meta.FindStatusCondition(before, a.Type); b == nil || !same(*b, a) {
			types = append(types, a.Type)
		}
	}
	for _, b := range before {
		if meta.FindStatusCondition(after, b.Type) == nil {
			types = append(types, b.Type)
		}
	}
	slices.Sort(types)
	return types
}

// Merge re-applies one writer's changes to another writer's newer
// conditions: for every type the writer changed between before (what it
// read) and after (what it wants), after's condition (or its absence)
// wins; every other type keeps current's, the stored value the writer had
// not seen. Order follows current, with added types at the end.
func Merge(current, before, after []metav1.Condition) []metav1.Condition {
	out := slices.Clone(current)
	for _, t := range Changed(before, after) {
		if c := meta.FindStatusCondition(after, t); c != nil {
			// Keeps current's transition time when the status is the
			// same: the status did not transition again.
			meta.SetStatusCondition(&out, *c)
		} else {
			meta.RemoveStatusCondition(&out, t)
		}
	}
	return out
}

func same(a, b metav1.Condition) bool {
	return a.Status == b.Status && a.Reason == b.Reason && a.Message == b.Message && a.ObservedGeneration == b.ObservedGeneration
}
