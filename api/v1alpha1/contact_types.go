package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WindowState says whether Instagram will accept a reply to a contact now,
// as far as the events the operator recorded tell.
// +kubebuilder:validation:Enum=Open;HumanAgent;Closed;Unknown
type WindowState string

const (
	// WindowOpen: the standard 24-hour window is open; any reply goes out.
	WindowOpen WindowState = "Open"
	// WindowHumanAgent: the 24-hour window is closed, the 7-day window of
	// HUMAN_AGENT tagged replies is still open.
	WindowHumanAgent WindowState = "HumanAgent"
	// WindowClosed: both windows are closed; the customer must write first.
	WindowClosed WindowState = "Closed"
	// WindowUnknown: no recorded event tells (the customer's last event
	// predates the operator, or its effect on the window is not documented):
	// replies are sent and Instagram decides.
	WindowUnknown WindowState = "Unknown"
)

// Values of LabelWindow: the lower-case WindowState, so "contacts I may
// still answer" is one label selector.
const (
	WindowLabelOpen       = "open"
	WindowLabelHumanAgent = "human-agent"
	WindowLabelClosed     = "closed"
	WindowLabelUnknown    = "unknown"
)

// Labels of contacts.
const (
	// LabelWindow on an InstagramContact is its status.window.state in
	// lower case (WindowLabel* values), kept current by the receiver when a
	// window opens and by the manager when one closes.
	LabelWindow = "instagram.leadchat.io/window"
	// LabelProfile on an InstagramContact is set by the manager while the
	// profile cannot be read (ProfileLabel* values); the receiver removes it
	// when the customer writes again, which makes the manager try again.
	LabelProfile = "instagram.leadchat.io/profile"

	ProfileLabelConsentRequired = "consent-required"
	ProfileLabelUnavailable     = "unavailable"
)

// Opener values: the kind of the event that last opened (or may have
// opened) the reply window.
const (
	OpenerMessage      = "message"
	OpenerStoryMention = "story_mention"
	OpenerPostback     = "postback"
	OpenerReferral     = "referral"
	OpenerReaction     = "reaction"
)

// Contact reasons (conditions of an InstagramContact) and message reasons
// of the window check.
const (
	// ReasonProfileFetched: the profile is as Instagram reported it at
	// status.profile.fetchedAt.
	ReasonProfileFetched = "ProfileFetched"
	// ReasonConsentRequired: Instagram refuses the profile until the
	// customer messages the account or taps an ice breaker or menu item
	// (code 230). Tried again when the customer writes.
	ReasonConsentRequired = "ConsentRequired"
	// ReasonProfileUnavailable: the customer blocked the account or deleted
	// their profile. Tried again when the customer writes.
	ReasonProfileUnavailable = "ProfileUnavailable"
	// ReasonProfilePending: the profile has not been fetched yet (first
	// fetch, rate limit, a transient error).
	ReasonProfilePending = "ProfilePending"
)

// ConditionProfileAvailable is True while status.profile holds what
// Instagram reported.
const ConditionProfileAvailable = "ProfileAvailable"

// ContactSpec identifies a customer of a channel. Both fields are set by the
// receiver when it first records the customer, and never change.
type ContactSpec struct {
	// channelRef names the channel the customer writes to.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.channelRef is immutable"
	// +required
	ChannelRef ChannelReference `json:"channelRef"`

	// contactID is the customer's Instagram-scoped ID (IGSID).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.contactID is immutable"
	// +required
	ContactID string `json:"contactID"`
}

// ContactProfile is the customer's profile as Instagram reports it
// (GET /<IGSID>). A field Instagram omits stays empty: nothing is guessed.
type ContactProfile struct {
	// name the customer shows; Instagram may send none.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Name string `json:"name,omitempty"`
	// username (the @handle).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Username string `json:"username,omitempty"`
	// profilePictureURL is a CDN link that expires (see
	// profilePictureExpiresAt); the manager fetches the profile again before.
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	ProfilePictureURL string `json:"profilePictureURL,omitempty"`
	// profilePictureExpiresAt is when profilePictureURL stops working, read
	// from the URL where the CDN states it, else estimated.
	// +optional
	ProfilePictureExpiresAt *metav1.Time `json:"profilePictureExpiresAt,omitempty"`
	// followerCount of the customer's account.
	// +optional
	FollowerCount *int64 `json:"followerCount,omitempty"`
	// followsBusiness: the customer follows the channel's account.
	// +optional
	FollowsBusiness *bool `json:"followsBusiness,omitempty"`
	// followedByBusiness: the channel's account follows the customer.
	// +optional
	FollowedByBusiness *bool `json:"followedByBusiness,omitempty"`
	// verified: the customer's account has the verified badge.
	// +optional
	Verified *bool `json:"verified,omitempty"`
	// fetchedAt is when Instagram last returned the profile.
	// +optional
	FetchedAt *metav1.Time `json:"fetchedAt,omitempty"`
	// checkedAt is when the manager last asked for it, successfully or not.
	// +optional
	CheckedAt *metav1.Time `json:"checkedAt,omitempty"`
}

