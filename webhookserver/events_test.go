package webhookserver

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func TestParseDeliveryAllEvents(t *testing.T) {
	body, err := os.ReadFile("testdata/deliveries/all_events.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDelivery(body)
	if err != nil {
		t.Fatal(err)
	}
	if d.Object != "instagram" || len(d.Entry) != 3 {
		t.Fatalf("object %q with %d entries", d.Object, len(d.Entry))
	}
	var kinds []EventType
	for _, it := range d.Entry[0].Messaging {
		kinds = append(kinds, it.Kind())
	}
	want := []EventType{EventMessage, EventMessage, EventMessage, EventEcho, EventUnsend, EventRead,
		EventReaction, EventReaction, EventPostback, EventReferral, EventEdit, EventOptin}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Fatalf("kinds (-want +got):\n%s", diff)
	}
	first := d.Entry[0].Messaging[0]
	if first.Timestamp != 1793534400001 || first.Sender.ID != "5512340000000001" || first.Message.QuickReply.Payload != "STOCK" ||
		first.Message.ReplyTo.MID != "aWdfZAG1faWQ6MA" || first.Message.Attachments[1].Payload.Title != "A post" {
		t.Fatalf("first message decoded wrong: %+v", first)
	}
	if got := d.Entry[0].Messaging[10].MessageEdit.NumEdit; got != 1 {
		t.Fatalf("num_edit = %d", got)
	}
	if len(d.Entry[1].Standby) != 1 || d.Entry[1].Standby[0].Kind() != EventMessage {
		t.Fatalf("standby not decoded: %+v", d.Entry[1])
	}
	if len(d.Entry[2].Changes) != 1 || d.Entry[2].Changes[0].Field != "messages" {
		t.Fatalf("test envelope not decoded: %+v", d.Entry[2])
	}
}

func TestParseDeliveryFlexibleScalars(t *testing.T) {
	tests := map[string]struct {
		body    string
		wantID  FlexString
		wantTS  FlexInt
		wantErr bool
		// A bad entry or item is skipped and counted, not a reason to
		// refuse the delivery.
		wantMalformedEntries, wantMalformedItems int
	}{
		"strings and numbers": {body: `{"entry":[{"id":"17841","messaging":[{"timestamp":1700000000000}]}]}`, wantID: "17841", wantTS: 1700000000000},
		"numeric id":          {body: `{"entry":[{"id":17841,"messaging":[{"timestamp":"1700000000000"}]}]}`, wantID: "17841", wantTS: 1700000000000},
		"float timestamp":     {body: `{"entry":[{"id":null,"messaging":[{"timestamp":1.7e12}]}]}`, wantTS: 1700000000000},
		"bad timestamp":       {body: `{"entry":[{"id":"1","messaging":[{"timestamp":"soon"}]}]}`, wantMalformedItems: 1},
		"object id":           {body: `{"entry":[{"id":{"a":1}}]}`, wantMalformedEntries: 1},
		"not an object":       {body: `[1,2]`, wantErr: true},
		"truncated":           {body: `{"entry":[`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d, err := ParseDelivery([]byte(tc.body))
			if tc.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Malformed != tc.wantMalformedEntries {
				t.Fatalf("malformed entries = %d, want %d", d.Malformed, tc.wantMalformedEntries)
			}
			if tc.wantMalformedEntries > 0 {
				return
			}
			e := d.Entry[0]
			if e.Malformed != tc.wantMalformedItems {
				t.Fatalf("malformed items = %d, want %d", e.Malformed, tc.wantMalformedItems)
			}
			if tc.wantMalformedItems > 0 {
				return
			}
			if e.ID != tc.wantID || e.Messaging[0].Timestamp != tc.wantTS {
				t.Fatalf("id %q ts %d, want %q %d", e.ID, e.Messaging[0].Timestamp, tc.wantID, tc.wantTS)
			}
		})
	}
}

