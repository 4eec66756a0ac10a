package controllers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// The fingerprint of an initial token Secret in status.token.initialSecretHash
// is a keyed MAC: a user who may edit channels but not read Secrets could
// otherwise point a channel at any Secret key of the namespace and test
// guesses of its value offline against a plain hash of public inputs. The
// key lives in a Secret of the operator's namespace that the manager
// creates once (HashKeySecretName) and nobody else needs.

// hashKeyBytes is the size of a generated key.
const hashKeyBytes = 32

// macPrefix marks a keyed fingerprint; legacyHashPrefix the plain SHA-256
// of earlier versions, migrated on first sight.
const (
	macPrefix        = "hmac-sha256:"
	legacyHashPrefix = "sha256:"
)

// LoadOrCreateHashKey returns the manager's fingerprint key, creating its
// Secret in namespace on first start. Replicas starting at once agree: the
// loser of the create reads the winner's key.
func LoadOrCreateHashKey(ctx context.Context, c client.Client, namespace string) ([]byte, error) {
	key := types.NamespacedName{Namespace: namespace, Name: igv1.HashKeySecretName}
	for range 2 {
		s := &corev1.Secret{}
		err := c.Get(ctx, key, s)
		if err == nil {
			if s.Type != igv1.HashKeySecretType || len(s.Data[igv1.HashKeySecretKey]) < hashKeyBytes {
				return nil, fmt.Errorf("secret %s is not a hash key Secret of type %s with a %d-byte key %q", key, igv1.HashKeySecretType, hashKeyBytes, igv1.HashKeySecretKey)
			}
			return s.Data[igv1.HashKeySecretKey], nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get hash key Secret %s: %w", key, err)
		}
		k := make([]byte, hashKeyBytes)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		err = c.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: igv1.HashKeySecretName},
			Type:       igv1.HashKeySecretType,
			Data:       map[string][]byte{igv1.HashKeySecretKey: k},
		})
		if err == nil {
			return k, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create hash key Secret %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("hash key Secret %s: created and gone again", key)
}

var (
	processKeyOnce sync.Once
	processKey     []byte
)

// hashKey is ChannelOptions.HashKey, or a key of this process when none is
// configured (tests): the manager's main always passes the stored one, so
// fingerprints survive a restart.
func (o ChannelOptions) hashKey() []byte {
	if len(o.HashKey) > 0 {
		return o.HashKey
	}
	processKeyOnce.Do(func() {
		processKey = make([]byte, hashKeyBytes)
		if _, err := rand.Read(processKey); err != nil {
			panic(err)
		}
	})
	return processKey
}

// initialSecretHash fingerprints the content of the initial Secret: an
// HMAC under the manager's key over the channel's UID, the key name, the
// token and its expiry. A status still holding the plain hash of earlier
// versions for this same content is migrated to the MAC here, so an upgrade
// does not look like a changed Secret (which would adopt the token again).
func (r *InstagramChannelReconciler) initialSecretHash(ch *igv1.InstagramChannel, key, token, expiresAt string) string {
	mac := hmac.New(sha256.New, r.Options.hashKey())
	for _, part := range []string{string(ch.UID), key, token, expiresAt} {
		mac.Write([]byte(part))
		mac.Write([]byte{0})
	}
	sum := macPrefix + hex.EncodeToString(mac.Sum(nil))
	if st := ch.Status.Token; st != nil && st.InitialSecretHash != sum &&
		hmac.Equal([]byte(st.InitialSecretHash), []byte(legacyInitialSecretHash(ch, key, token, expiresAt))) {
		st.InitialSecretHash = sum
	}
	return sum
}

// legacyInitialSecretHash is the unkeyed fingerprint of earlier versions,
// kept only to recognise it once.
func legacyInitialSecretHash(ch *igv1.InstagramChannel, key, token, expiresAt string) string {
	h := sha256.New()
	for _, part := range []string{string(ch.UID), key, token, expiresAt} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return legacyHashPrefix + hex.EncodeToString(h.Sum(nil))
}
