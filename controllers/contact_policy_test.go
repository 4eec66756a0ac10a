package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func mt(s string) *metav1.Time { t := metav1.NewTime(ts(s)); return &t }

func mmt(s string) *metav1.MicroTime { t := metav1.NewMicroTime(ts(s)); return &t }

func TestDecideProfile(t *testing.T) {
	opts := ContactOptions{}.withDefaults()
	refused := func(reason string) []metav1.Condition {
		return []metav1.Condition{{Type: igv1.ConditionProfileAvailable, Status: metav1.ConditionFalse, Reason: reason}}
	}
	const now = "2026-03-10T12:00:00Z"
	cases := map[string]struct {
		contact igv1.InstagramContact
		want    profileDecision
	}{
		"new contact": {
			want: profileDecision{fetch: true, why: "new contact"},
		},
		"new request": {
			contact: igv1.InstagramContact{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{igv1.AnnotationRequestedAt: "2"}},
				Status:     igv1.InstagramContactStatus{LastHandledReconcileAt: "1", Profile: igv1.ContactProfile{FetchedAt: mt(now)}},
			},
			want: profileDecision{fetch: true, why: "requested (instagram.leadchat.io/requestedAt)"},
		},
		"request already handled": {
			contact: igv1.InstagramContact{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{igv1.AnnotationRequestedAt: "2"}},
				Status:     igv1.InstagramContactStatus{LastHandledReconcileAt: "2", Profile: igv1.ContactProfile{FetchedAt: mt("2026-03-10T11:00:00Z")}},
			},
			want: profileDecision{why: "profile is current", next: ts("2026-03-17T11:00:00Z")},
		},
		"no consent, customer silent since": {
			contact: igv1.InstagramContact{Status: igv1.InstagramContactStatus{
				Conditions:    refused(igv1.ReasonConsentRequired),
				LastMessageAt: mmt("2026-03-10T10:00:00Z"),
				Profile:       igv1.ContactProfile{CheckedAt: mt("2026-03-10T11:00:00Z")},
			}},
			want: profileDecision{why: "profile refused until the customer writes"},
		},
		"no consent, customer wrote since": {
			contact: igv1.InstagramContact{Status: igv1.InstagramContactStatus{
				Conditions:    refused(igv1.ReasonConsentRequired),
				LastMessageAt: mmt("2026-03-10T11:30:00Z"),
				Profile:       igv1.ContactProfile{CheckedAt: mt("2026-03-10T11:00:00Z")},
			}},
			want: profileDecision{fetch: true, why: "the customer wrote since Instagram refused the profile"},
		},
		"blocked, silent, even a week later": {
			contact: igv1.InstagramContact{Status: igv1.InstagramContactStatus{
				Conditions:    refused(igv1.ReasonProfileUnavailable),
				LastMessageAt: mmt("2026-03-01T10:00:00Z"),
				Profile:       igv1.ContactProfile{CheckedAt: mt("2026-03-02T11:00:00Z")},
			}},
			want: profileDecision{why: "profile refused until the customer writes"},
		},
		"transient failure before the first fetch: fetched again": {
			contact: igv1.InstagramContact{Status: igv1.InstagramContactStatus{
				Conditions: refused(igv1.ReasonProfilePending),
				Profile:    igv1.ContactProfile{CheckedAt: mt("2026-03-10T11:00:00Z")},
			}},
			want: profileDecision{fetch: true, why: "new contact"},
		},
		"picture expires in 7h: next at expiry minus 6h": {
			contact: igv1.InstagramContact{Status: igv1.InstagramContactStatus{Profile: igv1.ContactProfile{
				FetchedAt: mt("2026-03-09T12:00:00Z"), ProfilePictureURL: "https://cdn/p.jpg", ProfilePictureExpiresAt: mt("2026-03-10T19:00:00Z"),
			}}},
			want: profileDecision{why: "profile is current", next: ts("2026-03-10T13:00:00Z")},
		},
		"picture expires in 6h: fetched": {
			contact: igv1.InstagramContact{Status: igv1.InstagramContactStatus{Profile: igv1.ContactProfile{
				FetchedAt: mt("2026-03-09T12:00:00Z"), ProfilePictureURL: "https://cdn/p.jpg", ProfilePictureExpiresAt: mt("2026-03-10T18:00:00Z"),
			}}},
			want: profileDecision{fetch: true, why: "profile picture URL expires at 2026-03-10T18:00:00Z"},
		},
		"no picture: fetched after 7 days": {
			contact: igv1.InstagramContact{Status: igv1.InstagramContactStatus{Profile: igv1.ContactProfile{FetchedAt: mt("2026-03-03T12:00:00Z")}}},
			want:    profileDecision{fetch: true, why: "profile older than 168h0m0s"},
		},
		"picture lives longer than the maximum age: the age wins": {
			contact: igv1.InstagramContact{Status: igv1.InstagramContactStatus{Profile: igv1.ContactProfile{
				FetchedAt: mt("2026-03-10T00:00:00Z"), ProfilePictureURL: "https://cdn/p.jpg", ProfilePictureExpiresAt: mt("2026-04-10T00:00:00Z"),
			}}},
			want: profileDecision{why: "profile is current", next: ts("2026-03-17T00:00:00Z")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := decideProfile(&tc.contact, ts(now), opts)
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(profileDecision{})); d != "" {
				t.Fatalf("decideProfile (-want +got):\n%s", d)
			}
		})
	}
}

