package instagram_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

// jsonEqual compares two JSON texts by value.
func jsonEqual(t *testing.T, want string, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want: %v", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got: %v", err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

// TestSendMessageWireFormat sends each kind of content and checks the exact
// JSON body the fake received (which validates it strictly against
// INSTAGRAM-API.md) against the documented shape, written out by hand.
func TestSendMessageWireFormat(t *testing.T) {
	ctx := context.Background()
	msg := func(m instagram.MessageContent) instagram.SendRequest {
		return instagram.SendRequest{AccountID: userID, RecipientID: customer, Message: &m}
	}
	for name, tc := range map[string]struct {
		req      instagram.SendRequest
		wantBody string
		wantKind string
	}{
		"text with quick replies": {
			req: msg(instagram.MessageContent{Text: "Size?", QuickReplies: []instagram.QuickReply{
				{Title: "42", Payload: "SIZE_42"}, {ContentType: "user_email"}, {ContentType: "user_phone_number"},
			}}),
			wantBody: `{"recipient":{"id":"5550001"},"message":{"text":"Size?","quick_replies":[
				{"content_type":"text","title":"42","payload":"SIZE_42"},{"content_type":"user_email"},{"content_type":"user_phone_number"}]}}`,
			wantKind: "quick_replies",
		},
		"reply to a message with a tag": {
			req: instagram.SendRequest{RecipientID: customer, HumanAgent: true, ReplyTo: "mid.in", Message: &instagram.MessageContent{Text: "Sure"}},
			wantBody: `{"recipient":{"id":"5550001"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT",
				"message":{"text":"Sure","reply_to":{"mid":"mid.in"}}}`,
			wantKind: "text",
		},
		"three images, one by attachment id": {
			req: msg(instagram.MessageContent{Images: []instagram.Image{
				{URL: "https://cdn.example.com/1.jpg"}, {URL: "https://cdn.example.com/2.jpg"}, {AttachmentID: "777"},
			}}),
			wantBody: `{"recipient":{"id":"5550001"},"message":{"attachments":[
				{"type":"image","payload":{"url":"https://cdn.example.com/1.jpg"}},
				{"type":"image","payload":{"url":"https://cdn.example.com/2.jpg"}},
				{"type":"image","payload":{"attachment_id":"777"}}]}}`,
			wantKind: "images",
		},
		"one image": {
			req:      msg(instagram.MessageContent{Images: []instagram.Image{{URL: "https://cdn.example.com/1.jpg"}}}),
			wantBody: `{"recipient":{"id":"5550001"},"message":{"attachment":{"type":"image","payload":{"url":"https://cdn.example.com/1.jpg"}}}}`,
			wantKind: "image",
		},
		"video": {
			req:      msg(instagram.MessageContent{Attachment: &instagram.Attachment{Type: "video", URL: "https://cdn.example.com/v.mp4"}}),
			wantBody: `{"recipient":{"id":"5550001"},"message":{"attachment":{"type":"video","payload":{"url":"https://cdn.example.com/v.mp4"}}}}`,
			wantKind: "video",
		},
		"heart sticker": {
			req:      msg(instagram.MessageContent{HeartSticker: true}),
			wantBody: `{"recipient":{"id":"5550001"},"message":{"attachment":{"type":"like_heart"}}}`,
			wantKind: "like_heart",
		},
		"own post": {
			req:      msg(instagram.MessageContent{MediaShareID: "17890000000000001"}),
			wantBody: `{"recipient":{"id":"5550001"},"message":{"attachment":{"type":"MEDIA_SHARE","payload":{"id":"17890000000000001"}}}}`,
			wantKind: "media_share",
		},
		"button template": {
			req: msg(instagram.MessageContent{Button: &instagram.ButtonTemplate{Text: "Track your order?", Buttons: []instagram.Button{
				{Type: "web_url", Title: "Track", URL: "https://shop.example.com/t"},
				{Type: "postback", Title: "Talk to us", Payload: "AGENT"},
			}}}),
			wantBody: `{"recipient":{"id":"5550001"},"message":{"attachment":{"type":"template","payload":{
				"template_type":"button","text":"Track your order?","buttons":[
				{"type":"web_url","title":"Track","url":"https://shop.example.com/t"},
				{"type":"postback","title":"Talk to us","payload":"AGENT"}]}}}}`,
			wantKind: "button_template",
		},
		"generic template": {
			req: msg(instagram.MessageContent{Generic: &instagram.GenericTemplate{Elements: []instagram.GenericElement{
				{Title: "Runner", Subtitle: "Red", ImageURL: "https://cdn.example.com/r.jpg", DefaultActionURL: "https://shop.example.com/r",
					Buttons: []instagram.Button{{Type: "postback", Title: "Buy", Payload: "BUY_R"}}},
				{Title: "Walker"},
			}}}),
			wantBody: `{"recipient":{"id":"5550001"},"message":{"attachment":{"type":"template","payload":{
				"template_type":"generic","elements":[
				{"title":"Runner","subtitle":"Red","image_url":"https://cdn.example.com/r.jpg",
				 "default_action":{"type":"web_url","url":"https://shop.example.com/r"},
				 "buttons":[{"type":"postback","title":"Buy","payload":"BUY_R"}]},
				{"title":"Walker"}]}}}}`,
			wantKind: "generic_template",
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, fake.Options{})
			e.fake.AddPost(userID, "17890000000000001")
			res, err := e.api.SendMessage(ctx, e.token(t), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			sent := e.fake.Sent()
			if len(sent) != 1 {
				t.Fatalf("sent %d messages", len(sent))
			}
			if sent[0].MID != res.MessageID || sent[0].Kind != tc.wantKind {
				t.Errorf("mid %q kind %q, want mid %q kind %q", sent[0].MID, sent[0].Kind, res.MessageID, tc.wantKind)
			}
			jsonEqual(t, tc.wantBody, sent[0].Body)
			if got := tc.req.Kind(); got != tc.wantKind {
				t.Errorf("Kind() = %q, want %q", got, tc.wantKind)
			}
		})
	}
}

