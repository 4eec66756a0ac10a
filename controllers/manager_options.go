package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// CacheOptions is what the manager caches, as cmd/manager wires it. It is
// a function, not a literal in main, so that the tests run managers with
// exactly these selectors: removing one fails a test.
//
//   - Secrets: only those the operator manages or references (labelled
//     instagram.leadchat.io/watch=true), never every Secret of the cluster.
//   - InstagramMessages: only outgoing messages still to act on
//     (MessageCacheSelector), never the history of every conversation.
func CacheOptions() cache.Options {
	return cache.Options{
		// Nothing reads managedFields from the cache; without them a
		// cached contact's metadata is a fraction of its size.
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:         {Label: WatchedSecretSelector()},
			&igv1.InstagramMessage{}: {Label: MessageCacheSelector()},
		},
	}
}

// WatchedSecretSelector selects the Secrets the manager caches.
func WatchedSecretSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{igv1.LabelWatch: "true"})
}
