package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The event sink of a channel: where its events go as CloudEvents, in the
// shape of Knative's Destination (duckv1.Destination) and delivery spec
// (eventingduckv1.DeliverySpec), so a Knative Broker, a KafkaSink or any
// HTTP service that speaks CloudEvents is a sink without an adapter.

// IncomingObjects says whether a channel with a sink also stores incoming
// events as InstagramMessage and InstagramComment objects.
// +kubebuilder:validation:Enum=Store;Skip
type IncomingObjects string

const (
	// IncomingObjectsStore stores incoming events as objects and sends them
	// to the sink.
	IncomingObjectsStore IncomingObjects = "Store"
	// IncomingObjectsSkip sends incoming events only to the sink: the sink is
	// their only store (object-less mode, for high volume).
	IncomingObjectsSkip IncomingObjects = "Skip"
)

// KReference names an Addressable object (one whose status.address.url is
// where it receives events), as Knative's duckv1.KReference does.
type KReference struct {
	// apiVersion of the referent, e.g. eventing.knative.dev/v1.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	APIVersion string `json:"apiVersion"`
	// kind of the referent, e.g. Broker.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +required
	Kind string `json:"kind"`
	// name of the referent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
	// namespace of the referent; only the channel's own namespace is
	// allowed, so a channel cannot send its events through another team's
	// object.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// Destination is where events go: an Addressable object (ref), a URI, or a
// URI relative to the ref's address.
// +kubebuilder:validation:XValidation:rule="has(self.ref) || has(self.uri)",message="a sink needs ref or uri"
// +kubebuilder:validation:XValidation:rule="has(self.ref) || !has(self.uri) || !self.uri.startsWith('/')",message="a relative uri needs a ref"
type Destination struct {
	// ref names an Addressable (a Knative Broker, Channel, KafkaSink,
	// Service...); its status.address.url is the sink.
	// +optional
	Ref *KReference `json:"ref,omitempty"`
	// uri is the sink's URL (http or https); with ref, a path relative to
	// the ref's address.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/') || (isURL(self) && url(self).getScheme() in ['http', 'https'])",message="uri must be an http or https URL (or, with ref, a path starting with /)"
	// +optional
	URI string `json:"uri,omitempty"`
	// caCerts are PEM certificates the sink's TLS certificate must chain to
	// (in addition to the system roots).
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	CACerts string `json:"caCerts,omitempty"`
	// audience is the OIDC audience of the sink (Knative's
	// authentication.oidc). Recorded in status; the operator does not mint
	// OIDC tokens yet, so a sink that requires them refuses the events
	// (401, a permanent failure).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Audience string `json:"audience,omitempty"`
}

// BackoffPolicy is how the delay between retries grows.
// +kubebuilder:validation:Enum=exponential;linear
type BackoffPolicy string

const (
	BackoffExponential BackoffPolicy = "exponential"
	BackoffLinear      BackoffPolicy = "linear"
)

// SinkDelivery is how events are delivered, after Knative's DeliverySpec.
type SinkDelivery struct {
	// timeout bounds one attempt. Incoming events: past it the delivery is
	// answered 5xx and Meta delivers it again. Default 5s, at most 30s.
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('100ms') && duration(self) <= duration('30s')",message="timeout must be between 100ms and 30s"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// retry is how many times the manager retries an outgoing outcome
	// before it goes to the dead-letter sink. Incoming events are retried
	// by Meta, which redelivers the webhook. Default 5.
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Retry *int32 `json:"retry,omitempty"`
	// backoffPolicy: exponential (delay * 2^n) or linear (delay * n).
	// +kubebuilder:default=exponential
	// +optional
	BackoffPolicy BackoffPolicy `json:"backoffPolicy,omitempty"`
	// backoffDelay is the base delay between retries. Default 1s.
	// +kubebuilder:default="1s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10ms') && duration(self) <= duration('1h')",message="backoffDelay must be between 10ms and 1h"
	// +optional
	BackoffDelay *metav1.Duration `json:"backoffDelay,omitempty"`
	// deadLetterSink receives the outgoing outcomes the sink refused (4xx)
	// or that failed past the retry budget.
	// +optional
	DeadLetterSink *Destination `json:"deadLetterSink,omitempty"`
}

// SinkSpec is a channel's event sink.
type SinkSpec struct {
	Destination `json:",inline"`
	// delivery: timeout, retries, backoff, dead-letter sink.
	// +optional
	Delivery *SinkDelivery `json:"delivery,omitempty"`
	// incomingObjects: Store (default) records incoming events as objects
	// and sends them to the sink; Skip sends them only to the sink
	// (object-less mode). Outgoing messages are objects either way.
	// +kubebuilder:default=Store
	// +optional
	IncomingObjects IncomingObjects `json:"incomingObjects,omitempty"`
}

// SinkStatus is the resolved sink, read by the receiver and the manager.
type SinkStatus struct {
	// uri is the resolved sink URL.
	// +optional
	URI string `json:"uri,omitempty"`
	// caCerts are the CA certificates to trust for uri.
	// +optional
	CACerts string `json:"caCerts,omitempty"`
	// audience is the sink's OIDC audience.
	// +optional
	Audience string `json:"audience,omitempty"`
	// deadLetterSinkURI is the resolved dead-letter sink URL.
	// +optional
	DeadLetterSinkURI string `json:"deadLetterSinkURI,omitempty"`
	// deadLetterSinkCACerts are the CA certificates to trust for
	// deadLetterSinkURI.
	// +optional
	DeadLetterSinkCACerts string `json:"deadLetterSinkCACerts,omitempty"`
}

// IncomingObjectsMode is what the channel's spec says about storing
// incoming events as objects: Store unless a sink says Skip.
func (c *InstagramChannel) IncomingObjectsMode() IncomingObjects {
	if c.Spec.Sink != nil && c.Spec.Sink.IncomingObjects == IncomingObjectsSkip {
		return IncomingObjectsSkip
	}
	return IncomingObjectsStore
}

// ConditionSinkProvided is True while spec.sink resolves to a URL
// (status.sinkURI); absent on a channel without a sink.
const ConditionSinkProvided = "SinkProvided"

// Reasons of SinkProvided, and of the Events about a failing sink.
const (
	ReasonSinkResolved = "SinkResolved"
	// ReasonSinkNotFound: the ref names an object that does not exist.
	ReasonSinkNotFound = "SinkNotFound"
	// ReasonSinkNotAddressable: the ref's object has no status.address.url
	// (not an Addressable, or not ready yet).
	ReasonSinkNotAddressable = "SinkNotAddressable"
	// ReasonSinkInvalid: the URI is not http(s), the ref points to another
	// namespace, or the CA certificates do not parse.
	ReasonSinkInvalid = "SinkInvalid"
	// ReasonSinkDeliveryFailing (Warning Event): the sink has refused or
	// failed every attempt for a while.
	ReasonSinkDeliveryFailing = "SinkDeliveryFailing"
	// ReasonSinkDeadLettered (Warning Event): an outgoing outcome went to the
	// dead-letter sink.
	ReasonSinkDeadLettered = "SinkDeadLettered"
	// ReasonSinkEventLost (Warning Event): an outgoing outcome could go
	// neither to the sink nor to a dead-letter sink.
	ReasonSinkEventLost = "SinkEventLost"
)
