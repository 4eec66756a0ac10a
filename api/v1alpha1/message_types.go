package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Direction of a message, seen from the business.
// +kubebuilder:validation:Enum=Incoming;Outgoing
type Direction string

const (
	// DirectionIncoming: written by the webhook receiver (customer messages and
	// echoes of what the business sent from any client).
	DirectionIncoming Direction = "Incoming"
	// DirectionOutgoing: created by a workload; the manager sends it.
	DirectionOutgoing Direction = "Outgoing"
)

// Phase of a message.
// +kubebuilder:validation:Enum=Pending;Sending;Sent;Read;Failed;Received;Deleted
type Phase string

const (
	PhasePending  Phase = "Pending"
	PhaseSending  Phase = "Sending"
	PhaseSent     Phase = "Sent"
	PhaseRead     Phase = "Read"
	PhaseFailed   Phase = "Failed"
	PhaseReceived Phase = "Received"
	PhaseDeleted  Phase = "Deleted"
)

// MessageTag lets an outgoing message be sent outside the 24-hour window.
// +kubebuilder:validation:Enum=HUMAN_AGENT
type MessageTag string

// TagHumanAgent allows replies up to 7 days after the customer's last message
// (needs Meta's Human Agent permission).
const TagHumanAgent MessageTag = "HUMAN_AGENT"

// Attachment is one attachment of a message.
type Attachment struct {
	// type as Instagram names it: image, video, audio, file for outgoing
	// messages; incoming ones may also be share, story_mention, ig_reel,
	// ig_post, ig_story or a type Instagram adds later.
	// +kubebuilder:validation:Pattern=`^[a-z_]{1,32}$`
	// +required
	Type string `json:"type"`
	// url of the media. Outgoing: a public URL Instagram can fetch.
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	URL string `json:"url,omitempty"`
	// title of a shared post or fallback, where Instagram sends one.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Title string `json:"title,omitempty"`
	// mediaID is the lasting ID of the media, which outlives url (a CDN
	// link that expires): story_media_id of an ig_story, reel_video_id of an
	// ig_reel, ig_post_media_id of an ig_post, id of a share where Instagram
	// sends one. Incoming only.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	MediaID string `json:"mediaID,omitempty"`
	// attachmentID is the ID of media uploaded to Instagram beforehand
	// (payload.attachment_id).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	AttachmentID string `json:"attachmentID,omitempty"`
	// stickerID is the sticker of an image attachment that is a sticker.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	StickerID string `json:"stickerID,omitempty"`
	// extra holds payload keys this version does not know yet, as text, so
	// nothing Instagram adds later is lost. Incoming only.
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Extra map[string]string `json:"extra,omitempty"`
}

// StoryReference is the story a message replies to.
type StoryReference struct {
	// id of the story (lasting).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ID string `json:"id,omitempty"`
	// url of the story's media: a CDN link that expires.
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	URL string `json:"url,omitempty"`
}

