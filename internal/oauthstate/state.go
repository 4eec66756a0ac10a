// Package oauthstate signs and verifies the OAuth `state` parameter of
// Instagram Business Login. A state names the channel it was issued for,
// carries a single-use nonce and expires, and is signed with a key derived
// from the app secret, so the manager (which issues it) and the webhook
// receiver (which checks it) share no extra secret, and a state can be
// neither forged, nor moved to another channel, nor used after it expires.
// Single use is enforced by the nonce: the channel records the nonce it
// issued and rotates it once a login completed.
package oauthstate

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TTL is how long a state stays valid: long enough for a person to log in.
const TTL = 10 * time.Minute

// maxLen bounds what Verify parses.
const maxLen = 2048

// keyContext separates this use of the app secret from any other.
const keyContext = "instagram-operator/oauth-state/v1"

// State is what a signed state carries.
type State struct {
	Namespace string `json:"ns"`
	Name      string `json:"n"`
	Nonce     string `json:"nc"`
	// ExpiresAt in Unix seconds.
	ExpiresAt int64 `json:"exp"`
}

// Errors Verify returns; callers show a page per error.
var (
	ErrMalformed = errors.New("the login link is malformed")
	ErrSignature = errors.New("the login link was not issued by this operator")
	ErrExpired   = errors.New("the login link has expired")
)

// NewNonce returns a random single-use nonce.
func NewNonce() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// key derives the signing key from the app secret.
func key(appSecret []byte) []byte {
	m := hmac.New(sha256.New, appSecret)
	m.Write([]byte(keyContext))
	return m.Sum(nil)
}

func sign(appSecret []byte, payload string) string {
	m := hmac.New(sha256.New, key(appSecret))
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Sign encodes and signs a state: base64url(JSON) "." base64url(HMAC).
func Sign(appSecret []byte, s State) (string, error) {
	raw, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(raw)
	return payload + "." + sign(appSecret, payload), nil
}

// Peek decodes a state without verifying it, so the receiver can find the
// channel (and from it the app secret) that must verify it. Nothing it
// returns may be trusted before Verify succeeds.
func Peek(token string) (State, error) {
	var s State
	if len(token) == 0 || len(token) > maxLen {
		return s, ErrMalformed
	}
	payload, _, ok := strings.Cut(token, ".")
	if !ok {
		return s, ErrMalformed
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return s, ErrMalformed
	}
	if err := json.Unmarshal(raw, &s); err != nil || s.Namespace == "" || s.Name == "" || s.Nonce == "" {
		return State{}, ErrMalformed
	}
	return s, nil
}

// Verify checks the signature against the app secret (and, during a
// rotation, the previous one) in constant time, then the expiry.
func Verify(token string, now time.Time, appSecrets ...[]byte) (State, error) {
	s, err := Peek(token)
	if err != nil {
		return s, err
	}
	payload, mac, _ := strings.Cut(token, ".")
	valid := false
	for _, secret := range appSecrets {
		if len(secret) == 0 {
			continue
		}
		if hmac.Equal([]byte(mac), []byte(sign(secret, payload))) {
			valid = true
		}
	}
	if !valid {
		return State{}, ErrSignature
	}
	if now.Unix() > s.ExpiresAt {
		return s, ErrExpired
	}
	return s, nil
}
