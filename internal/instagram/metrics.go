package instagram

import (
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Endpoint names: the fixed values of the endpoint label and of
// Error.Endpoint.
const (
	EndpointExchangeCode  = "exchange_code"
	EndpointExchangeToken = "exchange_token"
	EndpointRefreshToken  = "refresh_token"
	EndpointMe            = "me"
	EndpointSubscribe     = "subscribe"
	EndpointSubscriptions = "subscriptions"
	EndpointUnsubscribe   = "unsubscribe"
	EndpointSend          = "send"
	EndpointProfile       = "profile"
	// EndpointConversations, EndpointConversation and
	// EndpointConversationMessage are the Conversations API (backfill).
	EndpointConversations       = "conversations"
	EndpointConversation        = "conversation"
	EndpointConversationMessage = "conversation_message"
	// Comment moderation and replies (comments.go) and the messenger
	// profile (profile.go).
	EndpointComment          = "comment"
	EndpointHideComment      = "hide_comment"
	EndpointDeleteComment    = "delete_comment"
	EndpointReplyComment     = "reply_comment"
	EndpointMessengerProfile = "messenger_profile"
	EndpointSetProfile       = "set_messenger_profile"
	EndpointDeleteProfile    = "delete_messenger_profile"
)

// Endpoints lists every endpoint label value.
var Endpoints = []string{
	EndpointExchangeCode, EndpointExchangeToken, EndpointRefreshToken, EndpointMe,
	EndpointSubscribe, EndpointSubscriptions, EndpointUnsubscribe, EndpointSend, EndpointProfile,
	EndpointConversations, EndpointConversation, EndpointConversationMessage,
	EndpointComment, EndpointHideComment, EndpointDeleteComment, EndpointReplyComment,
	EndpointMessengerProfile, EndpointSetProfile, EndpointDeleteProfile,
}

// ResultSuccess is the result label of a successful call; failures use the
// lower-case class (ResultOf).
const ResultSuccess = "success"

// MetricRequestsTotal is the name of the request counter.
const MetricRequestsTotal = "instagram_api_requests_total"

// newRequestsCounter builds instagram_api_requests_total and registers it on
// reg when reg is not nil. When an identical collector is already registered
// (a second NewClients on the same registry), that one is reused so both
// count into the same series.
func newRequestsCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequestsTotal,
		Help: "Calls to the Instagram API by endpoint and result (success or the lower-case error class).",
	}, []string{"endpoint", "result"})
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		// A different collector under our name is a wiring bug in the
		// binary; failing loudly at start-up is the only useful answer.
		panic(err)
	}
	return c
}

// ResultOf is the result label for the outcome err.
func ResultOf(err error) string {
	if err == nil {
		return ResultSuccess
	}
	return strings.ToLower(string(ClassOf(err)))
}
