package controllers

import (
	"net/url"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/replywindow"
)

// Pure decisions of the contact controller: when the profile is fetched,
// when a picture URL expires, and when a contact may go. No I/O here; each
// rule is a table row in contact_policy_test.go.

// ContactOptions are the manager settings the contact controller uses.
type ContactOptions struct {
	// ProfileRatePerSecond and ProfileBurst size the token bucket of profile
	// lookups of one Instagram account (default 1/s, burst 10): a channel
	// that starts with thousands of contacts spreads their first fetch.
	ProfileRatePerSecond float64
	ProfileBurst         int
	// ProfileMaxAge is how long a profile without a picture is kept before
	// it is fetched again (default 7 days).
	ProfileMaxAge time.Duration
	// PictureRefreshBefore is how long before a picture URL expires the
	// profile is fetched again (default 6h).
	PictureRefreshBefore time.Duration
	// PictureTTL is how long a picture URL is taken to live when it does not
	// say (default 72h; Meta: "expires within days").
	PictureTTL time.Duration
	// MaxConcurrentReconciles is how many contacts are reconciled in
	// parallel (default 4); the per-account rate limit paces the lookups.
	MaxConcurrentReconciles int
}

// Defaults of ContactOptions.
const (
	DefaultProfileRatePerSecond = 1
	DefaultProfileBurst         = 10
	DefaultProfileMaxAge        = 7 * 24 * time.Hour
	DefaultPictureRefreshBefore = 6 * time.Hour
	DefaultPictureTTL           = 72 * time.Hour
	DefaultContactConcurrency   = 4
)

func (o ContactOptions) withDefaults() ContactOptions {
	if o.ProfileRatePerSecond <= 0 {
		o.ProfileRatePerSecond = DefaultProfileRatePerSecond
	}
	if o.ProfileBurst <= 0 {
		o.ProfileBurst = DefaultProfileBurst
	}
	if o.ProfileMaxAge <= 0 {
		o.ProfileMaxAge = DefaultProfileMaxAge
	}
	if o.PictureRefreshBefore <= 0 {
		o.PictureRefreshBefore = DefaultPictureRefreshBefore
	}
	if o.PictureTTL <= 0 {
		o.PictureTTL = DefaultPictureTTL
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = DefaultContactConcurrency
	}
	return o
}

// profileDecision is whether the profile is fetched now, why (for the log
// and the condition), and otherwise when it is due next (zero: only an
// event makes it due: a request, the customer writing).
type profileDecision struct {
	fetch bool
	why   string
	next  time.Time
}

// profileCheck is one rule: decided reports whether it settles the
// question.
type profileCheck func(c *igv1.InstagramContact, now time.Time, o ContactOptions) (d profileDecision, decided bool)

// profileChecks run in order; the first that decides wins. A new rule is
// one function and one table row.
var profileChecks = []profileCheck{
	requestedProfile,
	firstProfile,
	unavailableProfile,
	refreshProfile,
}

// decideProfile runs the chain.
func decideProfile(c *igv1.InstagramContact, now time.Time, o ContactOptions) profileDecision {
	for _, check := range profileChecks {
		if d, ok := check(c, now, o); ok {
			return d
		}
	}
	return profileDecision{why: "profile is current"}
}

// requestedProfile: a new value of the requestedAt annotation asks for a
// fetch, whatever the state.
func requestedProfile(c *igv1.InstagramContact, _ time.Time, _ ContactOptions) (profileDecision, bool) {
	v := c.Annotations[igv1.AnnotationRequestedAt]
	if v != "" && v != c.Status.LastHandledReconcileAt {
		return profileDecision{fetch: true, why: "requested (" + igv1.AnnotationRequestedAt + ")"}, true
	}
	return profileDecision{}, false
}

// profileUnavailable reports a profile Instagram refused for a reason only
// the customer can lift (no consent yet, blocked, deleted).
func profileUnavailable(c *igv1.InstagramContact) bool {
	cond := meta.FindStatusCondition(c.Status.Conditions, igv1.ConditionProfileAvailable)
	return cond != nil && cond.Status == "False" &&
		(cond.Reason == igv1.ReasonConsentRequired || cond.Reason == igv1.ReasonProfileUnavailable)
}