func TestPictureExpiry(t *testing.T) {
	fetched := ts("2026-03-10T12:00:00Z")
	cases := map[string]struct {
		url  string
		want time.Time
	}{
		"none":                {"", time.Time{}},
		"CDN oe parameter":    {"https://scontent.cdninstagram.com/v/t51.2885-19/p.jpg?stp=dst-jpg&_nc_ht=x&oe=67D0A3C0", ts("2025-03-11T20:57:36Z")},
		"no oe: estimated":    {"https://cdn.example.com/p.jpg", ts("2026-03-13T12:00:00Z")},
		"malformed oe":        {"https://cdn.example.com/p.jpg?oe=zz", ts("2026-03-13T12:00:00Z")},
		"unparseable URL too": {"https://cdn.example.com/%zz", ts("2026-03-13T12:00:00Z")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := pictureExpiry(tc.url, fetched, DefaultPictureTTL); !got.Equal(tc.want) {
				t.Fatalf("pictureExpiry(%q) = %s, want %s", tc.url, got, tc.want)
			}
		})
	}
}

func TestContactRetention(t *testing.T) {
	newest := ts("2026-03-01T00:00:00Z")
	now := ts("2026-03-10T00:00:00Z")
	quietSince := ts("2026-03-02T00:00:00Z")
	week := 7 * 24 * time.Hour
	cases := map[string]struct {
		state         igv1.WindowState
		windowChanges bool
		last          time.Time
		left          int
		retention     time.Duration
		remove        bool
		recheck       time.Time
	}{
		"open window keeps it":                       {state: igv1.WindowOpen, last: quietSince, retention: week},
		"human agent window keeps it":                {state: igv1.WindowHumanAgent, last: quietSince, retention: week},
		"unknown that may still open keeps it":       {state: igv1.WindowUnknown, windowChanges: true, last: quietSince, retention: week},
		"closed, no message left: removed":           {state: igv1.WindowClosed, last: quietSince, retention: week, remove: true},
		"unknown for good, no message left: removed": {state: igv1.WindowUnknown, last: quietSince, retention: week, remove: true},
		"just created, nothing recorded yet: kept for 7 days": {state: igv1.WindowUnknown, last: ts("2026-03-09T23:59:59Z"), retention: week,
			recheck: ts("2026-03-16T23:59:59Z")},
		"answered by the business 2 days ago: kept": {state: igv1.WindowClosed, last: ts("2026-03-08T00:00:00Z"), retention: week,
			recheck: ts("2026-03-15T00:00:00Z")},
		"closed, messages left: after the newest": {state: igv1.WindowClosed, last: quietSince, left: 3, retention: week, recheck: ts("2026-03-08T00:00:00Z")},
		"closed, messages kept for ever":          {state: igv1.WindowClosed, last: quietSince, left: 3},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			remove, recheck := contactRetention(tc.state, tc.windowChanges, tc.last, now, tc.left, newest, tc.retention)
			if remove != tc.remove || !recheck.Equal(tc.recheck) {
				t.Fatalf("contactRetention = %v, %s; want %v, %s", remove, recheck, tc.remove, tc.recheck)
			}
		})
	}
}

