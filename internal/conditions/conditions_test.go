package conditions

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var (
	t0 = metav1.NewTime(time.Date(2025, 11, 21, 12, 0, 0, 0, time.UTC))
	t1 = metav1.NewTime(time.Date(2025, 11, 21, 13, 0, 0, 0, time.UTC))
)

func cond(typ string, status metav1.ConditionStatus, reason string, at metav1.Time) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: reason, ObservedGeneration: 1, LastTransitionTime: at}
}

func TestSet(t *testing.T) {
	var conds []metav1.Condition
	Set(&conds, 3, "Ready", metav1.ConditionFalse, "Progressing", "working", t0.Time)
	Set(&conds, 3, "Ready", metav1.ConditionFalse, "Waiting", "still working", t1.Time)
	want := []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: "Waiting", Message: "still working",
		ObservedGeneration: 3, LastTransitionTime: t0}}
	if diff := cmp.Diff(want, conds); diff != "" {
		t.Errorf("same status keeps the transition time (-want +got):\n%s", diff)
	}
	Set(&conds, 4, "Ready", metav1.ConditionTrue, "Ready", "done", t1.Time)
	if got := conds[0]; got.LastTransitionTime != t1 || got.ObservedGeneration != 4 {
		t.Errorf("a new status moves the transition time and generation: %+v", got)
	}
	Remove(&conds, "Ready")
	if len(conds) != 0 {
		t.Errorf("Remove left %v", conds)
	}
}

func TestMerge(t *testing.T) {
	ready := cond("Ready", metav1.ConditionTrue, "Ready", t0)
	authorized := cond("Authorized", metav1.ConditionTrue, "Succeeded", t0)
	refused := cond("Authorized", metav1.ConditionFalse, "TokenInvalid", t1)
	notReady := cond("Ready", metav1.ConditionFalse, "TokenInvalid", t1)
	stalled := cond("Stalled", metav1.ConditionTrue, "TokenInvalid", t1)
	reconciling := cond("Reconciling", metav1.ConditionTrue, "Progressing", t1)
	subscribed := cond("WebhookSubscribed", metav1.ConditionTrue, "Subscribed", t1)

	cases := map[string]struct {
		current, before, after []metav1.Condition
		want                   []metav1.Condition
		wantChanged            []string
	}{
		"a writer that changed nothing keeps the other writer's conditions": {
			current:     []metav1.Condition{notReady, refused, stalled},
			before:      []metav1.Condition{ready, authorized},
			after:       []metav1.Condition{ready, authorized},
			want:        []metav1.Condition{notReady, refused, stalled},
			wantChanged: nil,
		},
		"the writer's changed types win, the others stay": {
			current:     []metav1.Condition{notReady, refused, stalled},
			before:      []metav1.Condition{ready, authorized},
			after:       []metav1.Condition{ready, authorized, subscribed},
			want:        []metav1.Condition{notReady, refused, stalled, subscribed},
			wantChanged: []string{"WebhookSubscribed"},
		},
		"a removal by the writer is applied": {
			current:     []metav1.Condition{ready, reconciling, refused},
			before:      []metav1.Condition{ready, reconciling},
			after:       []metav1.Condition{ready},
			want:        []metav1.Condition{ready, refused},
			wantChanged: []string{"Reconciling"},
		},
		"a change of the same type: the writer's value, with the stored transition time when the status is the same": {
			current:     []metav1.Condition{cond("Ready", metav1.ConditionFalse, "RefreshFailing", t0)},
			before:      []metav1.Condition{ready},
			after:       []metav1.Condition{cond("Ready", metav1.ConditionFalse, "RateLimited", t1)},
			want:        []metav1.Condition{cond("Ready", metav1.ConditionFalse, "RateLimited", t0)},
			wantChanged: []string{"Ready"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.wantChanged, Changed(tc.before, tc.after)); diff != "" {
				t.Errorf("Changed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, Merge(tc.current, tc.before, tc.after)); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
		})
	}
}