func TestSenderActionsWireFormat(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fake.Options{})
	tok := e.token(t)
	mid, err := e.fake.DeliverMessage(ctx, fake.CustomerMessage{AccountUserID: userID, CustomerID: customer, Text: "hi"})
	if err != nil && err != fake.ErrNotSubscribed {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		action   instagram.SenderAction
		wantBody string
	}{
		{instagram.SenderAction{Action: "react", MessageID: mid, Reaction: "love"},
			`{"recipient":{"id":"5550001"},"sender_action":"react","payload":{"message_id":"` + mid + `","reaction":"love"}}`},
		{instagram.SenderAction{Action: "unreact", MessageID: mid},
			`{"recipient":{"id":"5550001"},"sender_action":"unreact","payload":{"message_id":"` + mid + `"}}`},
		{instagram.SenderAction{Action: "typing_on"}, `{"recipient":{"id":"5550001"},"sender_action":"typing_on"}`},
		{instagram.SenderAction{Action: "typing_off"}, `{"recipient":{"id":"5550001"},"sender_action":"typing_off"}`},
		{instagram.SenderAction{Action: "mark_seen"}, `{"recipient":{"id":"5550001"},"sender_action":"mark_seen"}`},
	} {
		t.Run(tc.action.Action, func(t *testing.T) {
			before := len(e.fake.SenderActions())
			a := tc.action
			res, err := e.api.SendMessage(ctx, tok, instagram.SendRequest{RecipientID: customer, Action: &a})
			if err != nil {
				t.Fatal(err)
			}
			if res.MessageID != "" {
				t.Errorf("a sender action got mid %q", res.MessageID)
			}
			acts := e.fake.SenderActions()
			if len(acts) != before+1 {
				t.Fatalf("fake saw %d actions, want %d", len(acts), before+1)
			}
			jsonEqual(t, tc.wantBody, acts[len(acts)-1].Body)
		})
	}
	if n := len(e.fake.Sent()); n != 0 {
		t.Errorf("sender actions recorded %d messages", n)
	}
}

// TestSendRefusals: what Instagram would refuse is refused before a call,
// NotDelivered; what only Instagram can know (a reaction to a message that
// is not the customer's, a post of another account) is its code 100.
func TestSendRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fake.Options{})
	tok := e.token(t)
	e.fake.AddPost("17841400000000999", "17890000000000002")
	for name, tc := range map[string]struct {
		req       instagram.SendRequest
		wantCalls int
	}{
		"text over 1000 bytes":    {instagram.SendRequest{RecipientID: customer, Message: &instagram.MessageContent{Text: strings.Repeat("é", 501)}}, 0},
		"fourteen quick replies":  {instagram.SendRequest{RecipientID: customer, Message: &instagram.MessageContent{Text: "x", QuickReplies: make([]instagram.QuickReply, 14)}}, 0},
		"eleven images":           {instagram.SendRequest{RecipientID: customer, Message: &instagram.MessageContent{Images: make([]instagram.Image, 11)}}, 0},
		"text and a sticker":      {instagram.SendRequest{RecipientID: customer, Message: &instagram.MessageContent{Text: "x", HeartSticker: true}}, 0},
		"four buttons":            {instagram.SendRequest{RecipientID: customer, Message: &instagram.MessageContent{Button: &instagram.ButtonTemplate{Text: "x", Buttons: make([]instagram.Button, 4)}}}, 0},
		"message and action":      {instagram.SendRequest{RecipientID: customer, Message: &instagram.MessageContent{Text: "x"}, Action: &instagram.SenderAction{Action: "mark_seen"}}, 0},
		"react without a mid":     {instagram.SendRequest{RecipientID: customer, Action: &instagram.SenderAction{Action: "react", Reaction: "love"}}, 0},
		"react to an unknown mid": {instagram.SendRequest{RecipientID: customer, Action: &instagram.SenderAction{Action: "react", MessageID: "mid.nope", Reaction: "love"}}, 1},
		"post of another account": {instagram.SendRequest{RecipientID: customer, Message: &instagram.MessageContent{MediaShareID: "17890000000000002"}}, 1},
		"plain-http button url": {instagram.SendRequest{RecipientID: customer, Message: &instagram.MessageContent{Button: &instagram.ButtonTemplate{Text: "x",
			Buttons: []instagram.Button{{Type: "web_url", Title: "Go", URL: "http://shop.example.com"}}}}}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			before := e.fake.CallCount(fake.EndpointSend)
			_, err := e.api.SendMessage(ctx, tok, tc.req)
			ie := e.checkErr(t, err)
			if ie.Class != instagram.ClassBadRequest || !ie.NotDelivered {
				t.Errorf("class %s notDelivered %v: %v", ie.Class, ie.NotDelivered, err)
			}
			if got := e.fake.CallCount(fake.EndpointSend) - before; got != tc.wantCalls {
				t.Errorf("%d calls, want %d", got, tc.wantCalls)
			}
		})
	}
}

