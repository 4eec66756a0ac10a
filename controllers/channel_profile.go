package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

// The channel's messenger profile (ice breakers, persistent menu): applied
// when the spec changes, compared with Instagram's view on the drift check
// like the webhook subscription, and removed at Instagram when it leaves
// the spec. A profile that cannot be applied never makes the channel
// unready: messages still flow; ProfileSynced says what is wrong.

// desiredProfile is the profile the spec asks for, locales sorted.
func desiredProfile(ch *igv1.InstagramChannel) instagram.MessengerProfile {
	var p instagram.MessengerProfile
	for _, l := range ch.Spec.IceBreakers {
		set := instagram.IceBreakers{Locale: l.Locale}
		for _, q := range l.Questions {
			set.Questions = append(set.Questions, instagram.IceBreaker{Question: q.Question, Payload: q.Payload})
		}
		p.IceBreakers = append(p.IceBreakers, set)
	}
	for _, l := range ch.Spec.PersistentMenu {
		menu := instagram.PersistentMenu{Locale: l.Locale}
		for _, it := range l.Items {
			menu.Items = append(menu.Items, instagram.MenuItem{Type: string(it.Type), Title: it.Title, Payload: it.Payload, URL: it.URL})
		}
		p.PersistentMenu = append(p.PersistentMenu, menu)
	}
	return normalizeProfile(p)
}

func normalizeProfile(p instagram.MessengerProfile) instagram.MessengerProfile {
	p.IceBreakers = slices.Clone(p.IceBreakers)
	p.PersistentMenu = slices.Clone(p.PersistentMenu)
	slices.SortFunc(p.IceBreakers, func(a, b instagram.IceBreakers) int { return strings.Compare(a.Locale, b.Locale) })
	slices.SortFunc(p.PersistentMenu, func(a, b instagram.PersistentMenu) int { return strings.Compare(a.Locale, b.Locale) })
	return p
}

