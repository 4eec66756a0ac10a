package webhookserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strings"
)

// SignatureHeader carries "sha256=<hex HMAC-SHA256(appSecret, raw body)>".
const SignatureHeader = "X-Hub-Signature-256"

const signaturePrefix = "sha256="

// Reasons a signature is refused. They name no secret and no body, so they
// may be logged.
var (
	ErrSignatureMissing   = errors.New("signature header missing")
	ErrSignatureMalformed = errors.New("signature header malformed")
	ErrSignatureMismatch  = errors.New("signature matches no known app secret")
)

// AppKey identifies an app: Kind is InstagramApp or ClusterInstagramApp,
// Namespace is empty for a ClusterInstagramApp.
type AppKey struct {
	Kind      string
	Namespace string
	Name      string
}

// String is the app's kind/namespace/name for logs.
func (k AppKey) String() string {
	if k.Namespace == "" {
		return k.Kind + "/" + k.Name
	}
	return k.Kind + "/" + k.Namespace + "/" + k.Name
}

// AppCredentials are what the receiver needs of one app. The byte slices are
// secrets: they never reach a log line, a metric or an error.
type AppCredentials struct {
	App AppKey
	// Secrets are the app secrets a signature is checked against: the
	// current one, then the previous one while it is being rotated.
	Secrets [][]byte
	// VerifyToken answers the subscription handshake; empty disables it.
	VerifyToken []byte
}

// VerifySignature checks header against the raw body for every secret of every
// app and returns the apps whose secret produced it. Several app objects may
// stand for one Meta app (a ClusterInstagramApp for the platform and an
// InstagramApp a team made for the same app ID): each of them signed the
// delivery. The comparison is constant-time (hmac.Equal) so a forger learns
// nothing from timing about how close a guess was. It runs before any JSON
// is decoded. Its cost is one HMAC over the body per distinct secret in
// apps: the receiver passes the one app a per-app path names, or a bounded
// list on the shared path, never every app.
func VerifySignature(header string, body []byte, apps []AppCredentials) ([]AppKey, error) {
	signers, _, err := verifySignature(header, body, apps)
	return signers, err
}

// verifySignature is VerifySignature that also returns the secret that
// matched (the first one, in apps' order).
func verifySignature(header string, body []byte, apps []AppCredentials) ([]AppKey, []byte, error) {
	if err := CheckSignatureHeader(header); err != nil {
		return nil, nil, err
	}
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], []byte(header[len(signaturePrefix):])); err != nil {
		return nil, nil, ErrSignatureMalformed
	}
	var sum [sha256.Size]byte
	var signers []AppKey
	var matched []byte
	// Several app objects may share one secret (one Meta app registered
	// twice): each distinct secret is hashed over the body once, so a
	// forged request costs one HMAC per secret, not per app object.
	type tried struct {
		secret []byte
		match  bool
	}
	var seen []tried
	matches := func(secret []byte) bool {
		for _, t := range seen {
			if bytes.Equal(t.secret, secret) {
				return t.match
			}
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		ok := hmac.Equal(mac.Sum(sum[:0]), want[:])
		seen = append(seen, tried{secret: secret, match: ok})
		return ok
	}
	for i := range apps {
		for _, secret := range apps[i].Secrets {
			if len(secret) > 0 && matches(secret) {
				signers = append(signers, apps[i].App)
				if matched == nil {
					matched = secret
				}
				break
			}
		}
	}
	if len(signers) == 0 {
		return nil, nil, ErrSignatureMismatch
	}
	return signers, matched, nil
}

// CheckSignatureHeader refuses a missing or malformed signature header. It
// costs nothing, so the receiver calls it before reading a body or looking
// up any secret: an unsigned request is turned away for free.
func CheckSignatureHeader(header string) error {
	if header == "" {
		return ErrSignatureMissing
	}
	if len(header) != len(signaturePrefix)+2*sha256.Size || !strings.EqualFold(header[:len(signaturePrefix)], signaturePrefix) {
		return ErrSignatureMalformed
	}
	return nil
}

// MatchVerifyToken reports whether token is the non-empty verify token of one
// of apps. Every app is compared, in constant time per comparison, so the
// answer's timing does not depend on which app (if any) matched.
func MatchVerifyToken(token string, apps []AppCredentials) bool {
	if token == "" {
		return false
	}
	matched := 0
	for i := range apps {
		if len(apps[i].VerifyToken) == 0 {
			continue
		}
		matched |= subtle.ConstantTimeCompare([]byte(token), apps[i].VerifyToken)
	}
	return matched == 1
}
