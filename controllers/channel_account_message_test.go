package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func TestDuplicateAccountMessage(t *testing.T) {
	ch := func(ns, name string) *igv1.InstagramChannel {
		return &igv1.InstagramChannel{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Status:     igv1.InstagramChannelStatus{Account: &igv1.AccountStatus{UserID: "17841400000000001", Username: "acme.support"}},
		}
	}
	tests := map[string]struct {
		ch, owner *igv1.InstagramChannel
		want      string
		hidden    []string
	}{
		"same namespace: the other channel is named": {
			ch: ch("team-a", "support-2"), owner: ch("team-a", "support"),
			want: "account @acme.support (userID 17841400000000001) is already served by channel support of this namespace; only one channel of an account is active",
		},
		"another tenant: neither namespace nor channel is told": {
			ch: ch("team-b", "mine"), owner: ch("team-a", "secret-project"),
			want:   "account @acme.support (userID 17841400000000001) is already served by a channel in another namespace; only one channel of an account is active (ask your platform team)",
			hidden: []string{"team-a", "secret-project"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := duplicateAccountMessage(tc.ch, tc.owner, "17841400000000001")
			if got != tc.want {
				t.Fatalf("message:\n got %q\nwant %q", got, tc.want)
			}
			for _, h := range tc.hidden {
				if strings.Contains(got, h) {
					t.Fatalf("message reveals %q: %s", h, got)
				}
			}
		})
	}
}
