// Package v1alpha1 holds the instagram.leadchat.io/v1alpha1 API: Meta apps
// (InstagramApp, ClusterInstagramApp), the channels that connect one Instagram
// professional account each (InstagramChannel) and the messages they carry
// (InstagramMessage).
//
// +kubebuilder:object:generate=true
// +groupName=instagram.leadchat.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "instagram.leadchat.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
