package v1alpha1

// Content of an outgoing InstagramMessage beyond text and one attachment:
// quick replies, templates, the heart sticker, a share of one of the
// account's own posts, and sender actions. Limits are Instagram's
// (INSTAGRAM-API.md "Sending, extended"); where Instagram would truncate or
// refuse, the schema refuses, so what a workload writes is what the
// customer sees.

// Instagram's limits on outgoing content.
const (
	// MaxOutgoingTextBytes is Instagram's limit on the text of a message,
	// counted in UTF-8 bytes.
	MaxOutgoingTextBytes = 1000
	// MaxQuickReplies is how many quick replies one message may offer.
	MaxQuickReplies = 13
	// MaxQuickReplyTitle is the longest quick-reply title, in characters.
	MaxQuickReplyTitle = 20
	// MaxImages is how many images one message may carry.
	MaxImages = 10
	// MaxButtons is how many buttons a button template or a generic
	// template element may have.
	MaxButtons = 3
	// MaxGenericElements is how many elements a generic template may have.
	MaxGenericElements = 10
)

// QuickReplyType is the content_type of a quick reply.
// +kubebuilder:validation:Enum=text;user_phone_number;user_email
type QuickReplyType string

const (
	// QuickReplyText is a button with a title; a tap sends the title as
	// the customer's message, with the payload in quick_reply.payload.
	QuickReplyText QuickReplyType = "text"
	// QuickReplyPhone offers the customer's phone number.
	QuickReplyPhone QuickReplyType = "user_phone_number"
	// QuickReplyEmail offers the customer's email address.
	QuickReplyEmail QuickReplyType = "user_email"
)

// QuickReply is one choice offered under a text message.
//
// +kubebuilder:validation:XValidation:rule="has(self.contentType) && self.contentType != 'text' ? !has(self.title) && !has(self.payload) : has(self.title) && has(self.payload)",message="a text quick reply needs title and payload; user_phone_number and user_email take neither"
type QuickReply struct {
	// contentType: text (the default when empty), user_phone_number or
	// user_email.
	// +optional
	ContentType QuickReplyType `json:"contentType,omitempty"`
	// title shown on the button (Instagram truncates titles over 20
	// characters; the schema refuses them).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20
	// +optional
	Title string `json:"title,omitempty"`
	// payload comes back in the customer's message
	// (status.quickReplyPayload of the incoming object) when tapped.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1000
	// +optional
	Payload string `json:"payload,omitempty"`
}

// ButtonType is the type of a template button.
// +kubebuilder:validation:Enum=web_url;postback
type ButtonType string

const (
	// ButtonWebURL opens url.
	ButtonWebURL ButtonType = "web_url"
	// ButtonPostback sends payload back as a postback (an incoming
	// object with status.postback).
	ButtonPostback ButtonType = "postback"
)

// Button is a button of a template.
//
// +kubebuilder:validation:XValidation:rule="self.type == 'web_url' ? has(self.url) && !has(self.payload) : has(self.payload) && !has(self.url)",message="a web_url button needs url (and no payload), a postback button needs payload (and no url)"
type Button struct {
	// type: web_url or postback.
	// +required
	Type ButtonType `json:"type"`
	// title of the button.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20
	// +required
	Title string `json:"title"`
	// url a web_url button opens: https only.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://')",message="url must be https"
	// +optional
	URL string `json:"url,omitempty"`
	// payload a postback button sends back.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1000
	// +optional
	Payload string `json:"payload,omitempty"`
}

// ButtonTemplate is a text with up to three buttons.
type ButtonTemplate struct {
	// text above the buttons.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=640
	// +required
	Text string `json:"text"`
	// buttons, one to three.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	// +listType=atomic
	// +required
	Buttons []Button `json:"buttons"`
}

// DefaultAction is where tapping a generic template element leads.
type DefaultAction struct {
	// url opened by the tap: https only.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://')",message="url must be https"
	// +required
	URL string `json:"url"`
}

// GenericElement is one card of a generic template (a carousel).
type GenericElement struct {
	// title of the card.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=80
	// +required
	Title string `json:"title"`
	// subtitle under the title.
	// +kubebuilder:validation:MaxLength=80
	// +optional
	Subtitle string `json:"subtitle,omitempty"`
	// imageURL of the card's picture: https only.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://')",message="imageURL must be https"
	// +optional
	ImageURL string `json:"imageURL,omitempty"`
	// defaultAction is what a tap on the card opens.
	// +optional
	DefaultAction *DefaultAction `json:"defaultAction,omitempty"`
	// buttons of the card, at most three.
	// +kubebuilder:validation:MaxItems=3
	// +listType=atomic
	// +optional
	Buttons []Button `json:"buttons,omitempty"`
}

// GenericTemplate is a carousel of up to ten cards. Instagram does not show
// it on desktop.
type GenericTemplate struct {
	// elements, one to ten.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +required
	Elements []GenericElement `json:"elements"`
}

// Sticker is a sticker Instagram lets a business send.
// +kubebuilder:validation:Enum=heart
type Sticker string

// StickerHeart is the heart sticker (attachment type like_heart), the only
// one Instagram offers.
const StickerHeart Sticker = "heart"

// PostShare shares one of the channel's own posts.
type PostShare struct {
	// mediaID of the post: it must belong to the channel's account.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[0-9]+$`
	// +required
	MediaID string `json:"mediaID"`
}

// SenderActionType is what a sender action does.
// +kubebuilder:validation:Enum=react;unreact;typing_on;typing_off;mark_seen
type SenderActionType string

const (
	SenderActionReact     SenderActionType = "react"
	SenderActionUnreact   SenderActionType = "unreact"
	SenderActionTypingOn  SenderActionType = "typing_on"
	SenderActionTypingOff SenderActionType = "typing_off"
	SenderActionMarkSeen  SenderActionType = "mark_seen"
)

// MessageReference names an InstagramMessage in the same namespace.
type MessageReference struct {
	// name of the InstagramMessage.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// SenderAction is an action in the conversation with spec.contactID that is
// not a message: a reaction to one of the customer's messages, taking it
// back, the typing indicator, or marking the conversation seen. It is sent
// once, like a message; it has no mid, so it ends Sent, never Read.
//
// +kubebuilder:validation:XValidation:rule="self.action in ['react', 'unreact'] ? (has(self.messageRef) != has(self.messageID)) : (!has(self.messageRef) && !has(self.messageID))",message="react and unreact need exactly one of messageRef or messageID; typing_on, typing_off and mark_seen take neither"
// +kubebuilder:validation:XValidation:rule="self.action == 'react' ? has(self.reaction) : !has(self.reaction)",message="reaction is required for react and allowed only there"
type SenderAction struct {
	// action: react, unreact, typing_on, typing_off or mark_seen.
	// +required
	Action SenderActionType `json:"action"`
	// reaction of a react: love, or an emoji.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +optional
	Reaction string `json:"reaction,omitempty"`
	// messageRef names the customer's message to react to: an incoming
	// InstagramMessage of the same channel and contact. The manager reads
	// its status.messageID.
	// +optional
	MessageRef *MessageReference `json:"messageRef,omitempty"`
	// messageID is the mid of the customer's message to react to, for a
	// message that has no object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +optional
	MessageID string `json:"messageID,omitempty"`
}

// ReasonInvalidReference: an outgoing message names another object that
// cannot be used (a reaction to a message that does not exist, is not the
// customer's, or belongs to another channel). The message fails before any
// call to Instagram.
const ReasonInvalidReference = "InvalidReference"
