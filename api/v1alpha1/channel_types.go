package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kinds an appRef may name.
const (
	KindInstagramApp        = "InstagramApp"
	KindClusterInstagramApp = "ClusterInstagramApp"
)

// AppReference names the app a channel uses.
type AppReference struct {
	// kind of the app: InstagramApp (same namespace) or ClusterInstagramApp.
	// +kubebuilder:validation:Enum=InstagramApp;ClusterInstagramApp
	// +kubebuilder:default=InstagramApp
	// +optional
	Kind string `json:"kind,omitempty"`

	// name of the app.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// SecretKeySelector names one key of a Secret in the channel's namespace.
type SecretKeySelector struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// key holding the token.
	// +kubebuilder:default=accessToken
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// Scope is an Instagram API with Instagram Login permission.
// +kubebuilder:validation:Enum=instagram_business_basic;instagram_business_manage_messages;instagram_business_manage_comments;instagram_business_content_publish;instagram_business_manage_insights
type Scope string

// WebhookField is a webhook field an account can be subscribed to.
// +kubebuilder:validation:Enum=messages;messaging_seen;message_reactions;messaging_postbacks;messaging_referral;messaging_optins;messaging_handover;message_edit;standby;comments;live_comments;mentions;story_insights
type WebhookField string

// InstagramChannelSpec is the desired state of a channel: one Instagram
// professional account connected through one app.
type InstagramChannelSpec struct {
	// appRef names the InstagramApp (same namespace) or ClusterInstagramApp
	// whose credentials this channel uses.
	// +required
	AppRef AppReference `json:"appRef"`

	// initialTokenSecretRef names a Secret you own that holds a short- or
	// long-lived token to start from ("bring your own token"). The operator
	// only reads it; when its content changes the token is adopted again.
	// Absent: the channel publishes status.authorizationURL for Business Login.
	// +optional
	InitialTokenSecretRef *SecretKeySelector `json:"initialTokenSecretRef,omitempty"`

	// tokenSecretName is the Secret the operator writes the long-lived token
	// to. Default "<channel name>-instagram-token".
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$`
	// +optional
	TokenSecretName string `json:"tokenSecretName,omitempty"`

	// scopes requested at login.
	// +kubebuilder:default={instagram_business_basic,instagram_business_manage_messages}
	// +kubebuilder:validation:MinItems=1
	// +listType=set
	// +optional
	Scopes []Scope `json:"scopes,omitempty"`

	// subscribedFields are sent to Instagram when the operator subscribes the
	// account to the app's webhooks (the call requires at least one field).
	// They do not filter deliveries: Meta delivers every field the app
	// subscribes to in the Meta dashboard to every subscribed account, so
	// what a channel receives is set per app, in the dashboard. Subscribing
	// a field here that the app has not subscribed delivers nothing.
	// +kubebuilder:default={messages,messaging_seen,message_reactions,messaging_postbacks}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	SubscribedFields []WebhookField `json:"subscribedFields,omitempty"`

	// redirectURL overrides the OAuth redirect URI (default: the app's
	// status.redirectURL, from the operator's --public-url). https, or http to
	// a loopback host only.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="spec.redirectURL must be an https URL (http is allowed only for localhost, 127.0.0.1 or [::1])"
	// +optional
	RedirectURL string `json:"redirectURL,omitempty"`

	// refreshBefore is how long before expiry the token is refreshed, from 1m
	// to 1416h (59 days). Default 480h0m0s (20 days before the 60-day expiry).
	// +kubebuilder:default="480h0m0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1m') && duration(self) <= duration('1416h')",messageExpression="'spec.refreshBefore must be a duration like 480h0m0s (units h, m, s) from 1m to 1416h (59 days), not \"' + self + '\"'"
	// +optional
	RefreshBefore *metav1.Duration `json:"refreshBefore,omitempty"`

	// messageRetention: InstagramMessage objects of this channel older than
	// this are deleted (outgoing ones only once finished). 0s keeps them;
	// otherwise at least 1h, so a webhook Meta redelivers within its retry
	// window never comes back as a new object. Default 168h0m0s (7 days).
	// +kubebuilder:default="168h0m0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && (duration(self) == duration('0s') || duration(self) >= duration('1h'))",messageExpression="'spec.messageRetention must be 0s (keep) or a duration like 168h0m0s (units h, m, s) of at least 1h, not \"' + self + '\"'"
	// +optional
	MessageRetention *metav1.Duration `json:"messageRetention,omitempty"`

	// suspend stops every Instagram call: no refresh, no subscription
	// changes, no sends. Incoming webhooks are still recorded.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// sink receives every event of the channel as a CloudEvent: incoming
	// events recorded by the receiver and outgoing outcomes (sent, read,
	// failed). See docs/events.md.
	// +optional
	Sink *SinkSpec `json:"sink,omitempty"`
	// backfill, when set, imports the recent conversations once the channel
	// first connects (see BackfillSpec). Off by default.
	// +optional
	Backfill *BackfillSpec `json:"backfill,omitempty"`
	// The messenger profile (channel_profile_types.go), applied and
	// drift-checked by the manager; removing a field removes it at
	// Instagram. Not shown on desktop.

	// iceBreakers per locale; the default locale is required.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.exists(l, l.locale == 'default')",message="spec.iceBreakers needs the default locale"
	// +listType=map
	// +listMapKey=locale
	// +optional
	IceBreakers []IceBreakerLocale `json:"iceBreakers,omitempty"`

	// persistentMenu per locale; the default locale is required.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.exists(l, l.locale == 'default')",message="spec.persistentMenu needs the default locale"
	// +listType=map
	// +listMapKey=locale
	// +optional
	PersistentMenu []MenuLocale `json:"persistentMenu,omitempty"`
}

// AccountStatus is the Instagram professional account behind a channel, as
// /me reports it.
type AccountStatus struct {
	// userID is the professional account ID: webhook entry[].id and the
	// recipient of incoming messages. Channels are routed by it.
	// +optional
	UserID string `json:"userID,omitempty"`
	// id is the app-scoped ID (not used for routing).
	// +optional
	ID string `json:"id,omitempty"`
	// +optional
	Username string `json:"username,omitempty"`
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	AccountType string `json:"accountType,omitempty"`
	// +optional
	ProfilePictureURL string `json:"profilePictureURL,omitempty"`
	// connectedAt is when this channel first connected the account. Of
	// the channels that connect one account, the first to connect serves it
	// (not the first created: a channel created long ago must not take over
	// an account another team connected first). Channels connected before
	// this field existed count from their creation.
	// +optional
	ConnectedAt *metav1.Time `json:"connectedAt,omitempty"`
}

// TokenStatus describes the managed token without revealing it.
type TokenStatus struct {
	// secretName is the managed Secret holding the token.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// expiresAt is when the token stops working.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// refreshedAt is when the token was issued or last refreshed.
	// +optional
	RefreshedAt *metav1.Time `json:"refreshedAt,omitempty"`
	// nextRefreshAt is when the next refresh is due, jitter included, kept
	// here so a restart does not move it.
	// +optional
	NextRefreshAt *metav1.Time `json:"nextRefreshAt,omitempty"`
	// initialSecretHash is a keyed MAC (HMAC-SHA256 under a key only the
	// manager holds) over the initial token Secret's key, so a changed Secret
	// is noticed without keeping the token anywhere else, and nobody can test
	// guesses of the value against it. Internal bookkeeping.
	// +optional
	InitialSecretHash string `json:"initialSecretHash,omitempty"`
	// failures counts consecutive failed refresh or exchange attempts; it
	// drives the exponential backoff.
	// +optional
	Failures int32 `json:"failures,omitempty"`
	// lastFailureAt is when the last attempt failed.
	// +optional
	LastFailureAt *metav1.Time `json:"lastFailureAt,omitempty"`
	// scopes granted with the current token.
	// +optional
	// +listType=atomic
	Scopes []string `json:"scopes,omitempty"`
}

// AuthorizationStatus tracks a Business Login in progress.
type AuthorizationStatus struct {
	// nonce is the single-use value bound into the signed OAuth state. It is
	// rotated after each completed or denied login.
	// +optional
	Nonce string `json:"nonce,omitempty"`
	// issuedAt is when the current authorization URL was issued.
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`
	// deniedAt is when the person last refused the login.
	// +optional
	DeniedAt *metav1.Time `json:"deniedAt,omitempty"`
	// message explains the last denial or failure.
	// +optional
	Message string `json:"message,omitempty"`
}

// InstagramChannelStatus is the observed state of a channel.
type InstagramChannelStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling, Stalled, Authorized, WebhookSubscribed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// account is the connected Instagram professional account.
	// +optional
	Account *AccountStatus `json:"account,omitempty"`

	// token describes the managed token (never the token itself).
	// +optional
	Token *TokenStatus `json:"token,omitempty"`

	// authorizationURL is where a person logs in to connect the account. Set
	// only while the channel awaits authorization.
	// +optional
	AuthorizationURL string `json:"authorizationURL,omitempty"`

	// authorization tracks a Business Login in progress.
	// +optional
	Authorization *AuthorizationStatus `json:"authorization,omitempty"`

	// subscribedFields are the fields sent with the account's last
	// subscription (see spec.subscribedFields: not a delivery filter).
	// +listType=atomic
	// +optional
	SubscribedFields []string `json:"subscribedFields,omitempty"`

	// subscribedAt is when the operator last subscribed the account's
	// webhooks (first connection, changed fields, a new token, or repaired
	// drift). The periodic drift check is not recorded here, so it writes
	// nothing.
	// +optional
	SubscribedAt *metav1.Time `json:"subscribedAt,omitempty"`

	// subscriptionCheckedAt is the former name of subscribedAt (it never
	// recorded the periodic checks). The manager moves a value found here
	// to subscribedAt and clears it.
	//
	// Deprecated: read subscribedAt.
	// +optional
	SubscriptionCheckedAt *metav1.Time `json:"subscriptionCheckedAt,omitempty"`

	// lastHandledReconcileAt echoes the instagram.leadchat.io/requestedAt
	// annotation value handled last.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// sinkURI is the resolved address of spec.sink (Knative's
	// status.sinkUri); empty while it does not resolve (condition
	// SinkProvided).
	// +optional
	SinkURI string `json:"sinkURI,omitempty"`
	// sink is the rest of the resolved sink: CA certificates, audience,
	// dead-letter sink.
	// +optional
	Sink *SinkStatus `json:"sink,omitempty"`
	// profile records the messenger profile the manager manages.
	// +optional
	Profile *ProfileStatus `json:"profile,omitempty"`
}

