package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// SendLease records who sends an outgoing message and until when. It is
// written with phase Sending, in the same optimistic-locked status write,
// and removed with the outcome. Another manager (a new leader) treats the
// send as interrupted only once expiresAt has passed: until then the
// request may still be in flight, or its answer still being written.
type SendLease struct {
	// holder identifies the manager process that sends (its pod name and
	// a per-process suffix).
	Holder string `json:"holder"`

	// expiresAt is when the holder has given up: the longest send plus
	// the longest outcome write, plus a margin for clock skew between
	// managers.
	ExpiresAt metav1.Time `json:"expiresAt"`
}
