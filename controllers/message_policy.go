package controllers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

// Pure decisions of the message controller: no I/O here, so each rule is a
// table row in message_policy_test.go.

// Values of instagram_messages_sent_total{result} that are not a failure
// reason.
const (
	sendResultSent            = "sent"
	sendResultRetried         = "retried"
	sendResultDeliveryUnknown = "delivery_unknown"
)

// sendResultFailed is the metric result of a message that failed for reason.
func sendResultFailed(reason string) string {
	if reason == igv1.ReasonDeliveryUnknown {
		return sendResultDeliveryUnknown
	}
	return "failed_" + strings.ToLower(reason)
}

// channelReadiness says whether messages may be sent through ch now, and
// when not, why, in words that name the channel's own Ready reason. ch is nil
// when the channel does not exist.
func channelReadiness(ch *igv1.InstagramChannel, name string) (ready bool, why string) {
	switch {
	case ch == nil:
		return false, fmt.Sprintf("channel %q not found", name)
	case !ch.DeletionTimestamp.IsZero():
		return false, fmt.Sprintf("channel %q is being deleted", name)
	case ch.Spec.Suspend:
		return false, fmt.Sprintf("channel %q is suspended (spec.suspend)", name)
	}
	cond := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady)
	switch {
	case cond == nil:
		return false, fmt.Sprintf("channel %q has no Ready condition yet", name)
	case cond.Status != metav1.ConditionTrue:
		why := fmt.Sprintf("channel %q is not Ready (%s)", name, cond.Reason)
		if cond.Message != "" {
			why += ": " + cond.Message
		}
		return false, why
	}
	return true, ""
}

// sendLeaseExpiry is when a message found in Sending may be declared
// interrupted: the expiry of its send lease. A Sending written before
// leases existed counts from the transition of its Reconciling condition
// (written with it) plus leaseDuration; with neither, it is expired.
func sendLeaseExpiry(msg *igv1.InstagramMessage, leaseDuration time.Duration) time.Time {
	if l := msg.Status.SendLease; l != nil {
		return l.ExpiresAt.Time
	}
	if c := meta.FindStatusCondition(msg.Status.Conditions, igv1.ConditionReconciling); c != nil && c.Status == metav1.ConditionTrue {
		return c.LastTransitionTime.Add(leaseDuration)
	}
	return time.Time{}
}

// holdsLease reports whether holder holds msg's send lease.
func holdsLease(msg *igv1.InstagramMessage, holder string) bool {
	return msg.Status.SendLease != nil && msg.Status.SendLease.Holder == holder
}

func leaseHolder(msg *igv1.InstagramMessage) string {
	if msg.Status.SendLease == nil {
		return ""
	}
	return msg.Status.SendLease.Holder
}

// pendingDeadline is when a message that is still not sent fails with
// reason Expired.
func pendingDeadline(msg *igv1.InstagramMessage, maxAge time.Duration) time.Time {
	return msg.CreationTimestamp.Add(maxAge)
}

// retryDelay is the wait after the attempts-th attempt that Instagram surely
// did not accept: exponential from base, capped at ceiling, but never shorter
// than what Instagram asked for.
func retryDelay(attempts int32, retryAfter, base, ceiling time.Duration) time.Duration {
	d := base
	for i := int32(1); i < attempts && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	return max(d, retryAfter)
}

// sendOutcome is what a failed send means for the message.
type sendOutcome struct {
	// retry: Instagram surely did not accept the request and the cause is
	// temporary; the message goes back to Pending.
	retry bool
	// retryAfter is the wait Instagram asked for (0 when it did not say).
	retryAfter time.Duration
	// reason is status.reason: the failure reason, or for a retry the
	// reason of the Reconciling condition.
	reason  string
	message string
	// apiError is Instagram's error body, when it sent one.
	apiError *igv1.MessageError
	// tokenRefused: Instagram refused the channel's token (190). The
	// channel stops at once; the message waits for a new login like every
	// other message of the channel, since nothing was sent.
	tokenRefused bool
}

// classifySend maps an error of instagram.API.Send to what happens to the
// message. Only NotDelivered errors may be retried: any other failure may
// have reached Instagram, and sending again could deliver the message twice.
func classifySend(err error, spec *igv1.InstagramMessageSpec) sendOutcome {
	var ie *instagram.Error
	if !errors.As(err, &ie) {
		// Not classified by the client: nothing says Instagram did not act.
		return sendOutcome{reason: igv1.ReasonDeliveryUnknown, message: deliveryUnknownMessage(err.Error())}
	}
	out := sendOutcome{message: ie.Error()}
	if ie.Code != 0 {
		out.apiError = &igv1.MessageError{
			Code:    int32(ie.Code),
			Subcode: int32(ie.Subcode),
			Type:    ie.Type,
			Message: ie.Message,
		}
	}
	if !ie.NotDelivered {
		out.reason, out.message = igv1.ReasonDeliveryUnknown, deliveryUnknownMessage(ie.Error())
		return out
	}
	switch ie.Class {
	case instagram.ClassRateLimited:
		out.retry, out.retryAfter, out.reason = true, ie.RetryAfter, igv1.ReasonRateLimited
	case instagram.ClassTransient:
		out.retry, out.retryAfter, out.reason = true, ie.RetryAfter, igv1.ReasonInstagramError
	case instagram.ClassOutsideWindow:
		out.reason = igv1.ReasonOutsideWindow
		if spec.Tag == igv1.TagHumanAgent {
			out.message += "; the 7-day HUMAN_AGENT window is closed too: the customer must write first"
		} else {
			out.message += "; the 24-hour messaging window is closed: create a new message with spec.tag HUMAN_AGENT (needs Meta's Human Agent permission) to reply up to 7 days after the customer's last message"
		}
	case instagram.ClassUserUnavailable:
		out.reason = igv1.ReasonUserUnavailable
	case instagram.ClassPermissionDenied:
		out.reason = igv1.ReasonPermissionDenied
	case instagram.ClassBadRequest:
		out.reason = igv1.ReasonBadRequest
	case instagram.ClassTokenInvalid:
		out.retry, out.tokenRefused, out.reason = true, true, igv1.ReasonTokenInvalid
		out.message += "; the channel needs a new login"
	default:
		// Refused for a reason the client could not classify: not retried,
		// so an unknown answer cannot turn into a hot loop.
		out.reason = igv1.ReasonInstagramError
	}
	return out
}

func deliveryUnknownMessage(cause string) string {
	return "the send may or may not have reached Instagram (" + cause +
		"); it is not retried automatically: check the conversation and create a new message if needed"
}

// outgoingMessage is the Instagram request for an outgoing message's spec.
func outgoingMessage(spec *igv1.InstagramMessageSpec) instagram.OutgoingMessage {
	out := instagram.OutgoingMessage{
		RecipientID: spec.ContactID,
		Text:        spec.Text,
		HumanAgent:  spec.Tag == igv1.TagHumanAgent,
		ReplyTo:     spec.ReplyTo,
	}
	if len(spec.Attachments) > 0 {
		out.AttachmentType = spec.Attachments[0].Type
		out.AttachmentURL = spec.Attachments[0].URL
	}
	return out
}
