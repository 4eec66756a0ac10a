// Package webhookserver is the internet-facing receiver of Instagram webhooks.
// It verifies every delivery and records every event as InstagramMessage
// objects and their status, so that nothing Meta delivers is lost, forged or
// duplicated.
//
// # Verification
//
// A POST is read whole, up to a size limit (413 past it), and its
// X-Hub-Signature-256 is checked over the raw bytes, in constant time, before
// any JSON is decoded (401 otherwise): on an app's own path
// (/webhooks/instagram/apps/<namespace>/<name>,
// /webhooks/instagram/clusterapps/<name>) against that app's appSecret and
// previousAppSecret only; on the shared path /webhooks/instagram against
// those of a bounded number of apps (Options.MaxSharedPathSecrets). A client
// whose signatures keep failing gets 429 before its body is read. The app whose secret matched is the only app whose
// channels the delivery may write to: an entry for an account served by a
// channel of another app is skipped and counted
// (instagram_webhook_rejected_total{cause="unknown_app_entry"}), and the rest
// of the delivery is still recorded and answered 200, because the signature
// proves the delivery came from Meta for the signing app, and refusing the
// whole batch would make Meta retry entries that were valid.
//
// # Durability
//
// The answer is 200 only after every event of the delivery is persisted;
// any API-server failure answers 503 and Meta delivers again. Object names are
// deterministic (names.IncomingMessageName(channel, mid)); a create that finds
// its object already there is a success, and every status change is written
// only when it changes something, so redeliveries converge on one object in
// the same state. Events of one conversation (channel and customer) are
// applied in order by one goroutine: message-creating events first, then the
// ones that change messages, oldest first; conversations run in parallel.
//
// # Events that arrive before their message
//
// Meta delivers out of order. The choices, each tested:
//   - unsend of an unknown mid writes a tombstone under the message's name
//     (phase Deleted, no content). The message, arriving later, finds the name
//     taken and its content is never recorded.
//   - reaction or edit of an unknown mid answers 503 while the event is
//     younger than Options.OrphanGrace (the message is most likely on its way),
//     and is dropped and counted (result "orphaned") after that, because a
//     message that predates the channel will never arrive and Meta would
//     otherwise retry, and eventually disable the subscription, for hours.
//   - a read receipt for an unknown mid uses its own timestamp as the
//     watermark: every Sent message of the conversation sent until then
//     becomes Read.
//
// # Echoes of the operator's own sends
//
// When the manager's send succeeds it labels the outgoing message
// instagram.leadchat.io/mid=names.MIDHash(mid) and then deletes any object
// named names.IncomingMessageName(channel, mid). On an echo the receiver looks
// for that label (reading from the API server, not a cache); when absent it
// creates the echo object, then looks again and deletes what it created if
// the label has appeared. Both sides write and then check the other's write,
// so exactly one object per mid remains: the outgoing one.
//
// # Routing
//
// An entry's id is the account's user_id; it is routed to the channel whose
// status.account.userID equals it (the oldest one when several claim it),
// whatever that channel's condition: a channel whose token is invalid, that is
// suspended or awaiting re-authorization still records its events. A channel
// that never had an account cannot be routed to; its events are counted
// (cause "no_channel").
//
// # Caching
//
// Apps, channels and the app credentials the manager publishes into the
// operator's namespace are read from the informer cache (see CacheOptions). InstagramMessage
// objects are never cached: the few reads the receiver makes of them go to
// the API server.
package webhookserver

// RBAC of the receiver (make manifests writes config/rbac/webhookserver):
// cluster-wide it reads apps and channels and writes messages; Secrets it
// may touch only in the operator's namespace ("system", which kustomize
// renames), where the manager publishes app credentials and the Business
// Login callback creates its hand-over Secret (never updates one: an
// existing Secret means the login was already handed over). No
// cluster-wide Secret verb: the only internet-facing part cannot read a
// channel's token.
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramapps;clusterinstagramapps;instagramchannels,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=system,resources=secrets,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagrammessages,verbs=get;list;create;patch;delete
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagrammessages/status,verbs=get;patch
