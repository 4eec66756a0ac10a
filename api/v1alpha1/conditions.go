package v1alpha1

// Condition types. Ready, Reconciling and Stalled follow the kstatus and Flux
// conventions; the others are domain conditions of a channel.
const (
	// ConditionReady summarises the object: True when it is fully working.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the controller is doing work that
	// should finish without a human (first connection, a retry with backoff).
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when only a human can make progress (invalid
	// token, denied authorization, missing credentials, duplicate account).
	ConditionStalled = "Stalled"
	// ConditionAuthorized is True while the channel holds a usable token.
	ConditionAuthorized = "Authorized"
	// ConditionWebhookSubscribed is True while the account's webhook
	// subscription matches spec.subscribedFields.
	ConditionWebhookSubscribed = "WebhookSubscribed"
)

// Condition reasons. A reason is the machine-readable half of a condition; the
// troubleshooting guide (docs/troubleshooting.md) has one entry per reason.
const (
	ReasonReady       = "Ready"
	ReasonProgressing = "Progressing"
	ReasonSucceeded   = "Succeeded"

	// App credentials.
	ReasonSecretNotFound   = "SecretNotFound"
	ReasonSecretKeyMissing = "SecretKeyMissing"
	// ReasonSecretNotAppCredentials: an app's secretRef names a Secret the
	// operator writes (a channel's token, a login hand-over) or a
	// ServiceAccount token, which is never accepted as app credentials.
	ReasonSecretNotAppCredentials = "SecretNotAppCredentials"
	ReasonAppCredentialsInvalid   = "AppCredentialsInvalid"
	ReasonPublicURLMissing        = "PublicURLMissing"
	ReasonAppNotFound             = "AppNotFound"
	ReasonAppNotReady             = "AppNotReady"
	ReasonNamespaceNotAllowed     = "NamespaceNotAllowed"
	ReasonInvalidNamespaceFilter  = "InvalidNamespaceSelector"

	// Tokens and authorization.
	ReasonAwaitingAuthorization = "AwaitingAuthorization"
	ReasonAuthorizationDenied   = "AuthorizationDenied"
	ReasonTokenInvalid          = "TokenInvalid"
	ReasonTokenExpired          = "TokenExpired"
	ReasonTokenExchangeFailed   = "TokenExchangeFailed"
	ReasonTokenSecretNotFound   = "InitialTokenSecretNotFound"
	ReasonRefreshFailing        = "RefreshFailing"
	ReasonSecretConflict        = "SecretConflict"
	ReasonScopesChanged         = "ScopesChanged"

	// Instagram answers.
	ReasonPermissionDenied = "PermissionDenied"
	ReasonRateLimited      = "RateLimited"
	ReasonInstagramError   = "InstagramError"

	// Account and subscription.
	ReasonDuplicateAccount = "DuplicateAccount"
	ReasonSubscribeFailed  = "SubscribeFailed"
	ReasonSubscribed       = "Subscribed"

	ReasonSuspended = "Suspended"
	ReasonDeleting  = "Deleting"

	// ReasonInUse: a deleted app waits for the channels that use it.
	ReasonInUse = "InUse"
)

// Message phase reasons (status.reason of an InstagramMessage).
const (
	ReasonChannelNotReady = "ChannelNotReady"
	ReasonOutsideWindow   = "OutsideWindow"
	ReasonUserUnavailable = "UserUnavailable"
	ReasonBadRequest      = "BadRequest"
	ReasonDeliveryUnknown = "DeliveryUnknown"
	ReasonExpired         = "Expired"
)

// Event reasons recorded on channels.
const (
	EventTokenExchanged             = "TokenExchanged"
	EventTokenRefreshed             = "TokenRefreshed"
	EventSubscribed                 = "Subscribed"
	EventRefreshFailed              = "RefreshFailed"
	EventReauthorizationRequired    = "ReauthorizationRequired"
	EventSecretConflict             = "SecretConflict"
	EventSubscriptionCleanupSkipped = "SubscriptionCleanupSkipped"
	EventUnsubscribed               = "Unsubscribed"
	EventAuthorizationDenied        = "AuthorizationDenied"
	// EventDeletionBlocked is recorded on an app whose deletion waits for
	// the channels that still use it.
	EventDeletionBlocked = "DeletionBlocked"
)

// Reasons added by the send lease and the token hardening.
const (
	// ReasonExpiryUnknown (Authorized=True on a channel): the token works,
	// but Instagram has not told its expiry yet; the manager refreshes as
	// soon as Instagram allows, to learn it.
	ReasonExpiryUnknown = "ExpiryUnknown"
	// ReasonSendLeaseLost (Warning Event on a message): a send's outcome
	// came after its lease ran out and another manager had already
	// recorded the message; the Event carries what Instagram answered.
	ReasonSendLeaseLost = "SendLeaseLost"
)

// Paths the webhook receiver serves under --public-url. The manager
// publishes them in app status (webhookURL, redirectURL), so both binaries
// take them from here.
const (
	WebhookPath  = "/webhooks/instagram"
	CallbackPath = "/instagram/callback"
)

// Labels, annotations and finalizers.
const (
	// LabelChannel names the channel a managed Secret or a message belongs to.
	LabelChannel = "instagram.leadchat.io/channel"
	// LabelContact holds the customer's Instagram-scoped ID (IGSID).
	LabelContact = "instagram.leadchat.io/contact"
	// LabelDirection is "incoming" or "outgoing".
	LabelDirection = "instagram.leadchat.io/direction"
	// LabelWatch (value "true") marks every Secret the operator manages or
	// references (app Secrets, initial token Secrets, managed token Secrets,
	// published app credentials, login hand-overs). The manager caches only
	// Secrets with this label, never every Secret of the cluster; it adds it
	// to a referenced Secret after reading it once without the cache.
	LabelWatch = "instagram.leadchat.io/watch"
	// LabelAppCredentials (value "true") marks the Secrets into which the
	// manager publishes an app's credentials for the webhook receiver
	// (AppCredentialsSecretType, in the operator's namespace). The receiver,
	// the internet-facing part, caches only these, so it never holds a
	// channel's access token in memory.
	LabelAppCredentials = "instagram.leadchat.io/app-credentials"

	// AppCredentialsSecretType is the type of a published app-credentials
	// Secret; its keys are those of an app Secret (appSecret,
	// previousAppSecret, verifyToken), and the annotations AnnotationAppKind,
	// AnnotationAppNamespace and AnnotationAppName name the app.
	AppCredentialsSecretType = "instagram.leadchat.io/app-credentials"
	AnnotationAppKind        = "instagram.leadchat.io/app-kind"
	AnnotationAppNamespace   = "instagram.leadchat.io/app-namespace"
	AnnotationAppName        = "instagram.leadchat.io/app-name"

	// LoginSecretType is the type of the Secret through which a completed
	// Business Login hands its short-lived token (key accessToken) to the
	// manager. The receiver creates it in the operator's namespace (it has no
	// access to the channel's), named names.LoginSecretName(namespace,
	// channel) and labelled LabelWatch; AnnotationChannelNamespace,
	// AnnotationChannelName and AnnotationChannelUID name the channel it is
	// for. The manager exchanges the token, writes the managed token Secret
	// and deletes the login Secret.
	LoginSecretType            = "instagram.leadchat.io/login"
	AnnotationChannelNamespace = "instagram.leadchat.io/channel-namespace"
	AnnotationChannelName      = "instagram.leadchat.io/channel-name"
	AnnotationChannelUID       = "instagram.leadchat.io/channel-uid"
	// LabelMID holds a hash of an outgoing message's mid once it is sent, so
	// the receiver can find it when the echo or a read receipt arrives.
	LabelMID = "instagram.leadchat.io/mid"
	// LabelDone marks an outgoing message the manager no longer acts on
	// (Sent, Read, Failed), so it drops out of the manager's cache.
	LabelDone = "instagram.leadchat.io/done"
	// LabelEvent names the kind of event an object the receiver wrote
	// records: message, echo, postback, referral, handover or optin
	// (EventLabel* values); comments: comment, live_comment or mention.
	LabelEvent = "instagram.leadchat.io/event"
	// LabelAwaitingReply (value "true") marks a customer's message that the
	// business has not answered yet: the receiver sets it on each incoming
	// message and removes it from the whole conversation when the business
	// answers (the echo of any reply, from this operator or another
	// client). "Customer messages I have not answered" is then one label
	// selector.
	LabelAwaitingReply = "instagram.leadchat.io/awaiting-reply"
	// LabelMedia holds the media ID a comment belongs to.
	LabelMedia = "instagram.leadchat.io/media"

	// AnnotationRequestedAt forces a reconcile when its value changes; the
	// value handled last is echoed to status.lastHandledReconcileAt.
	AnnotationRequestedAt = "instagram.leadchat.io/requestedAt"

	// ChannelFinalizer makes the manager unsubscribe the account's webhooks
	// before a channel goes away.
	ChannelFinalizer = "instagram.leadchat.io/finalizer"

	// AppFinalizer keeps a deleted app until no channel uses it, so every
	// channel can still unsubscribe with the app's credentials.
	AppFinalizer = "instagram.leadchat.io/app-in-use"

	// AnnotationNonce on a login Secret holds the nonce of the OAuth state
	// the login completed; the manager consumes the Secret only while it
	// equals status.authorization.nonce.
	AnnotationNonce = "instagram.leadchat.io/nonce"

	// Keys of a login Secret besides accessToken and userID: the scopes
	// granted (comma-separated), or, when the person declined, the OAuth
	// error ("access_denied") and Instagram's description of it.
	LoginSecretKeyScopes           = "scopes"
	LoginSecretKeyError            = "error"
	LoginSecretKeyErrorDescription = "errorDescription"

	// HashKeySecretName (in the operator's namespace, type HashKeySecretType,
	// key HashKeySecretKey) holds the manager's key for the fingerprint of
	// initial token Secrets in status.token.initialSecretHash. The manager
	// creates it on first start.
	HashKeySecretName = "instagram-operator-hash-key"
	HashKeySecretType = "instagram.leadchat.io/hash-key"
	HashKeySecretKey  = "key"

	// TokenSecretType is the type of the managed token Secret.
	TokenSecretType = "instagram.leadchat.io/access-token"

	// Keys of the managed token Secret.
	TokenSecretKeyAccessToken = "accessToken"
	TokenSecretKeyUserID      = "userID"
	TokenSecretKeyExpiresAt   = "expiresAt"

	// Keys of an app's Secret.
	AppSecretKeyAppSecret         = "appSecret"
	AppSecretKeyVerifyToken       = "verifyToken"
	AppSecretKeyPreviousAppSecret = "previousAppSecret"

	// DirectionLabelIncoming and DirectionLabelOutgoing are the values of
	// LabelDirection.
	DirectionLabelIncoming = "incoming"
	DirectionLabelOutgoing = "outgoing"

	// Values of LabelEvent.
	EventLabelMessage     = "message"
	EventLabelEcho        = "echo"
	EventLabelPostback    = "postback"
	EventLabelReferral    = "referral"
	EventLabelHandover    = "handover"
	EventLabelOptin       = "optin"
	EventLabelComment     = "comment"
	EventLabelLiveComment = "live_comment"
	EventLabelMention     = "mention"
)
