package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

func TestClassifySend(t *testing.T) {
	type want struct {
		retry        bool
		retryAfter   time.Duration
		reason       string
		apiError     *igv1.MessageError
		mentions     string
		tokenRefused bool
	}
	graph := func(class instagram.Class, code, subcode int) *instagram.Error {
		return &instagram.Error{Class: class, Endpoint: instagram.EndpointSend, HTTPStatus: 400,
			Code: code, Subcode: subcode, Type: "OAuthException", Message: "refused", NotDelivered: true}
	}
	cases := map[string]struct {
		err  error
		tag  igv1.MessageTag
		want want
	}{
		"outside window suggests HUMAN_AGENT": {
			err:  graph(instagram.ClassOutsideWindow, 10, 2534022),
			want: want{reason: igv1.ReasonOutsideWindow, mentions: "spec.tag HUMAN_AGENT", apiError: &igv1.MessageError{Code: 10, Subcode: 2534022, Type: "OAuthException", Message: "refused"}},
		},
		"outside window with HUMAN_AGENT already": {
			err:  graph(instagram.ClassOutsideWindow, 10, 2534022),
			tag:  igv1.TagHumanAgent,
			want: want{reason: igv1.ReasonOutsideWindow, mentions: "7-day", apiError: &igv1.MessageError{Code: 10, Subcode: 2534022, Type: "OAuthException", Message: "refused"}},
		},
		"user unavailable": {
			err:  graph(instagram.ClassUserUnavailable, 551, 0),
			want: want{reason: igv1.ReasonUserUnavailable, apiError: &igv1.MessageError{Code: 551, Type: "OAuthException", Message: "refused"}},
		},
		"permission denied": {
			err:  graph(instagram.ClassPermissionDenied, 200, 0),
			want: want{reason: igv1.ReasonPermissionDenied, apiError: &igv1.MessageError{Code: 200, Type: "OAuthException", Message: "refused"}},
		},
		"bad request": {
			err:  graph(instagram.ClassBadRequest, 100, 0),
			want: want{reason: igv1.ReasonBadRequest, apiError: &igv1.MessageError{Code: 100, Type: "OAuthException", Message: "refused"}},
		},
		"token invalid": {
			err:  graph(instagram.ClassTokenInvalid, 190, 463),
			want: want{retry: true, tokenRefused: true, reason: igv1.ReasonTokenInvalid, mentions: "new login", apiError: &igv1.MessageError{Code: 190, Subcode: 463, Type: "OAuthException", Message: "refused"}},
		},
		"rate limited is retried after Retry-After": {
			err: &instagram.Error{Class: instagram.ClassRateLimited, Code: 4, NotDelivered: true, RetryAfter: time.Minute},
			want: want{retry: true, retryAfter: time.Minute, reason: igv1.ReasonRateLimited,
				apiError: &igv1.MessageError{Code: 4}},
		},
		"connection refused is retried": {
			err:  &instagram.Error{Class: instagram.ClassTransient, NotDelivered: true, Message: "connection refused"},
			want: want{retry: true, reason: igv1.ReasonInstagramError},
		},
		"transient graph error is retried": {
			err:  graph(instagram.ClassTransient, 2, 0),
			want: want{retry: true, reason: igv1.ReasonInstagramError, apiError: &igv1.MessageError{Code: 2, Type: "OAuthException", Message: "refused"}},
		},
		"timeout after the request was written is ambiguous": {
			err:  &instagram.Error{Class: instagram.ClassTransient, Message: "context deadline exceeded"},
			want: want{reason: igv1.ReasonDeliveryUnknown, mentions: "not retried automatically"},
		},
		"5xx without a Graph body is ambiguous": {
			err:  &instagram.Error{Class: instagram.ClassTransient, HTTPStatus: 502, Message: "Bad Gateway"},
			want: want{reason: igv1.ReasonDeliveryUnknown},
		},
		"an error from outside the client is ambiguous": {
			err:  errors.New("something else"),
			want: want{reason: igv1.ReasonDeliveryUnknown},
		},
		"an unknown refusal fails without retry": {
			err:  &instagram.Error{Class: instagram.ClassUnknown, HTTPStatus: 404, NotDelivered: true},
			want: want{reason: igv1.ReasonInstagramError},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out := classifySend(tc.err, &igv1.InstagramMessageSpec{Tag: tc.tag})
			got := want{retry: out.retry, retryAfter: out.retryAfter, reason: out.reason, apiError: out.apiError, mentions: tc.want.mentions,
				tokenRefused: out.tokenRefused}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("classifySend (-want +got):\n%s", diff)
			}
			if !strings.Contains(out.message, tc.want.mentions) {
				t.Errorf("message %q does not mention %q", out.message, tc.want.mentions)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	cases := map[string]struct {
		attempts   int32
		retryAfter time.Duration
		want       time.Duration
	}{
		"first":                          {attempts: 1, want: 5 * time.Second},
		"second doubles":                 {attempts: 2, want: 10 * time.Second},
		"fifth":                          {attempts: 5, want: 80 * time.Second},
		"capped":                         {attempts: 9, want: 5 * time.Minute},
		"many attempts do not overflow":  {attempts: 1 << 30, want: 5 * time.Minute},
		"Retry-After wins when longer":   {attempts: 1, retryAfter: time.Minute, want: time.Minute},
		"Retry-After beyond the cap too": {attempts: 1, retryAfter: time.Hour, want: time.Hour},
		"backoff wins when longer":       {attempts: 4, retryAfter: time.Second, want: 40 * time.Second},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := retryDelay(tc.attempts, tc.retryAfter, 5*time.Second, 5*time.Minute); got != tc.want {
				t.Errorf("retryDelay = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestChannelReadiness(t *testing.T) {
	withReady := func(st metav1.ConditionStatus, reason, msg string) *igv1.InstagramChannel {
		ch := &igv1.InstagramChannel{}
		ch.Status.Conditions = []metav1.Condition{{Type: igv1.ConditionReady, Status: st, Reason: reason, Message: msg}}
		return ch
	}
	suspended := withReady(metav1.ConditionTrue, igv1.ReasonReady, "")
	suspended.Spec.Suspend = true
	deleting := withReady(metav1.ConditionTrue, igv1.ReasonReady, "")
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}

	cases := map[string]struct {
		ch      *igv1.InstagramChannel
		ready   bool
		mention string
	}{
		"missing":        {ch: nil, mention: `channel "support" not found`},
		"no condition":   {ch: &igv1.InstagramChannel{}, mention: "no Ready condition"},
		"token invalid":  {ch: withReady(metav1.ConditionFalse, igv1.ReasonTokenInvalid, "code 190/463"), mention: "not Ready (TokenInvalid): code 190/463"},
		"rate limited":   {ch: withReady(metav1.ConditionFalse, igv1.ReasonRateLimited, ""), mention: "(RateLimited)"},
		"awaiting login": {ch: withReady(metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization, ""), mention: "(AwaitingAuthorization)"},
		"suspended":      {ch: suspended, mention: "suspended"},
		"deleting":       {ch: deleting, mention: "being deleted"},
		"ready":          {ch: withReady(metav1.ConditionTrue, igv1.ReasonReady, ""), ready: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ready, why := channelReadiness(tc.ch, "support")
			if ready != tc.ready || !strings.Contains(why, tc.mention) {
				t.Errorf("channelReadiness = (%v, %q), want (%v, containing %q)", ready, why, tc.ready, tc.mention)
			}
		})
	}
}

func TestMessageCacheSelector(t *testing.T) {
	sel := MessageCacheSelector()
	cases := map[string]struct {
		labels map[string]string
		want   bool
	}{
		"user-created without labels":  {labels: nil, want: true},
		"outgoing, labelled, not done": {labels: map[string]string{igv1.LabelDirection: "outgoing", igv1.LabelChannel: "support"}, want: true},
		"outgoing, done":               {labels: map[string]string{igv1.LabelDirection: "outgoing", igv1.LabelDone: "true"}, want: false},
		"incoming from the receiver":   {labels: map[string]string{igv1.LabelDirection: "incoming", igv1.LabelChannel: "support"}, want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := sel.Matches(labels.Set(tc.labels)); got != tc.want {
				t.Errorf("selector %q matches %v = %v, want %v", sel, tc.labels, got, tc.want)
			}
		})
	}
}

func TestOutgoingMessage(t *testing.T) {
	cases := map[string]struct {
		spec igv1.InstagramMessageSpec
		want instagram.OutgoingMessage
	}{
		"text reply": {
			spec: igv1.InstagramMessageSpec{ContactID: "42", Text: "hi", ReplyTo: "m_1"},
			want: instagram.OutgoingMessage{RecipientID: "42", Text: "hi", ReplyTo: "m_1"},
		},
		"attachment with tag": {
			spec: igv1.InstagramMessageSpec{ContactID: "42", Tag: igv1.TagHumanAgent,
				Attachments: []igv1.Attachment{{Type: "image", URL: "https://cdn.example.com/a.png"}}},
			want: instagram.OutgoingMessage{RecipientID: "42", AttachmentType: "image",
				AttachmentURL: "https://cdn.example.com/a.png", HumanAgent: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, outgoingMessage(&tc.spec)); diff != "" {
				t.Errorf("outgoingMessage (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRetentionRunnerIsLeaderOnly keeps two managers from deleting at once.
func TestRetentionRunnerIsLeaderOnly(t *testing.T) {
	if !(&RetentionRunner{}).NeedLeaderElection() {
		t.Error("RetentionRunner must run on the leader only")
	}
}

func TestSendLeaseExpiry(t *testing.T) {
	sent := time.Date(2025, 11, 21, 12, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		status igv1.InstagramMessageStatus
		want   time.Time
	}{
		"the lease's expiry": {
			status: igv1.InstagramMessageStatus{SendLease: &igv1.SendLease{Holder: "a", ExpiresAt: metav1.NewTime(sent.Add(time.Minute))}},
			want:   time.Date(2025, 11, 21, 12, 1, 0, 0, time.UTC),
		},
		"a Sending written before leases: from its Reconciling transition": {
			status: igv1.InstagramMessageStatus{Conditions: []metav1.Condition{{
				Type: igv1.ConditionReconciling, Status: metav1.ConditionTrue, LastTransitionTime: metav1.NewTime(sent),
			}}},
			want: time.Date(2025, 11, 21, 12, 1, 0, 0, time.UTC),
		},
		"neither: expired": {},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := sendLeaseExpiry(&igv1.InstagramMessage{Status: tc.status}, time.Minute)
			if !got.Equal(tc.want) {
				t.Errorf("sendLeaseExpiry = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLeaseDurationCoversSendAndOutcomeWrite(t *testing.T) {
	got := MessageOptions{SendTimeout: 15 * time.Second}.withDefaults().leaseDuration()
	if want := 60 * time.Second; got != want {
		t.Errorf("leaseDuration = %s, want %s", got, want)
	}
}

func TestAmbiguousOutcomeKeepsProofOfDelivery(t *testing.T) {
	now := time.Date(2025, 11, 21, 12, 0, 0, 0, time.UTC)
	unknown := sendOutcome{reason: igv1.ReasonDeliveryUnknown, message: "timeout"}
	for _, phase := range []igv1.Phase{igv1.PhaseSent, igv1.PhaseRead} {
		m := &igv1.InstagramMessage{Status: igv1.InstagramMessageStatus{
			Phase: phase, MessageID: "mid-echo", SendLease: &igv1.SendLease{Holder: "a"},
		}}
		failedStatus(unknown, now)(m)
		if m.Status.Phase != phase || m.Status.MessageID != "mid-echo" || m.Status.SendLease != nil {
			t.Errorf("%s: DeliveryUnknown over proof of delivery gave %+v", phase, m.Status)
		}
	}
	m := &igv1.InstagramMessage{Status: igv1.InstagramMessageStatus{Phase: igv1.PhaseSending, SendLease: &igv1.SendLease{Holder: "a"}}}
	failedStatus(unknown, now)(m)
	if m.Status.Phase != igv1.PhaseFailed || m.Status.Reason != igv1.ReasonDeliveryUnknown || m.Status.SendLease != nil {
		t.Errorf("Sending: got %+v", m.Status)
	}
}
