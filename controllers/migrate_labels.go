package controllers

import (
	"context"
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// LabelMigration brings InstagramMessage objects that the receiver recorded
// before v0.2 in line with today's labels, once, when the manager becomes
// leader:
//
//   - an echo (status.isEcho) was an incoming object labelled
//     direction=incoming, so `-l instagram.leadchat.io/direction=incoming`
//     selected the business's own messages too. Its spec.direction is
//     immutable, so it is relabelled rather than recreated (recreating would
//     change its UID and creation time under every watcher): direction=
//     outgoing, event=echo and done=true (so the manager never caches or
//     sends it, and retention still removes it).
//   - every other receiver-written object gets its event label.
//
// It selects only objects without the event label, which every object
// written since carries, so after one pass it finds nothing and costs one
// empty list per start.
type LabelMigration struct {
	// Client patches labels.
	Client client.Client
	// APIReader lists without the cache (incoming messages are not cached).
	APIReader client.Reader
	// PageSize is the Limit of each list call (default 500).
	PageSize int64
}

var (
	_ manager.Runnable               = (*LabelMigration)(nil)
	_ manager.LeaderElectionRunnable = (*LabelMigration)(nil)
)

// NeedLeaderElection is true: one manager migrates.
func (m *LabelMigration) NeedLeaderElection() bool { return true }

// Start runs one pass and returns; a failure is logged and the next start
// tries again.
func (m *LabelMigration) Start(ctx context.Context) error {
	n, err := m.MigrateOnce(ctx)
	logger := log.FromContext(ctx).WithName("label-migration")
	if err != nil {
		logger.Error(err, "label migration incomplete; the next start continues it", "migrated", n)
		return nil
	}
	if n > 0 {
		logger.Info("relabelled messages recorded by an older receiver", "migrated", n)
	}
	return nil
}

// MigrateOnce relabels every object the selector finds and returns how many.
func (m *LabelMigration) MigrateOnce(ctx context.Context) (int, error) {
	incoming, err := labels.NewRequirement(igv1.LabelDirection, selection.Equals, []string{igv1.DirectionLabelIncoming})
	if err != nil {
		return 0, err
	}
	noEvent, err := labels.NewRequirement(igv1.LabelEvent, selection.DoesNotExist, nil)
	if err != nil {
		return 0, err
	}
	page := m.PageSize
	if page <= 0 {
		page = DefaultRetentionPageSize
	}
	sel := labels.NewSelector().Add(*incoming, *noEvent)
	migrated := 0
	cont := ""
	for {
		var list igv1.InstagramMessageList
		if err := m.APIReader.List(ctx, &list, client.MatchingLabelsSelector{Selector: sel}, client.Limit(page), client.Continue(cont)); err != nil {
			return migrated, fmt.Errorf("list messages to relabel: %w", err)
		}
		for i := range list.Items {
			msg := &list.Items[i]
			patch := client.MergeFrom(msg.DeepCopy())
			msg.Labels = maps.Clone(msg.Labels)
			for k, v := range legacyLabels(msg) {
				msg.Labels[k] = v
			}
			if err := m.Client.Patch(ctx, msg, patch); client.IgnoreNotFound(err) != nil {
				return migrated, fmt.Errorf("relabel message %s/%s: %w", msg.Namespace, msg.Name, err)
			}
			migrated++
		}
		cont = list.Continue
		if cont == "" {
			return migrated, nil
		}
	}
}

// legacyLabels are the labels an object recorded before v0.2 gets.
func legacyLabels(m *igv1.InstagramMessage) map[string]string {
	s := &m.Status
	switch {
	case s.IsEcho:
		return map[string]string{
			igv1.LabelDirection: igv1.DirectionLabelOutgoing,
			igv1.LabelEvent:     igv1.EventLabelEcho,
			igv1.LabelDone:      "true",
		}
	case s.Postback != nil:
		return map[string]string{igv1.LabelEvent: igv1.EventLabelPostback}
	case s.Referral != nil && s.MessageID == "":
		return map[string]string{igv1.LabelEvent: igv1.EventLabelReferral}
	}
	return map[string]string{igv1.LabelEvent: igv1.EventLabelMessage}
}
