package controllers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func TestMigrateStatus(t *testing.T) {
	older := &metav1.Time{Time: time.Date(2026, 5, 6, 14, 40, 12, 0, time.UTC)}
	newer := &metav1.Time{Time: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	tests := map[string]struct {
		in, want igv1.InstagramChannelStatus
	}{
		"the former name moves to subscribedAt": {
			in:   igv1.InstagramChannelStatus{SubscriptionCheckedAt: older},
			want: igv1.InstagramChannelStatus{SubscribedAt: older},
		},
		"a value under the new name wins and the former one goes": {
			in:   igv1.InstagramChannelStatus{SubscriptionCheckedAt: older, SubscribedAt: newer},
			want: igv1.InstagramChannelStatus{SubscribedAt: newer},
		},
		"nothing to move": {
			in:   igv1.InstagramChannelStatus{SubscribedAt: newer},
			want: igv1.InstagramChannelStatus{SubscribedAt: newer},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.in
			migrateStatus(&got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}