// ReplyWindow is when Instagram accepts replies to the contact, computed
// from the customer's recorded events (docs/concepts.md, "Reply windows").
type ReplyWindow struct {
	// state now: Open, HumanAgent (only HUMAN_AGENT tagged replies), Closed
	// or Unknown (Instagram decides).
	// +optional
	State WindowState `json:"state,omitempty"`
	// openedAt is the customer's last event known to open the window (a
	// message: text, media, share, story reply, quick-reply tap).
	// +optional
	OpenedAt *metav1.MicroTime `json:"openedAt,omitempty"`
	// unconfirmedAt is the customer's last event Meta does not say opens
	// the window (a story mention, a postback, a referral, a reaction).
	// While it may have opened it, the operator does not refuse a reply.
	// +optional
	UnconfirmedAt *metav1.MicroTime `json:"unconfirmedAt,omitempty"`
	// unconfirmedBy is the kind of that event.
	// +kubebuilder:validation:MaxLength=32
	// +optional
	UnconfirmedBy string `json:"unconfirmedBy,omitempty"`
	// standardClosesAt is when the 24-hour window closes (closed).
	// +optional
	StandardClosesAt *metav1.MicroTime `json:"standardClosesAt,omitempty"`
	// humanAgentClosesAt is when the 7-day HUMAN_AGENT window closes
	// (closed).
	// +optional
	HumanAgentClosesAt *metav1.MicroTime `json:"humanAgentClosesAt,omitempty"`
	// refusedAt is when Instagram last refused a send as outside the window
	// (code 10, subcode 2534022) although no later customer event is
	// recorded: Instagram's answer wins over the computation.
	// +optional
	RefusedAt *metav1.MicroTime `json:"refusedAt,omitempty"`
	// refusedHumanAgent: that refused send was tagged HUMAN_AGENT, so the
	// 7-day window is closed too.
	// +optional
	RefusedHumanAgent bool `json:"refusedHumanAgent,omitempty"`
}

// InstagramContactStatus is what the operator knows about a customer.
type InstagramContactStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions: Ready, Reconciling, Stalled and ProfileAvailable.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// profile as Instagram reports it.
	// +optional
	Profile ContactProfile `json:"profile,omitempty"`
	// firstMessageAt is the customer's first recorded event.
	// +optional
	FirstMessageAt *metav1.MicroTime `json:"firstMessageAt,omitempty"`
	// lastMessageAt is the customer's last recorded event.
	// +optional
	LastMessageAt *metav1.MicroTime `json:"lastMessageAt,omitempty"`
	// lastAnsweredAt is when the business last wrote to the customer (the
	// echo of any reply, from this operator or another client).
	// +optional
	LastAnsweredAt *metav1.MicroTime `json:"lastAnsweredAt,omitempty"`
	// window is when replies are accepted.
	// +optional
	Window ReplyWindow `json:"window,omitempty"`
	// lastHandledReconcileAt echoes the instagram.leadchat.io/requestedAt
	// annotation once the profile was fetched for it.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// InstagramContact is one customer of a channel: who they are (their
// profile) and whether a reply will be accepted. The receiver records that
// the customer exists and when they wrote; the manager fetches the profile
// and keeps the window state current. Named <channel>-<IGSID>.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=igcontact,categories=instagram
// +kubebuilder:printcolumn:name="Channel",type=string,JSONPath=`.spec.channelRef.name`
// +kubebuilder:printcolumn:name="Username",type=string,JSONPath=`.status.profile.username`
// +kubebuilder:printcolumn:name="Name",type=string,JSONPath=`.status.profile.name`
// +kubebuilder:printcolumn:name="Window",type=string,JSONPath=`.status.window.state`
// +kubebuilder:printcolumn:name="Last-Message",type=date,JSONPath=`.status.lastMessageAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type InstagramContact struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ContactSpec `json:"spec"`
	// +optional
	Status InstagramContactStatus `json:"status,omitempty"`
}

// InstagramContactList is a list of InstagramContact.
//
// +kubebuilder:object:root=true
type InstagramContactList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []InstagramContact `json:"items"`
}

// GetConditions returns the status conditions.
func (c *InstagramContact) GetConditions() []metav1.Condition { return c.Status.Conditions }

// SetConditions replaces the status conditions.
func (c *InstagramContact) SetConditions(conds []metav1.Condition) { c.Status.Conditions = conds }

func init() {
	SchemeBuilder.Register(&InstagramContact{}, &InstagramContactList{})
}
