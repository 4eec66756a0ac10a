package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

func TestBuildSendRequest(t *testing.T) {
	base := func(mutate func(*igv1.InstagramMessageSpec)) igv1.InstagramMessageSpec {
		s := igv1.InstagramMessageSpec{ChannelRef: igv1.ChannelReference{Name: "support"}, Direction: igv1.DirectionOutgoing, ContactID: "42"}
		mutate(&s)
		return s
	}
	cases := map[string]struct {
		spec       igv1.InstagramMessageSpec
		reactedMID string
		want       instagram.SendRequest
	}{
		"text with quick replies, a reply": {
			spec: base(func(s *igv1.InstagramMessageSpec) {
				s.Text, s.ReplyTo = "Size?", "m_1"
				s.QuickReplies = []igv1.QuickReply{{Title: "42", Payload: "S42"}, {ContentType: igv1.QuickReplyEmail}}
			}),
			want: instagram.SendRequest{AccountID: "178", RecipientID: "42", ReplyTo: "m_1", Message: &instagram.MessageContent{
				Text: "Size?", QuickReplies: []instagram.QuickReply{{Title: "42", Payload: "S42"}, {ContentType: "user_email"}},
			}},
		},
		"one video with the HUMAN_AGENT tag": {
			spec: base(func(s *igv1.InstagramMessageSpec) {
				s.Tag = igv1.TagHumanAgent
				s.Attachments = []igv1.Attachment{{Type: "video", URL: "https://cdn.example.com/v.mp4"}}
			}),
			want: instagram.SendRequest{AccountID: "178", RecipientID: "42", HumanAgent: true, Message: &instagram.MessageContent{
				Attachment: &instagram.Attachment{Type: "video", URL: "https://cdn.example.com/v.mp4"},
			}},
		},
		"images by url and attachment id": {
			spec: base(func(s *igv1.InstagramMessageSpec) {
				s.Attachments = []igv1.Attachment{{Type: "image", URL: "https://cdn.example.com/1.jpg"}, {Type: "image", AttachmentID: "77"}}
			}),
			want: instagram.SendRequest{AccountID: "178", RecipientID: "42", Message: &instagram.MessageContent{
				Images: []instagram.Image{{URL: "https://cdn.example.com/1.jpg"}, {AttachmentID: "77"}},
			}},
		},
		"heart sticker": {
			spec: base(func(s *igv1.InstagramMessageSpec) { s.Sticker = igv1.StickerHeart }),
			want: instagram.SendRequest{AccountID: "178", RecipientID: "42", Message: &instagram.MessageContent{HeartSticker: true}},
		},
		"own post": {
			spec: base(func(s *igv1.InstagramMessageSpec) { s.SharePost = &igv1.PostShare{MediaID: "1789"} }),
			want: instagram.SendRequest{AccountID: "178", RecipientID: "42", Message: &instagram.MessageContent{MediaShareID: "1789"}},
		},
		"button template": {
			spec: base(func(s *igv1.InstagramMessageSpec) {
				s.ButtonTemplate = &igv1.ButtonTemplate{Text: "Track?", Buttons: []igv1.Button{
					{Type: igv1.ButtonWebURL, Title: "Track", URL: "https://shop.example.com/t"},
					{Type: igv1.ButtonPostback, Title: "Agent", Payload: "AGENT"},
				}}
			}),
			want: instagram.SendRequest{AccountID: "178", RecipientID: "42", Message: &instagram.MessageContent{
				Button: &instagram.ButtonTemplate{Text: "Track?", Buttons: []instagram.Button{
					{Type: "web_url", Title: "Track", URL: "https://shop.example.com/t"},
					{Type: "postback", Title: "Agent", Payload: "AGENT"},
				}},
			}},
		},
		"generic template": {
			spec: base(func(s *igv1.InstagramMessageSpec) {
				s.GenericTemplate = &igv1.GenericTemplate{Elements: []igv1.GenericElement{{
					Title: "Runner", Subtitle: "Red", ImageURL: "https://cdn.example.com/r.jpg",
					DefaultAction: &igv1.DefaultAction{URL: "https://shop.example.com/r"},
					Buttons:       []igv1.Button{{Type: igv1.ButtonPostback, Title: "Buy", Payload: "BUY"}},
				}, {Title: "Walker"}}}
			}),
			want: instagram.SendRequest{AccountID: "178", RecipientID: "42", Message: &instagram.MessageContent{
				Generic: &instagram.GenericTemplate{Elements: []instagram.GenericElement{{
					Title: "Runner", Subtitle: "Red", ImageURL: "https://cdn.example.com/r.jpg", DefaultActionURL: "https://shop.example.com/r",
					Buttons: []instagram.Button{{Type: "postback", Title: "Buy", Payload: "BUY"}},
				}, {Title: "Walker"}}},
			}},
		},
		"react by object": {
			spec: base(func(s *igv1.InstagramMessageSpec) {
				s.SenderAction = &igv1.SenderAction{Action: igv1.SenderActionReact, Reaction: "love", MessageRef: &igv1.MessageReference{Name: "igm-1"}}
			}),
			reactedMID: "m_customer",
			want: instagram.SendRequest{AccountID: "178", RecipientID: "42",
				Action: &instagram.SenderAction{Action: "react", MessageID: "m_customer", Reaction: "love"}},
		},
		"mark seen": {
			spec: base(func(s *igv1.InstagramMessageSpec) {
				s.SenderAction = &igv1.SenderAction{Action: igv1.SenderActionMarkSeen}
			}),
			want: instagram.SendRequest{AccountID: "178", RecipientID: "42", Action: &instagram.SenderAction{Action: "mark_seen"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, buildSendRequest(&tc.spec, "178", tc.reactedMID)); diff != "" {
				t.Errorf("buildSendRequest (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReactionTarget(t *testing.T) {
	spec := &igv1.InstagramMessageSpec{
		ChannelRef: igv1.ChannelReference{Name: "support"}, Direction: igv1.DirectionOutgoing, ContactID: "42",
		SenderAction: &igv1.SenderAction{Action: igv1.SenderActionReact, Reaction: "love", MessageRef: &igv1.MessageReference{Name: "igm-1"}},
	}
	incoming := func(mutate func(*igv1.InstagramMessage)) *igv1.InstagramMessage {
		m := &igv1.InstagramMessage{
			Spec:   igv1.InstagramMessageSpec{ChannelRef: igv1.ChannelReference{Name: "support"}, Direction: igv1.DirectionIncoming, ContactID: "42"},
			Status: igv1.InstagramMessageStatus{MessageID: "m_1"},
		}
		if mutate != nil {
			mutate(m)
		}
		return m
	}
	cases := map[string]struct {
		target  *igv1.InstagramMessage
		wantMID string
		wantWhy string
	}{
		"the customer's message": {target: incoming(nil), wantMID: "m_1"},
		"missing":                {wantWhy: `spec.senderAction.messageRef: InstagramMessage "igm-1" not found`},
		"another channel": {target: incoming(func(m *igv1.InstagramMessage) { m.Spec.ChannelRef.Name = "sales" }),
			wantWhy: `spec.senderAction.messageRef: "igm-1" belongs to channel "sales", not "support"`},
		"the business's own message": {target: incoming(func(m *igv1.InstagramMessage) { m.Spec.Direction = igv1.DirectionOutgoing }),
			wantWhy: `spec.senderAction.messageRef: "igm-1" is not a message of the customer (only a customer's message can be reacted to)`},
		"an echo recorded the old way": {target: incoming(func(m *igv1.InstagramMessage) { m.Status.IsEcho = true }),
			wantWhy: `spec.senderAction.messageRef: "igm-1" is not a message of the customer (only a customer's message can be reacted to)`},
		"another contact": {target: incoming(func(m *igv1.InstagramMessage) { m.Spec.ContactID = "43" }),
			wantWhy: `spec.senderAction.messageRef: "igm-1" is from contact 43, not 42`},
		"no mid yet": {target: incoming(func(m *igv1.InstagramMessage) { m.Status.MessageID = "" }),
			wantWhy: `spec.senderAction.messageRef: "igm-1" has no status.messageID`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			mid, why := reactionTarget(spec, tc.target)
			if mid != tc.wantMID || why != tc.wantWhy {
				t.Errorf("got (%q, %q), want (%q, %q)", mid, why, tc.wantMID, tc.wantWhy)
			}
		})
	}
}
