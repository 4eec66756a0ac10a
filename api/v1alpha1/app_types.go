package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AppSpec describes a Meta app with the Instagram product. InstagramApp and
// ClusterInstagramApp share it, as cert-manager's Issuer and ClusterIssuer do.
type AppSpec struct {
	// appID is the Instagram app ID shown in the Meta dashboard
	// (App Dashboard > Instagram > API setup with Instagram login).
	// +kubebuilder:validation:Pattern=`^[0-9]{1,32}$`
	// +required
	AppID string `json:"appID"`

	// secretRef names the Secret holding the keys appSecret and verifyToken,
	// and optionally previousAppSecret (still accepted for webhook signatures
	// while the app secret is rotated). For an InstagramApp the Secret lives in
	// the app's namespace; for a ClusterInstagramApp in the operator's
	// --cluster-resource-namespace. The manager copies these three keys, and
	// nothing else, into a Secret of the operator's namespace for the webhook
	// receiver. A Secret the operator writes (a channel's token) is refused.
	// +required
	SecretRef LocalObjectReference `json:"secretRef"`

	// namespaceSelector limits which namespaces may use a ClusterInstagramApp.
	// Empty or absent admits every namespace. Not allowed on InstagramApp.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// AppStatus is the observed state of an app.
type AppStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True when the Secret exists with the needed keys.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// webhookURL is the callback URL to paste into the Meta dashboard
	// (Instagram > Configure webhooks): this app's own path on the receiver,
	// <public-url>/webhooks/instagram/apps/<namespace>/<name> for an
	// InstagramApp and <public-url>/webhooks/instagram/clusterapps/<name> for
	// a ClusterInstagramApp. A delivery there is checked against this app's
	// secrets only.
	// +optional
	WebhookURL string `json:"webhookURL,omitempty"`

	// redirectURL is the OAuth redirect URI to register in the Meta dashboard
	// (Instagram > Set up Instagram business login). It must match byte for byte.
	// +optional
	RedirectURL string `json:"redirectURL,omitempty"`
}

// InstagramApp is a Meta app whose credentials live in the app's own
// namespace, for a team that owns its app.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=igapp,categories=instagram
// +kubebuilder:validation:XValidation:rule="!has(self.spec.namespaceSelector)",message="spec.namespaceSelector is only allowed on ClusterInstagramApp"
// +kubebuilder:printcolumn:name="App-ID",type=string,JSONPath=`.spec.appID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Webhook-URL",type=string,JSONPath=`.status.webhookURL`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type InstagramApp struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AppSpec `json:"spec"`
	// +optional
	Status AppStatus `json:"status,omitempty"`
}

// InstagramAppList is a list of InstagramApp.
//
// +kubebuilder:object:root=true
type InstagramAppList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []InstagramApp `json:"items"`
}

// ClusterInstagramApp is a Meta app run by the platform team: its Secret
// stays in the operator's namespace, and channels in the namespaces its
// namespaceSelector admits may use it without ever seeing the app secret.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=igapp-c;igcapp,categories=instagram
// +kubebuilder:printcolumn:name="App-ID",type=string,JSONPath=`.spec.appID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Webhook-URL",type=string,JSONPath=`.status.webhookURL`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterInstagramApp struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AppSpec `json:"spec"`
	// +optional
	Status AppStatus `json:"status,omitempty"`
}

// ClusterInstagramAppList is a list of ClusterInstagramApp.
//
// +kubebuilder:object:root=true
type ClusterInstagramAppList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterInstagramApp `json:"items"`
}

// GetConditions returns the status conditions.
func (a *InstagramApp) GetConditions() []metav1.Condition { return a.Status.Conditions }

// SetConditions replaces the status conditions.
func (a *InstagramApp) SetConditions(c []metav1.Condition) { a.Status.Conditions = c }

// GetConditions returns the status conditions.
func (a *ClusterInstagramApp) GetConditions() []metav1.Condition { return a.Status.Conditions }

// SetConditions replaces the status conditions.
func (a *ClusterInstagramApp) SetConditions(c []metav1.Condition) { a.Status.Conditions = c }

func init() {
	SchemeBuilder.Register(&InstagramApp{}, &InstagramAppList{}, &ClusterInstagramApp{}, &ClusterInstagramAppList{})
}

// AppSpec returns the spec shared by both app kinds.
func (a *InstagramApp) AppSpec() *AppSpec { return &a.Spec }

// AppStatus returns the status shared by both app kinds.
func (a *InstagramApp) AppStatus() *AppStatus { return &a.Status }

// AppSpec returns the spec shared by both app kinds.
func (a *ClusterInstagramApp) AppSpec() *AppSpec { return &a.Spec }

// AppStatus returns the status shared by both app kinds.
func (a *ClusterInstagramApp) AppStatus() *AppStatus { return &a.Status }
