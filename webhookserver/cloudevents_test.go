package webhookserver

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/sink"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/cloudevents")

// sinkIngester routes deliveries to one channel, "support" in "team-a",
// that has a sink, through the real directory over a fake cache.
func sinkIngester(t *testing.T) (*ingester, []AppKey) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := igv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ch := &igv1.InstagramChannel{
		ObjectMeta: metav1.ObjectMeta{Name: "support", Namespace: "team-a", UID: "8d5a2c8e-1f7b-4d3e-9a61-0c2b7e4f5a10"},
		Spec: igv1.InstagramChannelSpec{
			AppRef: igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"},
			Sink:   &igv1.SinkSpec{Destination: igv1.Destination{URI: "http://sink.team-a.svc/"}},
		},
		Status: igv1.InstagramChannelStatus{
			Account: &igv1.AccountStatus{UserID: "17841400000000001"},
			SinkURI: "http://sink.team-a.svc/",
		},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(ch).
		WithIndex(&igv1.InstagramChannel{}, ChannelUserIDIndex, IndexChannelUserID).Build()
	g := &ingester{
		dir:   &directory{cache: c},
		clock: clocktesting.NewFakePassiveClock(time.Date(2026, 11, 1, 12, 0, 30, 0, time.UTC)),
		log:   logr.Discard(),
	}
	return g, []AppKey{appOf(ch)}
}

func routedEvents(t *testing.T, g *ingester, signers []AppKey) []*event {
	t.Helper()
	body, err := os.ReadFile("testdata/cloudevents/delivery.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDelivery(body)
	if err != nil {
		t.Fatal(err)
	}
	evs, unclaimed, err := g.route(context.Background(), signers, d)
	if err != nil || unclaimed {
		t.Fatalf("route: unclaimed %v, %v", unclaimed, err)
	}
	return evs
}

// binaryMode is an event as it goes on the wire: the HTTP headers of
// CloudEvents' binary mode, sorted, then the body.
func binaryMode(t *testing.T, ev cloudevents.Event) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://sink.invalid/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&ev), req); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range req.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&out, "%s: %s\n", k, strings.Join(req.Header[k], ","))
	}
	out.WriteString("\n")
	var body bytes.Buffer
	if err := json.Indent(&body, ev.Data(), "", "  "); err != nil {
		t.Fatalf("data of %s is not JSON: %v", ev.Type(), err)
	}
	out.Write(body.Bytes())
	out.WriteString("\n")
	return out.Bytes()
}

// TestCloudEventGolden holds the wire form of every incoming event type
// (docs/events.md shows the same). Run with -update after a deliberate
// change, and review the diff: every attribute is API.
func TestCloudEventGolden(t *testing.T) {
	g, signers := sinkIngester(t)
	evs := routedEvents(t, g, signers)
	seen := map[string]int{}
	ids := map[string]string{}
	for i, ev := range evs {
		ce, err := g.cloudEvent(ev)
		if err != nil {
			t.Fatalf("event %d (%s): %v", i, ev.typ, err)
		}
		if ce.SpecVersion() != cloudevents.VersionV1 || ce.Source() != "/apis/instagram.leadchat.io/v1alpha1/namespaces/team-a/instagramchannels/support" {
			t.Errorf("event %d: specversion %q source %q", i, ce.SpecVersion(), ce.Source())
		}
		if ce.Time().IsZero() || !ce.Time().Equal(ce.Time().Truncate(time.Millisecond)) {
			t.Errorf("event %d: time %v not to the millisecond", i, ce.Time())
		}
		if want := "team-a/support/" + ce.Subject(); ce.Extensions()[sink.ExtensionPartitionKey] != want {
			t.Errorf("event %d: partitionkey %v, want %q", i, ce.Extensions()[sink.ExtensionPartitionKey], want)
		}
		if other, dup := ids[ce.ID()]; dup {
			t.Errorf("event %d (%s) has the id of %s", i, ce.Type(), other)
		}
		ids[ce.ID()] = ce.Type()
		seen[ce.Type()]++
		got := binaryMode(t, ce)
		file := filepath.Join("testdata", "cloudevents", fmt.Sprintf("%02d-%s.golden", i, strings.TrimPrefix(ce.Type(), sink.TypePrefix)))
		if *update {
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (run go test -run TestCloudEventGolden -update)", err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s (-golden +got):\n%s", file, diff)
		}
	}
	all := []string{
		sink.TypeMessageReceived, sink.TypeMessageEcho, sink.TypeMessageEdited, sink.TypeMessageDeleted,
		sink.TypeMessageRead, sink.TypeReactionAdded, sink.TypeReactionRemoved, sink.TypePostback,
		sink.TypeReferral, sink.TypeOptin, sink.TypeHandover, sink.TypeComment, sink.TypeLiveComment, sink.TypeMention,
	}
	var missing []string
	for _, typ := range all {
		if seen[typ] == 0 {
			missing = append(missing, typ)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the fixture has no event of types %v", missing)
	}
	for typ := range seen {
		if !slices.Contains(all, typ) {
			t.Errorf("type %s is not in the catalogue", typ)
		}
	}
}

// TestCloudEventIDsAreStable: Meta's redelivery of the same events, routed
// and encoded again later by another receiver, yields the same ids.
func TestCloudEventIDsAreStable(t *testing.T) {
	g1, signers := sinkIngester(t)
	g2, _ := sinkIngester(t)
	g2.clock = clocktesting.NewFakePassiveClock(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	a, b := routedEvents(t, g1, signers), routedEvents(t, g2, signers)
	if len(a) != len(b) {
		t.Fatalf("%d vs %d events", len(a), len(b))
	}
	for i := range a {
		x, err1 := g1.cloudEvent(a[i])
		y, err2 := g2.cloudEvent(b[i])
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if x.ID() != y.ID() || !x.Time().Equal(y.Time()) {
			t.Errorf("event %d (%s): id %s then %s, time %v then %v", i, x.Type(), x.ID(), y.ID(), x.Time(), y.Time())
		}
	}
}
