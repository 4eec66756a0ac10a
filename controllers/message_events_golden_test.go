package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/sink"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of testdata/cloudevents")

// TestOutcomeGolden holds the wire form (CloudEvents HTTP binary mode) of
// the outgoing outcomes; webhookserver/testdata/cloudevents holds the
// incoming ones.
func TestOutcomeGolden(t *testing.T) {
	sentAt := metav1.NewTime(time.Date(2026, 11, 1, 12, 0, 5, 0, time.UTC))
	failedAt := metav1.NewTime(time.Date(2026, 11, 1, 12, 0, 7, 0, time.UTC))
	base := igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{Name: "reply-1", Namespace: "team-a", UID: "0b7f7a52-7a43-4b8e-bb43-2f1d9c1e6a01"},
		Spec: igv1.InstagramMessageSpec{ChannelRef: igv1.ChannelReference{Name: "support"}, Direction: igv1.DirectionOutgoing,
			ContactID: "5512340000000001", Text: "Yes! Want me to reserve one?"},
	}
	sent := base.DeepCopy()
	sent.Status = igv1.InstagramMessageStatus{Phase: igv1.PhaseSent, MessageID: "aWdfZAG1faXRlbToxOjE", SentAt: &sentAt, Attempts: 1,
		Conditions: []metav1.Condition{{Type: igv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Sent", LastTransitionTime: sentAt}}}
	failed := base.DeepCopy()
	failed.Name, failed.UID = "reply-2", "0b7f7a52-7a43-4b8e-bb43-2f1d9c1e6a02"
	failed.Status = igv1.InstagramMessageStatus{Phase: igv1.PhaseFailed, Reason: igv1.ReasonOutsideWindow, Attempts: 1,
		Message:    "the customer's last message is older than 24 hours",
		Error:      &igv1.MessageError{Code: 10, Subcode: 2534022, Type: "OAuthException", Message: "This message is sent outside of allowed window."},
		Conditions: []metav1.Condition{{Type: igv1.ConditionReady, Status: metav1.ConditionFalse, Reason: igv1.ReasonOutsideWindow, LastTransitionTime: failedAt}}}

	for _, msg := range []*igv1.InstagramMessage{sent, failed} {
		typ := outcomeType(msg)
		ev, err := outcomeEvent(msg, typ, time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://sink.invalid/", nil)
		if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&ev), req); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range req.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var got bytes.Buffer
		for _, k := range keys {
			fmt.Fprintf(&got, "%s: %s\n", k, strings.Join(req.Header[k], ","))
		}
		got.WriteString("\n")
		if err := json.Indent(&got, ev.Data(), "", "  "); err != nil {
			t.Fatal(err)
		}
		got.WriteString("\n")
		file := filepath.Join("testdata", "cloudevents", strings.TrimPrefix(typ, sink.TypePrefix)+".golden")
		if *updateGolden {
			if err := os.WriteFile(file, got.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (run go test -run TestOutcomeGolden -update)", err)
		}
		if diff := cmp.Diff(string(want), got.String()); diff != "" {
			t.Errorf("%s (-golden +got):\n%s", file, diff)
		}
	}
}
