package controllers

import (
	"context"
	"errors"
	"fmt"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// Defaults of RetentionRunner.
const (
	DefaultRetentionInterval         = 10 * time.Minute
	DefaultRetentionDeletesPerSecond = 20
	DefaultRetentionPageSize         = 500
	// DefaultMessageRetention applies to a channel whose
	// spec.messageRetention is unset (the API server defaults it; this
	// covers objects stored before the default existed).
	DefaultMessageRetention = 7 * 24 * time.Hour
)

// RetentionRunner deletes InstagramMessage objects older than their
// channel's spec.messageRetention, so etcd does not grow with every
// conversation's history. It sweeps all channels every Interval instead of
// keeping a timer per message: a sweep reads only object metadata, page by
// page, straight from the API server (finished messages are not in the
// manager's cache by design), and deletes at a bounded rate so a first
// sweep over a large backlog does not flood the API server.
type RetentionRunner struct {
	// Client lists channels (from the cache) and deletes messages.
	Client client.Client
	// APIReader lists message metadata without the cache.
	APIReader client.Reader
	Clock     clock.Clock
	// Interval between sweeps (default 10m).
	Interval time.Duration
	// DeletesPerSecond bounds the delete rate (default 20).
	DeletesPerSecond float64
	// PageSize is the Limit of each list call (default 500).
	PageSize int64

	initOnce sync.Once
	limiter  *rate.Limiter
}

var (
	_ manager.Runnable               = (*RetentionRunner)(nil)
	_ manager.LeaderElectionRunnable = (*RetentionRunner)(nil)
)

func (r *RetentionRunner) init() {
	r.initOnce.Do(func() {
		if r.Clock == nil {
			r.Clock = clock.RealClock{}
		}
		if r.Interval <= 0 {
			r.Interval = DefaultRetentionInterval
		}
		if r.DeletesPerSecond <= 0 {
			r.DeletesPerSecond = DefaultRetentionDeletesPerSecond
		}
		if r.PageSize <= 0 {
			r.PageSize = DefaultRetentionPageSize
		}
		// The limiter paces real API calls, so it runs on wall time.
		r.limiter = rate.NewLimiter(rate.Limit(r.DeletesPerSecond), max(1, int(r.DeletesPerSecond)))
	})
}

// NeedLeaderElection is true: one manager deletes, the others stand by.
func (r *RetentionRunner) NeedLeaderElection() bool { return true }

// Start sweeps at once, then Interval after the end of each sweep, until
// ctx ends.
func (r *RetentionRunner) Start(ctx context.Context) error {
	r.init()
	logger := log.FromContext(ctx).WithName("retention")
	ctx = log.IntoContext(ctx, logger)
	for {
		if _, err := r.SweepOnce(ctx); err != nil && ctx.Err() == nil {
			// The next sweep tries again; retention is not urgent.
			logger.Error(err, "retention sweep incomplete")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.Clock.After(r.Interval):
		}
	}
}

// SweepOnce deletes, for every channel with a positive retention, its
// messages created before now - retention. It returns how many it deleted;
// an error in one namespace does not stop the others.
//
// It lists each namespace's messages once (metadata only, paged) and
// decides per message by its channel label, so a sweep costs one pass over
// the messages however many channels share a namespace.
func (r *RetentionRunner) SweepOnce(ctx context.Context) (int, error) {
	r.init()
	var channels igv1.InstagramChannelList
	if err := r.Client.List(ctx, &channels); err != nil {
		return 0, fmt.Errorf("list channels: %w", err)
	}
	now := r.Clock.Now()
	// cutoffs[namespace][channel] is the creation time before which that
	// channel's messages go.
	cutoffs := map[string]map[string]time.Time{}
	for i := range channels.Items {
		ch := &channels.Items[i]
		retention := DefaultMessageRetention
		if ch.Spec.MessageRetention != nil {
			retention = ch.Spec.MessageRetention.Duration
		}
		if retention <= 0 {
			continue
		}
		if cutoffs[ch.Namespace] == nil {
			cutoffs[ch.Namespace] = map[string]time.Time{}
		}
		cutoffs[ch.Namespace][ch.Name] = now.Add(-retention)
	}
	namespaces := make([]string, 0, len(cutoffs))
	for ns := range cutoffs {
		namespaces = append(namespaces, ns)
	}
	slices.Sort(namespaces)

	total := 0
	var errs []error
	for _, ns := range namespaces {
		n, err := r.sweepNamespace(ctx, ns, cutoffs[ns])
		total += n
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
		}
	}
	if total > 0 {
		log.FromContext(ctx).Info("retention sweep deleted messages", "deleted", total)
	}
	return total, errors.Join(errs...)
}

// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramcomments,verbs=get;list;watch;delete

// retainedKinds are the kinds retention sweeps: what the receiver records
// for a channel.
var retainedKinds = []string{"InstagramMessage", "InstagramComment"}

// sweepNamespace deletes the messages and comments of ns whose channel's
// cutoff they predate.
func (r *RetentionRunner) sweepNamespace(ctx context.Context, ns string, cutoffs map[string]time.Time) (int, error) {
	deleted := 0
	for _, kind := range retainedKinds {
		n, err := r.sweepKind(ctx, kind, ns, cutoffs)
		deleted += n
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

func (r *RetentionRunner) sweepKind(ctx context.Context, kind, ns string, cutoffs map[string]time.Time) (int, error) {
	hasChannel, err := labels.NewRequirement(igv1.LabelChannel, selection.Exists, nil)
	if err != nil {
		return 0, err
	}
	deleted := 0
	opts := []client.ListOption{
		client.InNamespace(ns),
		client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*hasChannel)},
		client.Limit(r.PageSize),
	}
	continueToken := ""
	for {
		page := &metav1.PartialObjectMetadataList{}
		page.SetGroupVersionKind(igv1.GroupVersion.WithKind(kind + "List"))
		if err := r.APIReader.List(ctx, page, append(opts, client.Continue(continueToken))...); err != nil {
			return deleted, fmt.Errorf("list %s: %w", kind, err)
		}
		for i := range page.Items {
			item := &page.Items[i]
			cutoff, ok := cutoffs[item.Labels[igv1.LabelChannel]]
			if !ok || !item.CreationTimestamp.Time.Before(cutoff) || !item.DeletionTimestamp.IsZero() || (kind == "InstagramMessage" && unfinishedOutgoing(item)) {
				continue
			}
			if err := r.limiter.Wait(ctx); err != nil {
				return deleted, err
			}
			item.SetGroupVersionKind(igv1.GroupVersion.WithKind(kind))
			// The UID precondition spares an object recreated under the
			// same name since the list.
			uid := item.UID
			err := r.Client.Delete(ctx, item, client.Preconditions{UID: &uid})
			switch {
			case err == nil:
				deleted++
				messagesRetentionDeletedTotal.Inc()
			case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			default:
				return deleted, fmt.Errorf("delete %s %s: %w", kind, item.Name, err)
			}
		}
		continueToken = page.Continue
		if continueToken == "" {
			return deleted, nil
		}
	}
}

// unfinishedOutgoing reports an outgoing message the manager has not
// finished (no done label yet): it may still be waiting or being sent, and
// deleting it would lose the send or its outcome. Incoming messages carry
// the incoming direction label and are always eligible.
func unfinishedOutgoing(m *metav1.PartialObjectMetadata) bool {
	return m.Labels[igv1.LabelDirection] != igv1.DirectionLabelIncoming && m.Labels[igv1.LabelDone] != "true"
}