// firstProfile: a contact whose profile was never fetched, and was not
// refused, gets it now.
func firstProfile(c *igv1.InstagramContact, _ time.Time, _ ContactOptions) (profileDecision, bool) {
	if c.Status.Profile.FetchedAt == nil && !profileUnavailable(c) {
		return profileDecision{fetch: true, why: "new contact"}, true
	}
	return profileDecision{}, false
}

// unavailableProfile: after a refusal only the customer can lift, the
// profile is asked for again once they wrote since, never on a timer.
func unavailableProfile(c *igv1.InstagramContact, _ time.Time, _ ContactOptions) (profileDecision, bool) {
	if !profileUnavailable(c) {
		return profileDecision{}, false
	}
	last, checked := c.Status.LastMessageAt, c.Status.Profile.CheckedAt
	if last != nil && (checked == nil || last.Time.After(checked.Time)) {
		return profileDecision{fetch: true, why: "the customer wrote since Instagram refused the profile"}, true
	}
	return profileDecision{why: "profile refused until the customer writes"}, true
}

// refreshProfile: a fetched profile is fetched again before its picture URL
// expires, and at the latest after ProfileMaxAge.
func refreshProfile(c *igv1.InstagramContact, now time.Time, o ContactOptions) (profileDecision, bool) {
	p := &c.Status.Profile
	if p.FetchedAt == nil {
		return profileDecision{}, false
	}
	at, why := p.FetchedAt.Add(o.ProfileMaxAge), "profile older than "+o.ProfileMaxAge.String()
	if exp := p.ProfilePictureExpiresAt; p.ProfilePictureURL != "" && exp != nil && exp.Add(-o.PictureRefreshBefore).Before(at) {
		at, why = exp.Add(-o.PictureRefreshBefore), "profile picture URL expires at "+exp.UTC().Format(time.RFC3339)
	}
	if !now.Before(at) {
		return profileDecision{fetch: true, why: why}, true
	}
	return profileDecision{why: "profile is current", next: at}, true
}

// pictureExpiry is when a profile picture URL stops working: the CDN states
// it in the oe parameter (Unix seconds in hex); otherwise ttl after the
// fetch. An empty URL has no expiry.
func pictureExpiry(pictureURL string, fetched time.Time, ttl time.Duration) time.Time {
	if pictureURL == "" {
		return time.Time{}
	}
	if u, err := url.Parse(pictureURL); err == nil {
		if oe := u.Query().Get("oe"); oe != "" {
			if secs, err := strconv.ParseInt(oe, 16, 64); err == nil && secs > 0 {
				return time.Unix(secs, 0).UTC()
			}
		}
	}
	return fetched.Add(ttl)
}

// contactRetention says whether a contact may be deleted: only when no
// reply window may be open (Closed, or Unknown with nothing that could
// change it), its last activity (creation, the customer's last event, the
// business's last answer) is older than the 7-day window, so a contact the
// receiver has just created and not yet filled in is never taken for a
// closed one, and none of its messages is left. newest is the creation time
// of its newest message (zero when none is left); retention is the
// channel's spec.messageRetention (0 keeps messages for ever). When the
// contact stays, recheck is when to look again (zero: never by itself).
func contactRetention(state igv1.WindowState, windowChanges bool, lastActivity, now time.Time, messagesLeft int, newest time.Time, retention time.Duration) (remove bool, recheck time.Time) {
	if state == igv1.WindowOpen || state == igv1.WindowHumanAgent || windowChanges {
		return false, time.Time{}
	}
	if quiet := lastActivity.Add(replywindow.HumanAgent); now.Before(quiet) {
		return false, quiet
	}
	if messagesLeft == 0 {
		return true, time.Time{}
	}
	if retention <= 0 {
		return false, time.Time{}
	}
	return false, newest.Add(retention)
}
