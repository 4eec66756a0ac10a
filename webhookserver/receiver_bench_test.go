package webhookserver

import (
	"fmt"
	"testing"
)

// BenchmarkVerifyAndParseSingleMessage is BenchmarkVerifyAndParse for the
// common delivery: one customer message in one entry, signed by the second
// of several apps, the shape hack/bench posts to the receiver. Its
// allocs/op is the receiver's fixed cost per delivery before any API call.
func BenchmarkVerifyAndParseSingleMessage(b *testing.B) {
	body := []byte(fmt.Sprintf(`{"object":"instagram","entry":[{"id":"17841400000000001","time":%d,"messaging":[`+
		`{"sender":{"id":"5512340000000001"},"recipient":{"id":"17841400000000001"},"timestamp":%d,`+
		`"message":{"mid":"aWdfZAG1faXRlbTox0123456789abcdefghijklmnopqrstuvwxyzABCD","text":"Hi! Is the blue one still in stock in size M?"}}]}]}`,
		int64(1763700000000), int64(1763700000000)))
	header := hubSignature("own-secret", body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		signers, err := VerifySignature(header, body, testApps)
		if err != nil || len(signers) == 0 {
			b.Fatalf("verify: %v %v", signers, err)
		}
		d, err := ParseDelivery(body)
		if err != nil {
			b.Fatal(err)
		}
		if len(d.Entry) != 1 || len(d.Entry[0].Messaging) != 1 || d.Entry[0].Messaging[0].Kind() != EventMessage {
			b.Fatalf("parsed %+v, want one message", d)
		}
	}
}
