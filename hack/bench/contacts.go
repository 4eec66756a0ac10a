package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
)

// contacts stores cfg.contacts InstagramContacts spread over the channels,
// as the receiver records them (a customer who wrote a minute ago), lets the
// manager fetch every profile, then restarts it and measures its memory and
// the Instagram calls it makes at steady state, which should be none: every
// profile is fresh and no window closes during the measurement.
func (b *bench) contacts(ctx context.Context) error {
	cfg := b.cfg
	n := cfg.contacts
	progress("storing %d InstagramContacts over %d channels", n, len(b.channels))
	at := time.Now().Add(-time.Minute)
	start := time.Now()
	err := parallel(ctx, cfg.workers, n, func(i int) error {
		ch := b.channels[i%len(b.channels)]
		igsid := fmt.Sprintf("5510%012d", i)
		b.env.Fake.AddCustomer(fake.Customer{IGSID: igsid, Name: "Customer " + igsid, Username: "customer_" + igsid,
			ProfilePic: "https://scontent.cdninstagram.com/v/" + igsid + ".jpg", FollowerCount: int64(i)})
		c := &igv1.InstagramContact{
			ObjectMeta: metav1.ObjectMeta{
				Name: names.ContactName(ch.Name, igsid), Namespace: ch.Namespace,
				Labels: map[string]string{igv1.LabelChannel: ch.Name, igv1.LabelContact: igsid, igv1.LabelWindow: igv1.WindowLabelOpen},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: igv1.GroupVersion.String(), Kind: "InstagramChannel",
					Name: ch.Name, UID: ch.UID, Controller: ptr.To(true)}},
			},
			Spec: igv1.ContactSpec{ChannelRef: igv1.ChannelReference{Name: ch.Name}, ContactID: igsid},
		}
		if err := b.asReceiver.Create(ctx, c); err != nil {
			return fmt.Errorf("create contact: %w", err)
		}
		// As the receiver does: the manager may have written meanwhile.
		return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			if err := b.fast.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
				return err
			}
			base := c.DeepCopy()
			t := metav1.NewMicroTime(at)
			c.Status.FirstMessageAt, c.Status.LastMessageAt, c.Status.Window.OpenedAt = &t, &t, &t
			c.Status.Window.State = igv1.WindowOpen
			return b.asReceiver.Status().Patch(ctx, c, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		})
	})
	if err != nil {
		return err
	}
	b.res.add(scenarioContacts, "contacts stored", float64(n), "objects", "", fmt.Sprintf("%.0f s, create + status patch", time.Since(start).Seconds()))

	progress("waiting for the manager to fetch %d profiles (--profile-rate-limit per account)", n)
	fetchStart := time.Now()
	err = waitFor(ctx, cfg.contactsTimeout, "every profile fetched", func() (bool, error) {
		var list igv1.InstagramContactList
		if err := b.fast.List(ctx, &list); err != nil {
			return false, err
		}
		fetched := 0
		for i := range list.Items {
			if list.Items[i].Status.Profile.FetchedAt != nil {
				fetched++
			}
		}
		return fetched >= n, nil
	})
	if err != nil {
		return err
	}
	b.res.add(scenarioContacts, "first profile fetch of all contacts", time.Since(fetchStart).Seconds(), "s", "",
		fmt.Sprintf("%d accounts, %d contacts each, paced by --profile-rate-limit", len(b.channels), n/len(b.channels)))

	progress("restarting the manager over %d contacts", n)
	if err := b.restartManager(ctx, "contacts"); err != nil {
		return err
	}
	if _, err := waitSettled(ctx, b.own, len(b.channels), 5*time.Minute); err != nil {
		return err
	}
	if err := sleepCtx(ctx, 15*time.Second); err != nil {
		return err
	}
	calls0 := len(b.env.Fake.Calls())
	window := cfg.contactsQuiet
	var mem memory
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		m, err := readMemory(b.own)
		if err != nil {
			return err
		}
		mem.RSSBytes = max(mem.RSSBytes, m.RSSBytes)
		mem.PeakRSSBytes, mem.HeapInuseBytes = m.PeakRSSBytes, max(mem.HeapInuseBytes, m.HeapInuseBytes)
		if err := sleepCtx(ctx, 5*time.Second); err != nil {
			return err
		}
	}
	calls := b.env.Fake.Calls()[calls0:]
	byEndpoint, _ := callsByEndpoint(calls)
	profile := float64(byEndpoint[fake.EndpointProfile])
	b.res.add(scenarioContacts, "manager RSS with contacts", mib(mem.RSSBytes), "MiB", "",
		fmt.Sprintf("%d contacts on %d channels, contacts cached as metadata only; peak %.0f MiB, Go heap in use %.0f MiB",
			n, len(b.channels), mib(mem.PeakRSSBytes), mib(mem.HeapInuseBytes)))
	b.res.add(scenarioContacts, "profile calls per hour at steady state", profile*float64(time.Hour)/float64(window), "1/h", "0 (only refreshes that are due)",
		fmt.Sprintf("%.0f profile calls in %s after the restart settled (all calls: %d)", profile, window, len(calls)))
	b.res.detail("contacts.managerMemory", mem)
	return nil
}
