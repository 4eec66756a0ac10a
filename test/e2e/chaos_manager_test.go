package e2e

import (
	"context"
	"fmt"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/localenv"
)

// The manager is killed (SIGKILL) again and again while it sends a batch
// of replies to a slow Instagram that takes each message before it
// answers. Goal: 0 sent twice, 0 lost (every message ends Sent, or Failed
// with DeliveryUnknown, never stuck), 0 declared DeliveryUnknown while
// its send lease still ran. Opt-in (CHAOS=1, make chaos-manager): each
// kill leaves sends for the next manager to wait out.
var _ = Describe("chaos: the manager killed mid-send", Label("chaos"), Ordered, func() {
	const (
		messages = 40
		kills    = 3
	)
	ctx := context.Background()
	ns := "chaos-" + rand.String(5)
	app := localenv.App{ID: "1000000000000077", Secret: "chaos-app-secret-" + rand.String(8), VerifyToken: "chaos-verify", Name: "chaos"}
	account := newAccount()
	customer := "5512340000000077"

	BeforeAll(func() {
		if os.Getenv("CHAOS") == "" {
			Skip("chaos run: set CHAOS=1 (make chaos-manager)")
		}
	})

	It("sends nothing twice and loses nothing", func() {
		Expect(env.CreateApp(ctx, app)).To(Succeed())
		_, err := env.CreateTokenChannel(ctx, app, ns, "support", account, false)
		Expect(err).NotTo(HaveOccurred())
		out, err := env.Kubectl("-n", ns, "wait", "--for=condition=Ready", "instagramchannel/support", "--timeout=60s")
		Expect(err).NotTo(HaveOccurred(), out)
		env.Fake.AddCustomer(fake.Customer{IGSID: customer, Name: "Chaos Customer"})

		// Every send takes effect at once and is answered 400 ms later:
		// a kill in that window leaves a delivered message unanswered.
		env.Fake.FailNext(fake.EndpointSend, messages, fake.Fault{AfterProcessing: true, AnswerDelay: 400 * time.Millisecond})
		texts := map[string]string{}
		for i := range messages {
			name := fmt.Sprintf("chaos-%02d", i)
			texts[name] = fmt.Sprintf("chaos reply %02d %s", i, rand.String(6))
			Expect(k8sClient.Create(ctx, &igv1.InstagramMessage{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: igv1.InstagramMessageSpec{
					ChannelRef: igv1.ChannelReference{Name: "support"},
					Direction:  igv1.DirectionOutgoing,
					ContactID:  customer,
					Text:       texts[name],
				},
			})).To(Succeed())
		}

		// A phase watch notices any DeliveryUnknown written while a lease
		// still ran.
		early := 0
		stopWatch := watchEarlyDeliveryUnknown(ctx, ns, &early)
		defer stopWatch()

		ours := func() int {
			n := 0
			for _, s := range env.Fake.Sent() {
				for _, t := range texts {
					if s.Text == t {
						n++
					}
				}
			}
			return n
		}
		for k := range kills {
			Eventually(ours, timeout).Should(BeNumerically(">", k*messages/(kills+1)))
			env.Manager.Kill()
			Expect(env.Manager.Start(ctx)).To(Succeed())
		}

		By("every message ends Sent or DeliveryUnknown")
		var list igv1.InstagramMessageList
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			for _, m := range list.Items {
				if m.Spec.Direction != igv1.DirectionOutgoing {
					continue
				}
				g.Expect(m.Status.Phase).To(BeElementOf(igv1.PhaseSent, igv1.PhaseRead, igv1.PhaseFailed), m.Name)
			}
		}, 4*time.Minute, time.Second).Should(Succeed())

		sent := map[string]int{}
		for _, s := range env.Fake.Sent() {
			sent[s.Text]++
		}
		var delivered, unknown, unknownDelivered, twice, lost int
		for _, m := range list.Items {
			if m.Spec.Direction != igv1.DirectionOutgoing {
				continue
			}
			n := sent[texts[m.Name]]
			if n > 1 {
				twice++
			}
			switch {
			case m.Status.Phase == igv1.PhaseSent || m.Status.Phase == igv1.PhaseRead:
				delivered++
				if n != 1 {
					lost++
				}
			case m.Status.Reason == igv1.ReasonDeliveryUnknown:
				unknown++
				if n == 1 {
					unknownDelivered++
				}
			default:
				lost++
			}
		}
		report := fmt.Sprintf("chaos (manager killed %d times mid-send): messages %d, sent %d, DeliveryUnknown %d (of which delivered %d), sent twice %d, lost %d, DeliveryUnknown while leased %d",
			kills, messages, delivered, unknown, unknownDelivered, twice, lost, early)
		GinkgoWriter.Println(report)
		AddReportEntry("chaos-manager", report)
		Expect(twice).To(BeZero(), report)
		Expect(lost).To(BeZero(), report)
		Expect(early).To(BeZero(), report)
		Expect(delivered+unknown).To(Equal(messages), report)
	})
})

// watchEarlyDeliveryUnknown counts messages written Failed/DeliveryUnknown
// before the expiry of the send lease they carried while Sending.
func watchEarlyDeliveryUnknown(ctx context.Context, ns string, early *int) (stop func()) {
	GinkgoHelper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	Expect(err).NotTo(HaveOccurred())
	w, err := wc.Watch(ctx, &igv1.InstagramMessageList{}, client.InNamespace(ns))
	Expect(err).NotTo(HaveOccurred())
	done := make(chan struct{})
	go func() {
		defer close(done)
		leases := map[string]time.Time{}
		for ev := range w.ResultChan() {
			m, ok := ev.Object.(*igv1.InstagramMessage)
			if !ok {
				continue
			}
			if l := m.Status.SendLease; l != nil {
				leases[m.Name] = l.ExpiresAt.Time
			}
			if m.Status.Phase == igv1.PhaseFailed && m.Status.Reason == igv1.ReasonDeliveryUnknown {
				if exp, ok := leases[m.Name]; ok && time.Now().Before(exp.Add(-time.Second)) {
					*early++
				}
				delete(leases, m.Name)
			}
		}
	}()
	return func() {
		w.Stop()
		<-done
	}
}
