package webhookserver

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
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
