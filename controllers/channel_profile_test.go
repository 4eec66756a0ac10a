package controllers

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

func TestPlanProfile(t *testing.T) {
	ice := []instagram.IceBreakers{{Locale: "default", Questions: []instagram.IceBreaker{{Question: "Hours?", Payload: "H"}}}}
	menu := []instagram.PersistentMenu{{Locale: "default", Items: []instagram.MenuItem{{Type: "postback", Title: "Agent", Payload: "A"}}}}
	other := []instagram.IceBreakers{{Locale: "default", Questions: []instagram.IceBreaker{{Question: "Other?", Payload: "O"}}}}
	cases := map[string]struct {
		want, have instagram.MessengerProfile
		managed    *igv1.ProfileStatus
		plan       profilePlan
	}{
		"in sync":                 {want: instagram.MessengerProfile{IceBreakers: ice}, have: instagram.MessengerProfile{IceBreakers: ice}},
		"first apply":             {want: instagram.MessengerProfile{IceBreakers: ice, PersistentMenu: menu}, plan: profilePlan{set: instagram.MessengerProfile{IceBreakers: ice, PersistentMenu: menu}}},
		"drift of one field":      {want: instagram.MessengerProfile{IceBreakers: ice, PersistentMenu: menu}, have: instagram.MessengerProfile{IceBreakers: other, PersistentMenu: menu}, plan: profilePlan{set: instagram.MessengerProfile{IceBreakers: ice}}},
		"removed from the spec":   {have: instagram.MessengerProfile{IceBreakers: ice}, managed: &igv1.ProfileStatus{IceBreakers: true}, plan: profilePlan{delete: []string{"ice_breakers"}}},
		"someone else's menu":     {want: instagram.MessengerProfile{IceBreakers: ice}, have: instagram.MessengerProfile{IceBreakers: ice, PersistentMenu: menu}, managed: &igv1.ProfileStatus{IceBreakers: true}},
		"removed, already absent": {managed: &igv1.ProfileStatus{PersistentMenu: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := planProfile(tc.want, tc.have, tc.managed)
			if diff := cmp.Diff(tc.plan, got, cmp.AllowUnexported(profilePlan{})); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

var _ = Describe("InstagramChannel messenger profile", func() {
	iceBreakers := []igv1.IceBreakerLocale{
		{Locale: "default", Questions: []igv1.IceBreaker{{Question: "What are your opening hours?", Payload: "HOURS"}, {Question: "Do you ship abroad?", Payload: "SHIPPING"}}},
		{Locale: "de_DE", Questions: []igv1.IceBreaker{{Question: "Wann habt ihr offen?", Payload: "HOURS"}}},
	}
	const wantIce = `[{"call_to_actions":[{"question":"Wann habt ihr offen?","payload":"HOURS"}],"locale":"de_DE"},
		{"call_to_actions":[{"question":"What are your opening hours?","payload":"HOURS"},{"question":"Do you ship abroad?","payload":"SHIPPING"}],"locale":"default"}]`

	It("applies ice breakers, repairs drift on the check, and removes them when they leave the spec", func() {
		e := newChannelEnv()
		acc := e.adopt("support")
		Expect(e.ig.CallCount(fake.EndpointMessengerProfile)).To(BeZero(), "a channel without a profile makes no profile call")
		expectNoCondition(e.channel("support"), igv1.ConditionProfileSynced)

		ch := e.channel("support")
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.IceBreakers = iceBreakers
		ch.Spec.PersistentMenu = []igv1.MenuLocale{{Locale: "default", Items: []igv1.MenuItem{
			{Type: igv1.ButtonPostback, Title: "Talk to a person", Payload: "AGENT"},
			{Type: igv1.ButtonWebURL, Title: "Shop", URL: "https://shop.example.com"},
		}}}
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
		e.reconcile("support")

		p := e.ig.MessengerProfileOf(acc.UserID)
		expectJSON(p.IceBreakers, wantIce)
		expectJSON(p.PersistentMenu, `[{"locale":"default","call_to_actions":[{"type":"postback","title":"Talk to a person","payload":"AGENT"},
			{"type":"web_url","title":"Shop","url":"https://shop.example.com"}]}]`)
		ch = e.channel("support")
		expectCondition(ch, igv1.ConditionProfileSynced, metav1.ConditionTrue, igv1.ReasonProfileSynced)
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(ch.Status.Profile.IceBreakers).To(BeTrue())
		Expect(e.eventsWith("Normal " + igv1.EventProfileApplied)).To(HaveLen(1))
		sets := e.ig.CallCount(fake.EndpointSetProfile)
		Expect(sets).To(Equal(1))

		By("nothing changed: quiet within the interval")
		before := ch.ResourceVersion
		e.clock.Step(time.Minute)
		e.reconcile("support")
		Expect(e.ig.CallCount(fake.EndpointMessengerProfile)).To(Equal(1))
		Expect(e.channel("support").ResourceVersion).To(Equal(before))

		By("someone changes the ice breakers in another tool: the check puts them back")
		e.ig.SetMessengerProfileOf(acc.UserID, fake.MessengerProfile{
			IceBreakers:    json.RawMessage(`[{"call_to_actions":[{"question":"Hi?","payload":"X"}],"locale":"default"}]`),
			PersistentMenu: p.PersistentMenu,
		})
		e.clock.Step(11 * time.Minute)
		e.reconcile("support")
		expectJSON(e.ig.MessengerProfileOf(acc.UserID).IceBreakers, wantIce)
		Expect(e.ig.CallCount(fake.EndpointSetProfile)).To(Equal(2))

		By("removed from the spec: removed at Instagram")
		ch = e.channel("support")
		patch = client.MergeFrom(ch.DeepCopy())
		ch.Spec.IceBreakers = nil
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
		e.reconcile("support")
		p = e.ig.MessengerProfileOf(acc.UserID)
		Expect(p.IceBreakers).To(BeNil())
		Expect(p.PersistentMenu).NotTo(BeNil(), "the menu stays")
		ch = e.channel("support")
		Expect(ch.Status.Profile.IceBreakers).To(BeFalse())
		Expect(ch.Status.Profile.PersistentMenu).To(BeTrue())

		ch = e.channel("support")
		patch = client.MergeFrom(ch.DeepCopy())
		ch.Spec.PersistentMenu = nil
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
		e.reconcile("support")
		Expect(e.ig.MessengerProfileOf(acc.UserID).PersistentMenu).To(BeNil())
		ch = e.channel("support")
		Expect(ch.Status.Profile).To(BeNil())
		expectNoCondition(ch, igv1.ConditionProfileSynced)
	})

	It("reports a profile Instagram refuses on ProfileSynced and stays Ready", func() {
		e := newChannelEnv()
		e.adopt("support")
		e.ig.FailNext(fake.EndpointSetProfile, 1, fake.Fault{Code: 100, Message: "(#100) Invalid parameter"})
		ch := e.channel("support")
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.IceBreakers = iceBreakers
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
		e.reconcile("support")
		ch = e.channel("support")
		expectCondition(ch, igv1.ConditionProfileSynced, metav1.ConditionFalse, igv1.ReasonProfileSyncFailed)
		expectCondition(ch, igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady)
	})
})
