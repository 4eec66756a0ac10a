package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What a workload asks of a comment (spec fields the manager keeps true at
// Instagram) and what the manager did (status). The receiver records the
// comment; only these fields are the workload's.

// ScopeManageComments is the scope comment replies and moderation need.
const ScopeManageComments Scope = "instagram_business_manage_comments"

// PrivateReplyWindow is how long after a comment Instagram accepts its
// private reply.
const PrivateReplyWindow = 7 * 24 * time.Hour

// Condition type and reasons of comment actions and private replies.
const (
	// ConditionSynced on an InstagramComment: Instagram shows what the
	// comment's spec asks (hidden, reply, deletion).
	ConditionSynced = "Synced"

	ReasonSynced = "Synced"
	// ReasonScopeMissing: the channel's spec.scopes lack the scope the
	// action needs.
	ReasonScopeMissing = "ScopeMissing"
	// ReasonNotAllowed: Instagram does not allow the action on this
	// comment (a public reply to a reply, a hidden or a live comment).
	ReasonNotAllowed = "NotAllowed"
	// ReasonReplyUnknown: a public reply was interrupted after it may have
	// reached Instagram; it is not posted again.
	ReasonReplyUnknown = "ReplyUnknown"
	// ReasonAlreadyReplied: the comment has its private reply (one per
	// comment); the message fails before any call.
	ReasonAlreadyReplied = "AlreadyReplied"
	// ReasonReplyWindowClosed: the comment is older than Instagram's 7 days
	// for a private reply; the message fails before any call.
	ReasonReplyWindowClosed = "ReplyWindowClosed"
)

// CommentReference names an InstagramComment in the same namespace.
type CommentReference struct {
	// name of the InstagramComment.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// PublicReply is a reply posted under a comment.
type PublicReply struct {
	// text of the reply.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2200
	// +required
	Text string `json:"text"`
}

// CommentActionsStatus is what the manager did with a comment.
type CommentActionsStatus struct {
	// hidden is whether Instagram hides the comment, as last observed.
	// +optional
	Hidden *bool `json:"hidden,omitempty"`
	// checkedAt is when hidden was last compared with Instagram.
	// +optional
	CheckedAt *metav1.Time `json:"checkedAt,omitempty"`
	// publicReplyID is the ID of the posted public reply.
	// +optional
	PublicReplyID string `json:"publicReplyID,omitempty"`
	// publicReplyStartedAt is set before the reply is posted: found
	// without publicReplyID, the reply may have been posted and is not
	// posted again (ReplyUnknown).
	// +optional
	PublicReplyStartedAt *metav1.Time `json:"publicReplyStartedAt,omitempty"`
	// deletedAt is when the manager deleted the comment at Instagram.
	// +optional
	DeletedAt *metav1.Time `json:"deletedAt,omitempty"`
	// privateReply names the outgoing InstagramMessage that holds the
	// comment's one private reply.
	// +optional
	PrivateReply string `json:"privateReply,omitempty"`
}