// InstagramChannel connects one Instagram professional account: it keeps the
// account's token fresh in a Secret and its webhooks subscribed.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=igch,categories=instagram
// +kubebuilder:printcolumn:name="Username",type=string,JSONPath=`.status.account.username`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Token-Expires",type=string,format=date-time,JSONPath=`.status.token.expiresAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type InstagramChannel struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec InstagramChannelSpec `json:"spec"`
	// +optional
	Status InstagramChannelStatus `json:"status,omitempty"`
}

// InstagramChannelList is a list of InstagramChannel.
//
// +kubebuilder:object:root=true
type InstagramChannelList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []InstagramChannel `json:"items"`
}

// GetConditions returns the status conditions.
func (c *InstagramChannel) GetConditions() []metav1.Condition { return c.Status.Conditions }

// SetConditions replaces the status conditions.
func (c *InstagramChannel) SetConditions(conds []metav1.Condition) { c.Status.Conditions = conds }

// TokenSecretName is the name of the managed token Secret.
func (c *InstagramChannel) TokenSecretName() string {
	if c.Spec.TokenSecretName != "" {
		return c.Spec.TokenSecretName
	}
	return c.Name + "-instagram-token"
}

func init() {
	SchemeBuilder.Register(&InstagramChannel{}, &InstagramChannelList{})
}
