package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The channel's messenger profile: ice breakers and the persistent menu
// (INSTAGRAM-API.md "Messenger profile"). The manager applies them, compares
// them with Instagram's view on the drift check and removes what leaves the
// spec. Absent fields have no default, so Argo CD sees no drift.

// ConditionProfileSynced on a channel: Instagram shows the ice breakers and
// persistent menu of the spec.
const ConditionProfileSynced = "ProfileSynced"

// Reasons of ProfileSynced.
const (
	ReasonProfileSynced     = "ProfileSynced"
	ReasonProfileSyncFailed = "ProfileSyncFailed"
)

// EventProfileApplied is the Event of a profile written to Instagram.
const EventProfileApplied = "ProfileApplied"

// IceBreakerLocale is the ice breakers of one locale.
type IceBreakerLocale struct {
	// locale, e.g. default (required among the locales) or de_DE.
	// +kubebuilder:validation:Pattern=`^(default|[a-z]{2}_[A-Z]{2})$`
	// +required
	Locale string `json:"locale"`
	// questions, one to four (Instagram's maximum).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	// +listType=atomic
	// +required
	Questions []IceBreaker `json:"questions"`
}

// IceBreaker is one question a customer can tap to start a conversation;
// the tap arrives as a postback with payload.
type IceBreaker struct {
	// question shown.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=80
	// +required
	Question string `json:"question"`
	// payload of the postback.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1000
	// +required
	Payload string `json:"payload"`
}

// MenuLocale is the persistent menu of one locale.
type MenuLocale struct {
	// locale, e.g. default (required among the locales) or de_DE.
	// +kubebuilder:validation:Pattern=`^(default|[a-z]{2}_[A-Z]{2})$`
	// +required
	Locale string `json:"locale"`
	// items of the menu.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +required
	Items []MenuItem `json:"items"`
}

// MenuItem is a persistent-menu entry: a postback or a web_url.
//
// +kubebuilder:validation:XValidation:rule="self.type == 'web_url' ? has(self.url) && !has(self.payload) : has(self.payload) && !has(self.url)",message="a web_url item needs url (and no payload), a postback item needs payload (and no url)"
type MenuItem struct {
	// type: postback or web_url.
	// +required
	Type ButtonType `json:"type"`
	// title of the item.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=30
	// +required
	Title string `json:"title"`
	// payload of a postback item.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1000
	// +optional
	Payload string `json:"payload,omitempty"`
	// url of a web_url item: https only.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://')",message="url must be https"
	// +optional
	URL string `json:"url,omitempty"`
}

// ProfileStatus is the manager's record of the messenger profile it
// manages: which fields it wrote, so that removing them from the spec
// removes them at Instagram, and a digest of what it wrote (bookkeeping,
// not for workloads).
type ProfileStatus struct {
	// iceBreakers is true while the manager manages the ice breakers.
	// +optional
	IceBreakers bool `json:"iceBreakers,omitempty"`
	// persistentMenu is true while the manager manages the menu.
	// +optional
	PersistentMenu bool `json:"persistentMenu,omitempty"`
	// appliedDigest is a digest of the spec last applied.
	// +optional
	AppliedDigest string `json:"appliedDigest,omitempty"`
	// appliedAt is when the manager last wrote the profile.
	// +optional
	AppliedAt *metav1.Time `json:"appliedAt,omitempty"`
}
