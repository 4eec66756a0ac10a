package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CommentMedia is the post, reel or live broadcast a comment is on.
type CommentMedia struct {
	// id of the media.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ID string `json:"id,omitempty"`
	// productType is Meta's media_product_type: FEED, REELS, STORY, AD or
	// LIVE.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	ProductType string `json:"productType,omitempty"`
	// adID of an ad post.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	AdID string `json:"adID,omitempty"`
	// adTitle of an ad post.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	AdTitle string `json:"adTitle,omitempty"`
	// originalMediaID is the organic post an ad post was made from.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	OriginalMediaID string `json:"originalMediaID,omitempty"`
}

// CommentAuthor is who wrote a comment.
type CommentAuthor struct {
	// id is the author's Instagram ID as the comment webhook reports it.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	ID string `json:"id,omitempty"`
	// username of the author.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Username string `json:"username,omitempty"`
	// selfIGScopedID is the author's IGSID for this account where Meta
	// sends it: the ID to message them by (a private reply).
	// +kubebuilder:validation:MaxLength=64
	// +optional
	SelfIGScopedID string `json:"selfIGScopedID,omitempty"`
}

// InstagramCommentSpec is a comment as Instagram reported it.
type InstagramCommentSpec struct {
	// channelRef names the channel whose media the comment is on.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.channelRef is immutable"
	// +required
	ChannelRef ChannelReference `json:"channelRef"`

	// commentID is Instagram's ID of the comment.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.commentID is immutable"
	// +required
	CommentID string `json:"commentID"`

	// parentID is the comment this one replies to, if any.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ParentID string `json:"parentID,omitempty"`

	// media the comment is on.
	// +optional
	Media CommentMedia `json:"media,omitempty"`

	// from is the author.
	// +optional
	From CommentAuthor `json:"from,omitempty"`

	// text of the comment.
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	Text string `json:"text,omitempty"`

	// live marks a comment on a live broadcast (live_comments).
	// +optional
	Live bool `json:"live,omitempty"`

	// mention marks a comment or caption in which the account was
	// @mentioned (the mentions field).
	// +optional
	Mention bool `json:"mention,omitempty"`

	// Actions a workload asks of the comment (comment_actions_types.go);
	// the manager applies them and keeps them true at Instagram.

	// hidden true hides the comment from everyone but its author, false
	// shows it; the manager repairs drift (someone unhiding it in the
	// app). Unset leaves it as it is.
	// +optional
	Hidden *bool `json:"hidden,omitempty"`

	// publicReply is posted once under the comment (top-level comments
	// that are neither hidden nor live only).
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.publicReply is immutable"
	// +optional
	PublicReply *PublicReply `json:"publicReply,omitempty"`

	// delete true deletes the comment at Instagram (once; there is no
	// undo).
	// +kubebuilder:validation:XValidation:rule="oldSelf == false || self == true",message="spec.delete cannot be taken back"
	// +optional
	Delete bool `json:"delete,omitempty"`
}

// InstagramCommentStatus is what the receiver observed about a comment.
type InstagramCommentStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready once recorded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// eventTime is Meta's time of the notification (the comments field
	// carries no time of its own), to the millisecond where Meta sends it.
	// +optional
	EventTime *metav1.MicroTime `json:"eventTime,omitempty"`
	// receivedAt is when the receiver first recorded it.
	// +optional
	ReceivedAt *metav1.MicroTime `json:"receivedAt,omitempty"`
	// editedAt is when Meta reported a new text.
	// +optional
	EditedAt *metav1.MicroTime `json:"editedAt,omitempty"`
	// deletedAt is when Meta reported the comment removed; its text is
	// cleared then.
	// +optional
	DeletedAt *metav1.MicroTime `json:"deletedAt,omitempty"`
	// clipped names fields cut to fit the schema.
	// +listType=atomic
	// +optional
	Clipped []string `json:"clipped,omitempty"`
	// unknownFields names keys of the notification this version does not
	// know.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	UnknownFields []string `json:"unknownFields,omitempty"`

	// actions is what the manager did with spec.hidden, spec.publicReply,
	// spec.delete and the private reply.
	// +optional
	Actions *CommentActionsStatus `json:"actions,omitempty"`
}

// InstagramComment is a comment (or live comment, or mention) on the media of
// a channel's account, recorded by the webhook receiver.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=igcomment,categories=instagram
// +kubebuilder:printcolumn:name="Channel",type=string,JSONPath=`.spec.channelRef.name`
// +kubebuilder:printcolumn:name="Media",type=string,JSONPath=`.spec.media.id`
// +kubebuilder:printcolumn:name="From",type=string,JSONPath=`.spec.from.username`
// +kubebuilder:printcolumn:name="Text",type=string,JSONPath=`.spec.text`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type InstagramComment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec InstagramCommentSpec `json:"spec"`
	// +optional
	Status InstagramCommentStatus `json:"status,omitempty"`
}

// InstagramCommentList is a list of InstagramComment.
//
// +kubebuilder:object:root=true
type InstagramCommentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []InstagramComment `json:"items"`
}

// GetConditions returns the status conditions.
func (c *InstagramComment) GetConditions() []metav1.Condition { return c.Status.Conditions }

// SetConditions replaces the status conditions.
func (c *InstagramComment) SetConditions(conds []metav1.Condition) { c.Status.Conditions = conds }

func init() {
	SchemeBuilder.Register(&InstagramComment{}, &InstagramCommentList{})
}