// TestSplitImageMIDs: a multi-image send that Instagram records as several
// messages reports every mid.
func TestSplitImageMIDs(t *testing.T) {
	e := newEnv(t, fake.Options{SplitImageMIDs: true})
	res, err := e.api.SendMessage(context.Background(), e.token(t), instagram.SendRequest{RecipientID: customer,
		Message: &instagram.MessageContent{Images: []instagram.Image{{URL: "https://cdn.example.com/1.jpg"}, {URL: "https://cdn.example.com/2.jpg"}, {URL: "https://cdn.example.com/3.jpg"}}}})
	if err != nil {
		t.Fatal(err)
	}
	sent := e.fake.Sent()[0]
	if res.MessageID != sent.MID || !cmp.Equal(res.MoreMessageIDs, sent.MoreMIDs) || len(res.MoreMessageIDs) != 2 {
		t.Errorf("result %+v, fake %q %q", res, sent.MID, sent.MoreMIDs)
	}
}

// TestAccountRateLimit: sends of one account are paced at its per-second
// limit while another account's are not held up; audio/video have their
// own, lower, limit.
func TestAccountRateLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fake.Options{}, func(c *instagram.Config) {
		c.RatePerSecond = -1
		c.AccountLimits = instagram.AccountLimits{TextPerSecond: 5, MediaPerSecond: 1}
	})
	tok := e.token(t)
	send := func(account string, kind string) error {
		req := instagram.SendRequest{AccountID: account, RecipientID: customer, Message: &instagram.MessageContent{Text: "x"}}
		if kind == "video" {
			req.Message = &instagram.MessageContent{Attachment: &instagram.Attachment{Type: "video", URL: "https://cdn.example.com/v.mp4"}}
		}
		// A deadline shorter than the next token: the limiter refuses at
		// once (NotDelivered, RateLimited) instead of waiting.
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := e.api.SendMessage(ctx, tok, req)
		return err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok, limited := map[string]int{}, map[string]int{}
	for _, account := range []string{"A", "B"} {
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := send(account, "text")
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok[account]++
				} else if ie := e.checkErr(t, err); ie.Class == instagram.ClassRateLimited && ie.NotDelivered {
					limited[account]++
				} else {
					t.Errorf("unexpected %v", err)
				}
			}()
		}
	}
	wg.Wait()
	for _, account := range []string{"A", "B"} {
		// Burst 5 plus at most one token in the 50 ms window.
		if ok[account] < 5 || ok[account] > 6 || ok[account]+limited[account] != 20 {
			t.Errorf("account %s: %d sent, %d limited", account, ok[account], limited[account])
		}
	}
	if err := send("C", "video"); err != nil {
		t.Fatal(err)
	}
	if ie := e.checkErr(t, send("C", "video")); ie.Class != instagram.ClassRateLimited {
		t.Errorf("second video in a second: %v", ie)
	}
	if err := send("C", "text"); err != nil {
		t.Errorf("text after the video limit: %v", err)
	}
}

// TestAccountWait: the controller asks before it marks a message Sending;
// asking takes no turn, and one account's wait is not another's.
func TestAccountWait(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(c *instagram.Config) {
		c.RatePerSecond = -1
		c.AccountLimits = instagram.AccountLimits{TextPerSecond: 1}
	})
	tok := e.token(t)
	for range 3 {
		if w := e.api.AccountWait("A", instagram.RateText); w != 0 {
			t.Fatalf("wait %s before any send", w)
		}
	}
	if _, err := e.api.SendMessage(context.Background(), tok, instagram.SendRequest{AccountID: "A", RecipientID: customer, Message: &instagram.MessageContent{Text: "x"}}); err != nil {
		t.Fatal(err)
	}
	if w := e.api.AccountWait("A", instagram.RateText); w <= 0 || w > time.Second {
		t.Errorf("wait after the turn was used: %s", w)
	}
	if w := e.api.AccountWait("B", instagram.RateText); w != 0 {
		t.Errorf("another account waits %s", w)
	}
	if w := e.api.AccountWait("A", instagram.RateMedia); w != 0 {
		t.Errorf("another kind waits %s", w)
	}
}