func TestClip(t *testing.T) {
	tests := map[string]struct {
		in   string
		n    int
		want string
	}{
		"short":          {"abc", 5, "abc"},
		"ascii":          {"abcdef", 3, "abc"},
		"rune boundary":  {"aé", 2, "a"},
		"invalid utf8":   {"a\xffb", 10, "a\uFFFDb"},
		"emoji boundary": {"❤️x", 4, "❤"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := clip(tc.in, tc.n); got != tc.want {
				t.Fatalf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

// FuzzParseDelivery holds the parser to: no panic, and every item of a
// parsed delivery classifies without panic (classification dereferences
// the optional parts).
func FuzzParseDelivery(f *testing.F) {
	if b, err := os.ReadFile("testdata/deliveries/all_events.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"object":"instagram","entry":[{"id":"1","messaging":[{"message":{"is_echo":true}}]}]}`))
	f.Add([]byte(`{"object":"instagram","entry":[{"id":1,"time":"2","standby":[{"read":{}}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := ParseDelivery(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		for _, e := range d.Entry {
			for _, list := range [][]Item{e.Messaging, e.Standby} {
				for i := range list {
					_ = list[i].Kind()
					_ = contactOf(&list[i], string(e.ID))
				}
			}
		}
	})
}

// BenchmarkVerifyAndParse measures the work done per delivery before any
// API call: signature check over the raw body, then JSON decoding.
func BenchmarkVerifyAndParse(b *testing.B) {
	body, err := os.ReadFile("testdata/deliveries/all_events.json")
	if err != nil {
		b.Fatal(err)
	}
	header := hubSignature("own-secret", body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := VerifySignature(header, body, testApps); err != nil {
			b.Fatal(err)
		}
		if _, err := ParseDelivery(body); err != nil {
			b.Fatal(err)
		}
	}
}

// Every documented item shape decodes to its kind with no unknown key; an
// undocumented key is named, not a reason to drop the event.
func TestItemKinds(t *testing.T) {
	tests := map[string]struct {
		item    string
		want    EventType
		unknown []string
	}{
		"message":           {`{"message":{"mid":"m","text":"hi","attachments":[{"type":"ig_story","payload":{"story_media_id":"1","story_media_url":"https://x"}}],"reply_to":{"story":{"id":"2","url":"https://s"}},"quick_reply":{"payload":"P"},"referral":{"ad_id":"3","source":"ADS","type":"OPEN_THREAD","ads_context_data":{"ad_title":"t","photo_url":"https://p","video_url":"https://v","post_id":"4"},"product":{"id":"5"}}}}`, EventMessage, nil},
		"echo":              {`{"message":{"mid":"m","text":"hi","is_echo":true}}`, EventEcho, nil},
		"unsend of an echo": {`{"message":{"mid":"m","is_echo":true,"is_deleted":true}}`, EventUnsend, nil},
		"unsupported":       {`{"message":{"mid":"m","is_unsupported":true}}`, EventMessage, nil},
		"read":              {`{"read":{"mid":"m"}}`, EventRead, nil},
		"reaction":          {`{"reaction":{"mid":"m","action":"react","reaction":"love","emoji":"x"}}`, EventReaction, nil},
		"unreact":           {`{"reaction":{"mid":"m","action":"unreact"}}`, EventReaction, nil},
		"postback":          {`{"postback":{"mid":"m","title":"t","payload":"p","referral":{"ref":"r","source":"SHORTLINK","type":"OPEN_THREAD"}}}`, EventPostback, nil},
		"referral":          {`{"referral":{"ref":"r","source":"SHORTLINK","type":"OPEN_THREAD"}}`, EventReferral, nil},
		"edit":              {`{"message_edit":{"mid":"m","text":"t","num_edit":"2"}}`, EventEdit, nil},
		"optin":             {`{"optin":{"type":"notification_messages","payload":"p","notification_messages_token":"t","token_expiry_timestamp":1700000000000}}`, EventOptin, nil},
		"pass":              {`{"pass_thread_control":{"previous_owner_app_id":null,"new_owner_app_id":"1","metadata":"m"}}`, EventHandover, nil},
		"take":              {`{"take_thread_control":{"previous_owner_app_id":"1","new_owner_app_id":2}}`, EventHandover, nil},
		"request":           {`{"request_thread_control":{"requested_owner_app_id":"1"}}`, EventHandover, nil},
		"new item key":      {`{"app_roles":{"1":["primary_receiver"]}}`, EventUnknown, []string{"app_roles"}},
		"new message key":   {`{"message":{"mid":"m","is_self":true},"new_top":1}`, EventMessage, []string{"message.is_self", "new_top"}},
		"new payload key":   {`{"message":{"mid":"m","attachments":[{"type":"share","payload":{"url":"https://x","brand_new":"v"}}]}}`, EventMessage, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var it Item
			if err := it.UnmarshalJSON([]byte(tc.item)); err != nil {
				t.Fatal(err)
			}
			if got := it.Kind(); got != tc.want {
				t.Errorf("Kind = %s, want %s", got, tc.want)
			}
			if diff := cmp.Diff(tc.unknown, it.Unknown); diff != "" {
				t.Errorf("unknown keys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAttachmentPayloadKeepsEveryKey(t *testing.T) {
	var a Attachment
	body := `{"type":"ig_reel","payload":{"url":"https://cdn/r.mp4","title":"T","reel_video_id":123,"attachment_id":"a1","sticker_id":7,"id":"i","later":{"x":[1,2]},"flag":true,"nothing":null}}`
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	want := AttachmentPayload{URL: "https://cdn/r.mp4", Title: "T", ReelVideoID: "123", AttachmentID: "a1", StickerID: "7", ID: "i",
		Extra: map[string]string{"later": `{"x":[1,2]}`, "flag": "true", "nothing": ""}}
	if diff := cmp.Diff(want, a.Payload); diff != "" {
		t.Fatalf("payload (-want +got):\n%s", diff)
	}
}

func TestMetaTime(t *testing.T) {
	tests := map[string]struct {
		in   FlexInt
		want time.Time
	}{
		"milliseconds": {1793534400120, time.UnixMilli(1793534400120).UTC()},
		"seconds":      {1793534400, time.Unix(1793534400, 0).UTC()},
		"none":         {0, time.Time{}},
		"negative":     {-5, time.Time{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := MetaTime(tc.in); !got.Equal(tc.want) {
				t.Fatalf("MetaTime(%d) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestIsTest(t *testing.T) {
	tests := map[string]struct {
		id, field string
		want      bool
	}{
		"dashboard entry id 0":    {"0", "comments", true},
		"messages inside changes": {"17841400000000001", "messages", true},
		"a real comment":          {"17841400000000001", "comments", false},
		"a real live comment":     {"17841400000000001", "live_comments", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := Entry{ID: FlexString(tc.id)}
			if got := e.IsTest(&Change{Field: tc.field}); got != tc.want {
				t.Fatalf("IsTest = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestApplyReaction(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	react := func(r string) *Reaction { return &Reaction{MID: "m", Action: "react", Reaction: r} }
	unreact := &Reaction{MID: "m", Action: "unreact"}
	var s igv1.InstagramMessageStatus
	steps := []struct {
		r       *Reaction
		at      time.Duration
		changed bool
	}{
		{react("love"), 1 * time.Second, true},
		{react("love"), 1 * time.Second, false}, // redelivery
		{react("wow"), 2 * time.Second, true},   // replaces, closes love
		{unreact, 3 * time.Second, true},
		{react("like"), 1500 * time.Millisecond, false}, // late: older than the unreact
		{unreact, 4 * time.Second, false},               // nothing left to remove
	}
	for i, st := range steps {
		if got := applyReaction(&s, "555", st.r, t0.Add(st.at)); got != st.changed {
			t.Fatalf("step %d: changed = %v, want %v", i, got, st.changed)
		}
	}
	if len(s.Reactions) != 0 || len(s.ReactionHistory) != 2 {
		t.Fatalf("reactions %v history %v", s.Reactions, s.ReactionHistory)
	}
	if h := s.ReactionHistory[0]; h.Reaction != "love" || !h.RemovedAt.Time.Equal(t0.Add(2*time.Second)) {
		t.Errorf("love: %+v", h)
	}
	if h := s.ReactionHistory[1]; h.Reaction != "wow" || !h.RemovedAt.Time.Equal(t0.Add(3*time.Second)) {
		t.Errorf("wow: %+v", h)
	}
}