func TestWindowRefusal(t *testing.T) {
	const now = "2026-03-10T12:00:00Z"
	contact := func(w igv1.ReplyWindow) *igv1.InstagramContact {
		return &igv1.InstagramContact{Status: igv1.InstagramContactStatus{Window: w}}
	}
	cases := map[string]struct {
		contact *igv1.InstagramContact
		spec    igv1.InstagramMessageSpec
		refuse  bool
		window  string
		says    []string
	}{
		"no contact recorded: Instagram decides": {},
		"no opening event: Instagram decides": {
			contact: contact(igv1.ReplyWindow{}),
		},
		"inside 24 h": {
			contact: contact(igv1.ReplyWindow{OpenedAt: mmt("2026-03-10T00:00:00Z")}),
		},
		"after 24 h, untagged: refused, HUMAN_AGENT would help": {
			contact: contact(igv1.ReplyWindow{OpenedAt: mmt("2026-03-09T11:00:00Z")}),
			refuse:  true, window: refusedStandard,
			says: []string{"the 24-hour window closed at 2026-03-10T11:00:00Z", "HUMAN_AGENT would help", "until 2026-03-16T11:00:00Z",
				"the customer's last message at 2026-03-09T11:00:00Z"},
		},
		"after 24 h, tagged: sent": {
			contact: contact(igv1.ReplyWindow{OpenedAt: mmt("2026-03-09T11:00:00Z")}),
			spec:    igv1.InstagramMessageSpec{Tag: igv1.TagHumanAgent},
		},
		"after 7 d, tagged: refused": {
			contact: contact(igv1.ReplyWindow{OpenedAt: mmt("2026-03-03T11:00:00Z")}),
			spec:    igv1.InstagramMessageSpec{Tag: igv1.TagHumanAgent},
			refuse:  true, window: refusedHumanAgent,
			says: []string{"the 7-day HUMAN_AGENT window closed at 2026-03-10T11:00:00Z", "the customer must write first"},
		},
		"after 7 d, untagged: refused, HUMAN_AGENT would not help": {
			contact: contact(igv1.ReplyWindow{OpenedAt: mmt("2026-03-03T11:00:00Z")}),
			refuse:  true, window: refusedStandard,
			says: []string{"HUMAN_AGENT would not help"},
		},
		"after 7 d, a private reply to a comment: not a messaging-window send": {
			contact: contact(igv1.ReplyWindow{OpenedAt: mmt("2026-03-03T11:00:00Z")}),
			spec:    igv1.InstagramMessageSpec{PrivateReplyTo: &igv1.CommentReference{Name: "igc-1"}},
		},
		"after 7 d, opted out: Instagram decides": {
			contact: contact(igv1.ReplyWindow{OpenedAt: mmt("2026-03-03T11:00:00Z")}),
			spec:    igv1.InstagramMessageSpec{SkipWindowCheck: true},
		},
		"after 24 h but a postback since: Instagram decides": {
			contact: contact(igv1.ReplyWindow{OpenedAt: mmt("2026-03-09T11:00:00Z"), UnconfirmedAt: mmt("2026-03-10T09:00:00Z"), UnconfirmedBy: igv1.OpenerPostback}),
		},
		"refused by Instagram since the last message": {
			contact: contact(igv1.ReplyWindow{OpenedAt: mmt("2026-03-10T10:00:00Z"), RefusedAt: mmt("2026-03-10T11:00:00Z")}),
			refuse:  true, window: refusedStandard,
			says: []string{"Instagram refused a send at 2026-03-10T11:00:00Z", "HUMAN_AGENT would help"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			refuse, window, msg := windowRefusal(tc.contact, &tc.spec, ts(now))
			if refuse != tc.refuse || window != tc.window {
				t.Fatalf("windowRefusal = %v, %q (%s); want %v, %q", refuse, window, msg, tc.refuse, tc.window)
			}
			for _, s := range tc.says {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not say %q", msg, s)
				}
			}
		})
	}
}