func profileDigest(p instagram.MessengerProfile) string {
	b, _ := json.Marshal(p)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// profilePlan is what to change at Instagram so that it shows want, given
// what it shows (have) and which fields the manager manages (managed, from
// status.profile). Fields nobody asked for and the manager never wrote are
// left alone: another tool may manage them.
type profilePlan struct {
	set    instagram.MessengerProfile
	delete []string
}

func (p profilePlan) empty() bool {
	return p.set.IceBreakers == nil && p.set.PersistentMenu == nil && len(p.delete) == 0
}

func planProfile(want, have instagram.MessengerProfile, managed *igv1.ProfileStatus) profilePlan {
	var plan profilePlan
	have = normalizeProfile(have)
	switch {
	case want.IceBreakers != nil && !equality.Semantic.DeepEqual(want.IceBreakers, have.IceBreakers):
		plan.set.IceBreakers = want.IceBreakers
	case want.IceBreakers == nil && managed != nil && managed.IceBreakers && have.IceBreakers != nil:
		plan.delete = append(plan.delete, instagram.ProfileFieldIceBreakers)
	}
	switch {
	case want.PersistentMenu != nil && !equality.Semantic.DeepEqual(want.PersistentMenu, have.PersistentMenu):
		plan.set.PersistentMenu = want.PersistentMenu
	case want.PersistentMenu == nil && managed != nil && managed.PersistentMenu && have.PersistentMenu != nil:
		plan.delete = append(plan.delete, instagram.ProfileFieldPersistentMenu)
	}
	return plan
}

// reconcileProfile is the last step: it never halts the chain.
func (r *InstagramChannelReconciler) reconcileProfile(ctx context.Context, run *channelRun) (*halt, error) {
	ch := run.ch
	want := desiredProfile(ch)
	managed := ch.Status.Profile
	if want.IceBreakers == nil && want.PersistentMenu == nil && (managed == nil || (!managed.IceBreakers && !managed.PersistentMenu)) {
		// Nothing asked and nothing of ours at Instagram: no call, and no
		// condition to report.
		ch.Status.Profile = nil
		meta.RemoveStatusCondition(&ch.Status.Conditions, igv1.ConditionProfileSynced)
		return nil, nil
	}
	digest := profileDigest(want)
	resync := ResyncAfter(r.opts().ResyncInterval, string(ch.UID)+"/profile")
	cond := meta.FindStatusCondition(run.original.Status.Conditions, igv1.ConditionProfileSynced)
	changed := managed == nil || managed.AppliedDigest != digest || cond == nil || cond.Status != metav1.ConditionTrue ||
		cond.ObservedGeneration != ch.Generation
	if !changed && !run.forceCheck {
		if t, ok := r.profileCheckedAt.Load(ch.UID); ok && run.now.Before(t.(time.Time).Add(resync)) {
			run.wake(t.(time.Time).Add(resync))
			return nil, nil
		}
	}

	have, err := run.api.MessengerProfile(ctx, run.token)
	if err != nil {
		return r.profileFailed(ctx, run, "read the messenger profile", err), nil
	}
	plan := planProfile(want, *have, managed)
	if !plan.empty() {
		if plan.set.IceBreakers != nil || plan.set.PersistentMenu != nil {
			if err := run.api.SetMessengerProfile(ctx, run.token, plan.set); err != nil {
				return r.profileFailed(ctx, run, "set the messenger profile", err), nil
			}
		}
		if len(plan.delete) > 0 {
			if err := run.api.DeleteMessengerProfile(ctx, run.token, plan.delete); err != nil {
				return r.profileFailed(ctx, run, "remove "+strings.Join(plan.delete, ", ")+" from the messenger profile", err), nil
			}
		}
		what := describePlan(plan)
		log.FromContext(ctx).Info("messenger profile applied", "account", accountUserID(ch), "changes", what)
		r.event(ch, corev1.EventTypeNormal, igv1.EventProfileApplied, "SetProfile", "%s", what)
	}
	r.profileCheckedAt.Store(ch.UID, run.now)
	next := &igv1.ProfileStatus{IceBreakers: want.IceBreakers != nil, PersistentMenu: want.PersistentMenu != nil, AppliedDigest: digest}
	if managed != nil {
		next.AppliedAt = managed.AppliedAt
	}
	if !plan.empty() || next.AppliedAt == nil {
		next.AppliedAt = &metav1.Time{Time: run.now}
	}
	if !next.IceBreakers && !next.PersistentMenu {
		ch.Status.Profile = nil
		meta.RemoveStatusCondition(&ch.Status.Conditions, igv1.ConditionProfileSynced)
	} else {
		ch.Status.Profile = next
		r.setCondition(run, igv1.ConditionProfileSynced, metav1.ConditionTrue, igv1.ReasonProfileSynced, profileSyncedMessage(want))
	}
	run.wake(run.now.Add(resync))
	return nil, nil
}

func describePlan(p profilePlan) string {
	var parts []string
	if p.set.IceBreakers != nil {
		parts = append(parts, fmt.Sprintf("set ice breakers for %d locale(s)", len(p.set.IceBreakers)))
	}
	if p.set.PersistentMenu != nil {
		parts = append(parts, fmt.Sprintf("set the persistent menu for %d locale(s)", len(p.set.PersistentMenu)))
	}
	for _, f := range p.delete {
		parts = append(parts, "removed "+f)
	}
	return strings.Join(parts, "; ")
}

func profileSyncedMessage(want instagram.MessengerProfile) string {
	var parts []string
	if want.IceBreakers != nil {
		parts = append(parts, fmt.Sprintf("ice breakers in %d locale(s)", len(want.IceBreakers)))
	}
	if want.PersistentMenu != nil {
		parts = append(parts, fmt.Sprintf("persistent menu in %d locale(s)", len(want.PersistentMenu)))
	}
	return "Instagram shows the " + strings.Join(parts, " and ")
}

// profileFailed reports a failed profile call on ProfileSynced and retries
// after a backoff; the channel stays as the other steps left it.
func (r *InstagramChannelReconciler) profileFailed(ctx context.Context, run *channelRun, what string, err error) *halt {
	msg := fmt.Sprintf("%s: %v", what, err)
	r.setCondition(run, igv1.ConditionProfileSynced, metav1.ConditionFalse, igv1.ReasonProfileSyncFailed, msg)
	log.FromContext(ctx).Info("messenger profile not applied", "account", accountUserID(run.ch), "error", err.Error())
	switch instagram.ClassOf(err) {
	case instagram.ClassBadRequest, instagram.ClassPermissionDenied, instagram.ClassTokenInvalid:
		// Needs a change of the spec, the app or the login: those changes
		// reconcile the channel anyway.
		return nil
	}
	run.wake(run.now.Add(max(instagram.RetryAfterOf(err), Backoff(1))))
	return nil
}
