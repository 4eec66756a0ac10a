// Package names derives the deterministic names and label values that the
// webhook receiver and the manager must agree on byte for byte: the name of an
// InstagramMessage the receiver writes for a mid, and the hash of a mid that
// the manager puts on an outgoing message once it is sent. Both sides import
// this package so the echo-versus-send protocol cannot drift apart.
package names

import (
	"crypto/sha256"
	"encoding/hex"
)

// hashLen is the number of hex characters kept from a SHA-256: 160 bits make a
// collision between two mids of one channel practically impossible, and the
// result stays well within the 63 characters of a label value and the 253 of
// an object name.
const hashLen = 40

// incomingPrefix starts every object name the receiver writes, so such names
// are recognisable and always begin with a letter.
const incomingPrefix = "igm-"

// commentPrefix starts the name of every InstagramComment.
const commentPrefix = "igc-"

// MIDHash is the value of the instagram.leadchat.io/mid label: the first 40
// hex characters of SHA-256(mid). A mid itself is too long and holds
// characters a label value may not.
func MIDHash(mid string) string {
	return hashHex(mid)
}

// IncomingMessageName is the name of the InstagramMessage the receiver writes
// for a mid of a channel (in the channel's namespace). Object names are
// namespaced, so the namespace is not part of the hash; channel names cannot
// contain "/", so channel and mid cannot run into each other.
func IncomingMessageName(channel, mid string) string {
	return incomingPrefix + hashHex(channel+"/"+mid)
}

// CommentName is the name of the InstagramComment the receiver writes for a
// comment id of a channel (in the channel's namespace): a redelivered
// notification finds the same name and makes no second object.
func CommentName(channel, commentID string) string {
	return commentPrefix + hashHex(channel+"/"+commentID)
}

// contactPrefix starts the name of an InstagramContact whose readable name
// would be too long.
const contactPrefix = "igct-"

// maxObjectName is the longest object name Kubernetes accepts.
const maxObjectName = 253

// ContactName is the name of the InstagramContact of a customer (IGSID) of a
// channel, in the channel's namespace: "<channel>-<igsid>", readable in
// kubectl output. An IGSID holds only digits, so the last "-" separates the
// two and no two pairs share a name. When the result would be longer than an
// object name may be, a hash stands in.
func ContactName(channel, igsid string) string {
	if n := channel + "-" + igsid; len(n) <= maxObjectName {
		return n
	}
	return contactPrefix + hashHex(channel+"/"+igsid)
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:hashLen]
}

// midLabelPrefix is the prefix of the per-mid label keys.
const midLabelPrefix = "mid.instagram.leadchat.io/"

// MIDLabelKey is the key of the label (value "true") that the manager puts
// on an outgoing message for each further mid of a send Instagram recorded
// as several messages (status.messageIDs), so the receiver finds the one
// object by any of its mids with an exists selector. The first mid keeps
// the instagram.leadchat.io/mid label.
func MIDLabelKey(mid string) string {
	return midLabelPrefix + hashHex(mid)
}
