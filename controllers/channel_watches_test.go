package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func TestAppChangedPredicate(t *testing.T) {
	base := func() *igv1.ClusterInstagramApp {
		return &igv1.ClusterInstagramApp{
			ObjectMeta: metav1.ObjectMeta{Name: "acme", ResourceVersion: "1"},
			Spec:       igv1.AppSpec{AppID: "1", SecretRef: igv1.LocalObjectReference{Name: "s"}},
			Status:     igv1.AppStatus{RedirectURL: "https://hooks.shop.test/instagram/callback"},
		}
	}
	now := metav1.Now()
	for name, tc := range map[string]struct {
		change func(*igv1.ClusterInstagramApp)
		want   bool
	}{
		"finalizer added":    {func(a *igv1.ClusterInstagramApp) { a.Finalizers = []string{igv1.AppFinalizer} }, false},
		"labels changed":     {func(a *igv1.ClusterInstagramApp) { a.Labels = map[string]string{"team": "x"} }, false},
		"spec changed":       {func(a *igv1.ClusterInstagramApp) { a.Spec.AppID = "2" }, true},
		"status changed":     {func(a *igv1.ClusterInstagramApp) { a.Status.RedirectURL = "" }, true},
		"deletion requested": {func(a *igv1.ClusterInstagramApp) { a.DeletionTimestamp = &now }, true},
	} {
		t.Run(name, func(t *testing.T) {
			newApp := base()
			newApp.ResourceVersion = "2"
			tc.change(newApp)
			if got := appChangedPredicate().Update(event.UpdateEvent{ObjectOld: base(), ObjectNew: newApp}); got != tc.want {
				t.Errorf("Update = %v, want %v", got, tc.want)
			}
		})
	}
	if !appChangedPredicate().Create(event.CreateEvent{Object: base()}) || !appChangedPredicate().Delete(event.DeleteEvent{Object: base()}) {
		t.Error("creation and deletion of an app must reach its channels")
	}
}
