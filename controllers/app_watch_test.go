package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func TestChannelLeftAppPredicate(t *testing.T) {
	base := func() *igv1.InstagramChannel {
		return &igv1.InstagramChannel{
			ObjectMeta: metav1.ObjectMeta{Name: "support", Namespace: "shop"},
			Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"}},
		}
	}
	now := metav1.Now()
	for name, tc := range map[string]struct {
		change func(*igv1.InstagramChannel)
		want   bool
	}{
		"status written":     {func(ch *igv1.InstagramChannel) { ch.Status.LastHandledReconcileAt = "x" }, false},
		"finalizer added":    {func(ch *igv1.InstagramChannel) { ch.Finalizers = []string{igv1.ChannelFinalizer} }, false},
		"appRef changed":     {func(ch *igv1.InstagramChannel) { ch.Spec.AppRef.Name = "other" }, true},
		"deletion requested": {func(ch *igv1.InstagramChannel) { ch.DeletionTimestamp = &now }, true},
	} {
		t.Run(name, func(t *testing.T) {
			newCh := base()
			tc.change(newCh)
			if got := channelLeftAppPredicate().Update(event.UpdateEvent{ObjectOld: base(), ObjectNew: newCh}); got != tc.want {
				t.Errorf("Update = %v, want %v", got, tc.want)
			}
		})
	}
	if !channelLeftAppPredicate().Delete(event.DeleteEvent{Object: base()}) {
		t.Error("a deleted channel must wake its app")
	}
	if channelLeftAppPredicate().Create(event.CreateEvent{Object: base()}) {
		t.Error("a new channel does not free its app")
	}
}