// ChannelReference names the channel of a message (same namespace).
type ChannelReference struct {
	// name of the InstagramChannel.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// InstagramMessageSpec is the content of a message.
//
// +kubebuilder:validation:XValidation:rule="self.direction != 'Outgoing' || (has(self.echo) && self.echo) || [has(self.text) && size(self.text) > 0, has(self.attachments) && size(self.attachments) > 0, has(self.buttonTemplate), has(self.genericTemplate), has(self.sticker), has(self.sharePost), has(self.senderAction)].filter(x, x).size() == 1",message="an outgoing message needs exactly one of spec.text, spec.attachments, spec.buttonTemplate, spec.genericTemplate, spec.sticker, spec.sharePost or spec.senderAction (Instagram sends each as a message of its own)"
// +kubebuilder:validation:XValidation:rule="self.direction != 'Outgoing' || (has(self.echo) && self.echo) || !has(self.attachments) || size(self.attachments) <= 1 || (size(self.attachments) <= 10 && self.attachments.all(a, a.type == 'image'))",message="spec.attachments of an outgoing message holds one attachment, or up to 10 when all are images"
// +kubebuilder:validation:XValidation:rule="self.direction != 'Outgoing' || (has(self.echo) && self.echo) || !has(self.attachments) || self.attachments.all(a, a.type in ['image', 'video', 'audio', 'file'] && ((has(a.url) && a.url.startsWith('https://')) || (a.type == 'image' && has(a.attachmentID))))",message="spec.attachments of an outgoing message must be of type image, video, audio or file with an https url (an image may give attachmentID instead)"
// +kubebuilder:validation:XValidation:rule="self.direction != 'Outgoing' || (has(self.echo) && self.echo) || !has(self.text) || size(bytes(self.text)) <= 1000",message="spec.text of an outgoing message is at most 1000 bytes in UTF-8 (Instagram's limit)"
// +kubebuilder:validation:XValidation:rule="!has(self.quickReplies) || (self.direction == 'Outgoing' && has(self.text) && size(self.text) > 0)",message="spec.quickReplies go with spec.text of an outgoing message"
// +kubebuilder:validation:XValidation:rule="self.direction == 'Outgoing' || (!has(self.buttonTemplate) && !has(self.genericTemplate) && !has(self.sticker) && !has(self.sharePost) && !has(self.senderAction))",message="spec.buttonTemplate, spec.genericTemplate, spec.sticker, spec.sharePost and spec.senderAction are only allowed on outgoing messages"
// +kubebuilder:validation:XValidation:rule="!has(self.senderAction) || (!has(self.replyTo) && !has(self.tag))",message="spec.senderAction takes no spec.replyTo or spec.tag"
// +kubebuilder:validation:XValidation:rule="!has(self.privateReplyTo) || (self.direction == 'Outgoing' && has(self.text) && size(self.text) > 0 && !has(self.quickReplies) && !has(self.replyTo) && !has(self.tag))",message="spec.privateReplyTo goes with spec.text only (no quick replies, replyTo or tag) on an outgoing message"
// +kubebuilder:validation:XValidation:rule="self.direction == 'Outgoing' || !has(self.echo) || !self.echo",message="spec.echo is only allowed on outgoing messages"
// +kubebuilder:validation:XValidation:rule="self.direction == 'Outgoing' || !has(self.tag)",message="spec.tag is only allowed on outgoing messages"
type InstagramMessageSpec struct {
	// channelRef names the channel the message belongs to.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.channelRef is immutable"
	// +required
	ChannelRef ChannelReference `json:"channelRef"`

	// direction: Incoming (written by the receiver) or Outgoing (sent by the
	// manager).
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.direction is immutable"
	// +required
	Direction Direction `json:"direction"`

	// contactID is the customer's Instagram-scoped ID (IGSID).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[0-9]+$`
	// +required
	ContactID string `json:"contactID"`

	// text of the message (Instagram allows up to 1000 bytes when sending).
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	Text string `json:"text,omitempty"`

	// attachments of the message. An outgoing message carries one, or up
	// to 10 images.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Attachments []Attachment `json:"attachments,omitempty"`

	// replyTo is the mid of the message this one replies to. A reply to a
	// story is spec.replyToStory instead (objects recorded before v0.2 held
	// the story's id here).
	// +kubebuilder:validation:MaxLength=512
	// +optional
	ReplyTo string `json:"replyTo,omitempty"`

	// replyToStory is the story this message replies to (incoming only).
	// +optional
	ReplyToStory *StoryReference `json:"replyToStory,omitempty"`

	// echo marks an outgoing message the business sent from another client
	// (the Instagram app, another tool), recorded by the receiver from its
	// echo. It is already sent: the manager never sends it.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.echo is immutable"
	// +optional
	Echo bool `json:"echo,omitempty"`

	// tag HUMAN_AGENT sends outside the 24-hour window (outgoing only).
	// +optional
	Tag MessageTag `json:"tag,omitempty"`

	// skipWindowCheck lets Instagram decide: the manager sends even when
	// the contact's recorded reply windows are closed (outgoing only).
	// +optional
	SkipWindowCheck bool `json:"skipWindowCheck,omitempty"`
	// Outgoing content beyond text and one attachment (types in
	// message_content_types.go). An outgoing message carries exactly one of
	// text, attachments, buttonTemplate, genericTemplate, sticker, sharePost
	// or senderAction.

	// quickReplies offered under spec.text, at most 13.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=13
	// +listType=atomic
	// +optional
	QuickReplies []QuickReply `json:"quickReplies,omitempty"`

	// buttonTemplate sends a text with up to three buttons.
	// +optional
	ButtonTemplate *ButtonTemplate `json:"buttonTemplate,omitempty"`

	// genericTemplate sends a carousel of up to ten cards.
	// +optional
	GenericTemplate *GenericTemplate `json:"genericTemplate,omitempty"`

	// sticker sends a sticker: heart is the only one Instagram offers.
	// +optional
	Sticker Sticker `json:"sticker,omitempty"`

	// sharePost shares one of the channel's own posts.
	// +optional
	SharePost *PostShare `json:"sharePost,omitempty"`

	// senderAction reacts to a message, takes a reaction back, shows or
	// hides the typing indicator, or marks the conversation seen.
	// +optional
	SenderAction *SenderAction `json:"senderAction,omitempty"`

	// privateReplyTo sends spec.text as the private reply to a comment
	// (one per comment, within 7 days of it); spec.contactID is the
	// commenter's IGSID.
	// +optional
	PrivateReplyTo *CommentReference `json:"privateReplyTo,omitempty"`
}

// Reaction is a reaction to a message.
type Reaction struct {
	// reaction name, e.g. love.
	// +optional
	Reaction string `json:"reaction,omitempty"`
	// emoji of the reaction.
	// +optional
	Emoji string `json:"emoji,omitempty"`
	// by is the IGSID of who reacted.
	// +optional
	By string `json:"by,omitempty"`
	// at is when the reaction was made.
	// +optional
	At *metav1.Time `json:"at,omitempty"`
}

// ReactionRecord is one reaction in a message's history: who reacted with
// what, when, and when they took it back.
type ReactionRecord struct {
	// +optional
	Reaction string `json:"reaction,omitempty"`
	// +optional
	Emoji string `json:"emoji,omitempty"`
	// by is the IGSID of who reacted.
	// +optional
	By string `json:"by,omitempty"`
	// at is when the reaction was made (Meta's time, milliseconds).
	// +optional
	At *metav1.MicroTime `json:"at,omitempty"`
	// removedAt is when it was taken back (unreact) or replaced by another
	// reaction of the same person.
	// +optional
	RemovedAt *metav1.MicroTime `json:"removedAt,omitempty"`
}

// Postback is a button tap (a button template, an ice breaker, a
// persistent-menu item).
type Postback struct {
	// title of the button or the ice-breaker question.
	// +optional
	Title string `json:"title,omitempty"`
	// payload the business attached to the button.
	// +optional
	Payload string `json:"payload,omitempty"`
	// referral where the tap came with one (an ig.me link, an ad).
	// +optional
	Referral *Referral `json:"referral,omitempty"`
}

// Referral tells where a conversation came from: an ig.me link (ref), a
// Click-to-Direct ad (adID, adsContext), an Instagram Shops product
// (productID).
type Referral struct {
	// ref is the ref parameter of an ig.me link.
	// +optional
	Ref string `json:"ref,omitempty"`
	// source, e.g. ADS, SHORTLINK.
	// +optional
	Source string `json:"source,omitempty"`
	// type, e.g. OPEN_THREAD.
	// +optional
	Type string `json:"type,omitempty"`
	// adID of a Click-to-Direct ad.
	// +optional
	AdID string `json:"adID,omitempty"`
	// adsContext describes the ad the customer tapped.
	// +optional
	AdsContext *AdsContext `json:"adsContext,omitempty"`
	// productID of the Instagram Shops product the customer asked about.
	// +optional
	ProductID string `json:"productID,omitempty"`
}

// AdsContext is Meta's ads_context_data of a Click-to-Direct referral.
type AdsContext struct {
	// +optional
	AdTitle string `json:"adTitle,omitempty"`
	// photoURL of the ad's image (a CDN link that may expire).
	// +optional
	PhotoURL string `json:"photoURL,omitempty"`
	// +optional
	VideoURL string `json:"videoURL,omitempty"`
	// postID of the ad's post.
	// +optional
	PostID string `json:"postID,omitempty"`
}

// Handover records a change of the app that controls the conversation
// (messaging_handover: pass, take or request thread control).
type Handover struct {
	// action: pass, take or request.
	// +optional
	Action string `json:"action,omitempty"`
	// +optional
	PreviousOwnerAppID string `json:"previousOwnerAppID,omitempty"`
	// +optional
	NewOwnerAppID string `json:"newOwnerAppID,omitempty"`
	// +optional
	RequestedOwnerAppID string `json:"requestedOwnerAppID,omitempty"`
	// metadata the passing app attached.
	// +optional
	Metadata string `json:"metadata,omitempty"`
}

// Optin records a customer's opt-in (messaging_optins), e.g. to recurring
// notifications. A notification token, where Meta sends one, is not stored:
// a credential never goes into an object others may read.
type Optin struct {
	// +optional
	Type string `json:"type,omitempty"`
	// +optional
	Payload string `json:"payload,omitempty"`
	// +optional
	Title string `json:"title,omitempty"`
	// +optional
	Ref string `json:"ref,omitempty"`
	// frequency of the notifications the customer agreed to.
	// +optional
	Frequency string `json:"frequency,omitempty"`
	// +optional
	Timezone string `json:"timezone,omitempty"`
	// tokenStatus is Meta's user_token_status, e.g. REFRESHED.
	// +optional
	TokenStatus string `json:"tokenStatus,omitempty"`
	// tokenExpiresAt is when the notification permission ends.
	// +optional
	TokenExpiresAt *metav1.MicroTime `json:"tokenExpiresAt,omitempty"`
	// hasToken is true when Meta sent a notification token (not stored).
	// +optional
	HasToken bool `json:"hasToken,omitempty"`
}

// MessageError is the error Instagram returned for a send.
type MessageError struct {
	// +optional
	Code int32 `json:"code,omitempty"`
	// +optional
	Subcode int32 `json:"subcode,omitempty"`
	// +optional
	Type string `json:"type,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
}

// InstagramMessageStatus is the observed state of a message.
type InstagramMessageStatus struct {
	// observedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (Sent, Read or Received) and Stalled (Failed).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// phase: Pending, Sending, Sent, Read, Failed (outgoing); Received,
	// Deleted (incoming).
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// reason explains the phase (ChannelNotReady, OutsideWindow, DeliveryUnknown...).
	// +optional
	Reason string `json:"reason,omitempty"`

	// message is a human-readable explanation of the phase.
	// +optional
	Message string `json:"message,omitempty"`

	// messageID is Instagram's mid.
	// +optional
	MessageID string `json:"messageID,omitempty"`

	// timestamp is when Instagram says the message was sent, to the second
	// (eventTime has the milliseconds).
	// +optional
	Timestamp *metav1.Time `json:"timestamp,omitempty"`
	// eventTime is Meta's timestamp of the event to the millisecond: sort by
	// it to put a burst of messages in order.
	// +optional
	EventTime *metav1.MicroTime `json:"eventTime,omitempty"`
	// receivedAt is when the receiver first recorded the event.
	// +optional
	ReceivedAt *metav1.MicroTime `json:"receivedAt,omitempty"`
	// +optional
	SentAt *metav1.Time `json:"sentAt,omitempty"`
	// +optional
	ReadAt *metav1.Time `json:"readAt,omitempty"`
	// +optional
	EditedAt *metav1.Time `json:"editedAt,omitempty"`
	// +optional
	DeletedAt *metav1.Time `json:"deletedAt,omitempty"`

	// isEcho marks an incoming object that is the echo of a message the
	// business sent from any client.
	// +optional
	IsEcho bool `json:"isEcho,omitempty"`

	// unsupported marks content Instagram could not pass on.
	// +optional
	Unsupported bool `json:"unsupported,omitempty"`

	// quickReplyPayload is the payload of a tapped quick reply.
	// +optional
	QuickReplyPayload string `json:"quickReplyPayload,omitempty"`

	// editCount is how often the message was edited.
	// +optional
	EditCount int32 `json:"editCount,omitempty"`

	// reactions currently on the message.
	// +listType=atomic
	// +optional
	Reactions []Reaction `json:"reactions,omitempty"`

	// reactionHistory lists reactions as they came and went, newest last,
	// at most 20 (older ones are dropped first).
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	ReactionHistory []ReactionRecord `json:"reactionHistory,omitempty"`

	// standby marks an event delivered on the standby channel: another app
	// controls the conversation, so a bot should not answer it.
	// +optional
	Standby bool `json:"standby,omitempty"`

	// handover details of a messaging_handover event.
	// +optional
	Handover *Handover `json:"handover,omitempty"`

	// optin details of a messaging_optins event.
	// +optional
	Optin *Optin `json:"optin,omitempty"`

	// clipped names the fields whose content was longer than the schema
	// allows and was cut (text ends with "…") or dropped (a URL).
	// +listType=atomic
	// +optional
	Clipped []string `json:"clipped,omitempty"`

	// unknownFields names keys of the event this version does not know;
	// they are counted in instagram_webhook_unknown_fields_total.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	UnknownFields []string `json:"unknownFields,omitempty"`

	// postback details where the event carries them.
	// +optional
	Postback *Postback `json:"postback,omitempty"`

	// referral details where the event carries them.
	// +optional
	Referral *Referral `json:"referral,omitempty"`

	// attempts counts send attempts that Instagram surely did not accept.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`

	// nextAttemptAt is when the manager tries again after an attempt that
	// Instagram surely did not accept (rate limited, temporary error). It is
	// stored so that a restart or an unrelated event does not cut the
	// backoff short.
	// +optional
	NextAttemptAt *metav1.Time `json:"nextAttemptAt,omitempty"`

	// error is what Instagram answered to a failed send.
	// +optional
	Error *MessageError `json:"error,omitempty"`

	// sendLease is the manager's internal bookkeeping while the message is
	// Sending: which manager process holds the send and until when. Not
	// an API to build on.
	// +optional
	SendLease *SendLease `json:"sendLease,omitempty"`
	// messageIDs lists the further mids of a send that Instagram recorded
	// as several messages (status.messageID is the first): echoes and read
	// receipts of any of them update this object.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	MessageIDs []string `json:"messageIDs,omitempty"`
}

// InstagramMessage is one message of a channel: incoming ones are recorded by
// the webhook receiver, outgoing ones are sent by the manager.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=igmsg,categories=instagram
// +kubebuilder:validation:XValidation:rule="oldSelf.spec.direction != 'Outgoing' || !has(oldSelf.status) || !has(oldSelf.status.phase) || oldSelf.status.phase == 'Pending' || self.spec == oldSelf.spec",message="spec is immutable once an outgoing message is being sent"
// +kubebuilder:printcolumn:name="Channel",type=string,JSONPath=`.spec.channelRef.name`
// +kubebuilder:printcolumn:name="Direction",type=string,JSONPath=`.spec.direction`
// +kubebuilder:printcolumn:name="Contact",type=string,JSONPath=`.spec.contactID`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Text",type=string,JSONPath=`.spec.text`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type InstagramMessage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec InstagramMessageSpec `json:"spec"`
	// +optional
	Status InstagramMessageStatus `json:"status,omitempty"`
}

// InstagramMessageList is a list of InstagramMessage.
//
// +kubebuilder:object:root=true
type InstagramMessageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []InstagramMessage `json:"items"`
}

// GetConditions returns the status conditions.
func (m *InstagramMessage) GetConditions() []metav1.Condition { return m.Status.Conditions }

// SetConditions replaces the status conditions.
func (m *InstagramMessage) SetConditions(c []metav1.Condition) { m.Status.Conditions = c }

func init() {
	SchemeBuilder.Register(&InstagramMessage{}, &InstagramMessageList{})
}
