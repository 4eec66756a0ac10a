package v1alpha1

// BackfillSpec imports a channel's recent conversations through the
// Conversations API when the channel first connects, so a new channel does
// not start blind. The imported messages are ordinary InstagramMessage
// objects, named like the receiver's, so a later webhook for the same mid
// finds them and makes no second object.
type BackfillSpec struct {
	// conversations is how many of the most recent conversations are
	// imported.
	// +kubebuilder:default=25
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Conversations int32 `json:"conversations,omitempty"`
	// messagesPerConversation is how many of each conversation's most
	// recent messages are imported; Instagram details only the 20 most
	// recent.
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	// +optional
	MessagesPerConversation int32 `json:"messagesPerConversation,omitempty"`
}

const (
	// AnnotationBackfilledAt on an InstagramChannel records when its
	// backfill completed (RFC 3339); the backfill runs once per channel.
	// Remove it to import again.
	AnnotationBackfilledAt = "instagram.leadchat.io/backfilled-at"
	// LabelBackfilled (value "true") marks messages imported by the
	// backfill rather than recorded from a webhook.
	LabelBackfilled = "instagram.leadchat.io/backfilled"
)
