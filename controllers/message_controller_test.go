package controllers

import (
	"context"

	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
)

var _ = Describe("InstagramMessage sending", func() {
	var e *messageEnv
	BeforeEach(func() { e = newMessageEnv() })

	It("sends a text message once, labels it and leaves it Ready", func() {
		before := sentCount(sendResultSent)
		m := e.outgoing("Yes, it is in stock.")

		Expect(e.reconcile(m.Name)).To(Equal(ctrl.Result{}))

		sent := e.ig.Sent()
		Expect(sent).To(HaveLen(1))
		Expect(sent[0].Text).To(Equal("Yes, it is in stock."))
		Expect(sent[0].RecipientID).To(Equal(msgTestContact))
		Expect(sent[0].AppID).To(Equal(e.appID))
		Expect(sent[0].Tag).To(BeEmpty())

		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(got.Status.MessageID).To(Equal(sent[0].MID))
		Expect(got.Status.SentAt).NotTo(BeNil())
		Expect(got.Status.SentAt.Time).To(BeTemporally("==", e.clock.Now()))
		Expect(got.Status.Reason).To(BeEmpty())
		Expect(got.Status.Error).To(BeNil())
		Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		expectMessageCondition(got, igv1.ConditionReady, metav1.ConditionTrue, string(igv1.PhaseSent))
		Expect(got.Status.Conditions).To(HaveLen(1), "no Reconciling or Stalled once sent")
		Expect(messageKstatus(got)).To(Equal(status.CurrentStatus))
		Expect(got.Labels).To(Equal(map[string]string{
			igv1.LabelChannel:   e.channel,
			igv1.LabelContact:   msgTestContact,
			igv1.LabelDirection: igv1.DirectionLabelOutgoing,
			igv1.LabelMID:       names.MIDHash(sent[0].MID),
			igv1.LabelDone:      "true",
		}))
		Expect(MessageCacheSelector().Matches(labelsOf(got))).To(BeFalse(), "a sent message leaves the cache")
		Expect(got.OwnerReferences).To(HaveLen(1))
		Expect(got.OwnerReferences[0].Kind).To(Equal("InstagramChannel"))
		Expect(got.OwnerReferences[0].Name).To(Equal(e.channel))
		Expect(sentCount(sendResultSent) - before).To(Equal(1.0))

		By("a later reconcile is quiet: no write, no Instagram call")
		writes := e.writes.Load()
		Expect(e.reconcile(m.Name)).To(Equal(ctrl.Result{}))
		Expect(e.writes.Load()).To(Equal(writes))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))
		Expect(e.get(m.Name).ResourceVersion).To(Equal(got.ResourceVersion))
	})

	It("sends an attachment with the HUMAN_AGENT tag as a reply", func() {
		m := e.outgoing("", func(m *igv1.InstagramMessage) {
			m.Spec.Attachments = []igv1.Attachment{{Type: "image", URL: "https://cdn.example.com/p.png"}}
			m.Spec.Tag = igv1.TagHumanAgent
			m.Spec.ReplyTo = "aWdfZAG1faXRlbTox-customer"
		})
		e.reconcile(m.Name)

		sent := e.ig.Sent()
		Expect(sent).To(HaveLen(1))
		Expect(sent[0].Text).To(BeEmpty())
		Expect(sent[0].AttachmentType).To(Equal("image"))
		Expect(sent[0].AttachmentURL).To(Equal("https://cdn.example.com/p.png"))
		Expect(sent[0].MessagingType).To(Equal("MESSAGE_TAG"))
		Expect(sent[0].Tag).To(Equal("HUMAN_AGENT"))
		Expect(sent[0].ReplyTo).To(Equal("aWdfZAG1faXRlbTox-customer"))
		Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhaseSent))
	})

	DescribeTable("fails without retry on refusals that need a human",
		func(f fake.Fault, reason string, mention string) {
			before := sentCount(sendResultFailed(reason))
			e.ig.FailNext(fake.EndpointSend, 1, f)
			m := e.outgoing("hello")

			Expect(e.reconcile(m.Name)).To(Equal(ctrl.Result{}))

			got := e.get(m.Name)
			Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
			Expect(got.Status.Reason).To(Equal(reason))
			Expect(got.Status.Message).To(ContainSubstring(mention))
			Expect(got.Status.Error).To(Equal(&igv1.MessageError{
				Code: int32(f.Code), Subcode: int32(f.Subcode), Type: "OAuthException", Message: f.Message,
			}))
			Expect(got.Status.MessageID).To(BeEmpty())
			expectMessageCondition(got, igv1.ConditionStalled, metav1.ConditionTrue, reason)
			expectMessageCondition(got, igv1.ConditionReady, metav1.ConditionFalse, reason)
			Expect(messageKstatus(got)).To(Equal(status.FailedStatus))
			Expect(got.Labels[igv1.LabelDone]).To(Equal("true"))
			Expect(sentCount(sendResultFailed(reason)) - before).To(Equal(1.0))
			Expect(e.drainEvents()).To(ContainElement(HavePrefix("Warning " + reason)))

			By("no retry, however often it is reconciled")
			e.clock.Step(time.Hour)
			e.reconcile(m.Name)
			e.reconcile(m.Name)
			Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))
		},
		Entry("outside the messaging window", fake.Fault{Code: 10, Subcode: 2534022, Message: "(#10) This message is sent outside of allowed window."},
			igv1.ReasonOutsideWindow, "spec.tag HUMAN_AGENT"),
		Entry("person unavailable", fake.Fault{Code: 551, Message: "(#551) This person isn't available right now."},
			igv1.ReasonUserUnavailable, "551"),
		Entry("permission missing", fake.Fault{Code: 200, Message: "(#200) Requires instagram_business_manage_messages permission"},
			igv1.ReasonPermissionDenied, "200"),
		Entry("bad request", fake.Fault{Code: 100, Subcode: 2018001, Message: "No matching user found"},
			igv1.ReasonBadRequest, "No matching user found"),
	)

	It("stops the channel at once when Instagram refuses its token on a send, and sends nothing more", func() {
		e.ig.FailNext(fake.EndpointSend, 1, fake.Fault{Code: 190, Subcode: 460, Message: "Error validating access token: password changed"})
		m := e.outgoing("refused token")

		e.reconcile(m.Name)

		ch := &igv1.InstagramChannel{}
		Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: e.channel}, ch)).To(Succeed())
		for _, c := range []struct {
			typ    string
			status metav1.ConditionStatus
		}{
			{igv1.ConditionAuthorized, metav1.ConditionFalse},
			{igv1.ConditionReady, metav1.ConditionFalse},
			{igv1.ConditionStalled, metav1.ConditionTrue},
		} {
			cond := meta.FindStatusCondition(ch.Status.Conditions, c.typ)
			Expect(cond).NotTo(BeNil(), c.typ)
			Expect(cond.Status).To(Equal(c.status), c.typ)
			Expect(cond.Reason).To(Equal(igv1.ReasonTokenInvalid), c.typ)
			Expect(cond.ObservedGeneration).To(Equal(ch.Generation), "%s closes the channel's token gate", c.typ)
		}
		Expect(meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionAuthorized).Message).To(ContainSubstring("460"))
		Expect(kstatusOf(ch)).To(Equal(status.FailedStatus))
		Expect(e.drainEvents()).To(ContainElement(HavePrefix("Warning " + igv1.EventReauthorizationRequired)))

		By("the refused message waits for a new login instead of failing; nothing was sent")
		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhasePending))
		Expect(got.Status.Error).NotTo(BeNil())
		Expect(got.Status.Error.Code).To(Equal(int32(190)))

		By("the next pending message makes no call")
		next := e.outgoing("after the refusal")
		e.reconcile(next.Name)
		Expect(e.get(next.Name).Status.Reason).To(Equal(igv1.ReasonChannelNotReady))
		Expect(e.get(next.Name).Status.Message).To(ContainSubstring(igv1.ReasonTokenInvalid))
		e.clock.Step(time.Minute)
		e.reconcile(m.Name)
		Expect(e.get(m.Name).Status.Reason).To(Equal(igv1.ReasonChannelNotReady))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))

		By("a new token lets both go out")
		e.setChannelReady(e.channel, true, igv1.ReasonReady, "logged in again")
		e.rotateToken()
		e.reconcile(m.Name)
		e.reconcile(next.Name)
		Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(e.get(next.Name).Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(e.ig.Sent()).To(HaveLen(2))
	})

	It("does not stop the channel when the refused token is no longer the channel's", func() {
		e.ig.FailNext(fake.EndpointSend, 1, fake.Fault{Code: 190, Subcode: 463, Message: "Session has expired"})
		m := e.outgoing("old token")
		// The channel refreshes its token while the send is under way.
		e.r.Instagram = hookedClients{InstagramClients: e.clients, beforeReserve: e.rotateToken}

		e.reconcile(m.Name)

		ch := &igv1.InstagramChannel{}
		Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: e.channel}, ch)).To(Succeed())
		Expect(meta.IsStatusConditionTrue(ch.Status.Conditions, igv1.ConditionReady)).To(BeTrue())
		Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhasePending), "retried with the new token later")
	})

	It("fails with UserUnavailable when Instagram refuses the recipient", func() {
		e.ig.AddCustomer(fake.Customer{IGSID: msgTestContact, Unavailable: true})
		m := e.outgoing("hello")
		e.reconcile(m.Name)
		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonUserUnavailable))
		Expect(got.Status.Error.Code).To(Equal(int32(551)))
		Expect(e.ig.Sent()).To(BeEmpty())
	})

	It("reports DeliveryUnknown and never resends when the connection drops after the request", func() {
		before := sentCount(sendResultDeliveryUnknown)
		// Instagram accepts the message, then the answer is lost.
		e.ig.FailNext(fake.EndpointSend, 1, fake.Fault{AfterProcessing: true, DropConnection: true})
		m := e.outgoing("did this go out?")

		Expect(e.reconcile(m.Name)).To(Equal(ctrl.Result{}))

		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonDeliveryUnknown))
		Expect(got.Status.Message).To(ContainSubstring("not retried automatically"))
		expectMessageCondition(got, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonDeliveryUnknown)
		Expect(sentCount(sendResultDeliveryUnknown) - before).To(Equal(1.0))

		for range 3 {
			e.clock.Step(10 * time.Minute)
			e.reconcile(m.Name)
		}
		Expect(e.ig.Sent()).To(HaveLen(1), "Instagram got the message exactly once")
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))
		Expect(e.get(m.Name).Status.Reason).To(Equal(igv1.ReasonDeliveryUnknown))
	})

	DescribeTable("reports DeliveryUnknown and never resends when Instagram's error does not prove a refusal",
		func(f fake.Fault) {
			// Instagram queued the message, then answered with an error:
			// a retry would deliver it twice.
			f.AfterProcessing = true
			e.ig.FailNext(fake.EndpointSend, 1, f)
			m := e.outgoing("did this go out?")

			Expect(e.reconcile(m.Name)).To(Equal(ctrl.Result{}))

			got := e.get(m.Name)
			Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
			Expect(got.Status.Reason).To(Equal(igv1.ReasonDeliveryUnknown))
			Expect(got.Status.Error).NotTo(BeNil(), "Instagram's error body is kept")
			Expect(got.Status.Error.Code).To(Equal(int32(f.Code)))
			for range 3 {
				e.clock.Step(10 * time.Minute)
				e.reconcile(m.Name)
			}
			Expect(e.ig.Sent()).To(HaveLen(1), "Instagram got the message exactly once")
			Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))
		},
		Entry("HTTP 500 with a Graph error body", fake.Fault{HTTPStatus: 500, Code: 100, Message: "Invalid parameter"}),
		Entry("HTTP 500 with code 2, is_transient", fake.Fault{HTTPStatus: 500, Code: 2, IsTransient: true, Message: "Service temporarily unavailable"}),
		Entry("HTTP 400 with code 1", fake.Fault{Code: 1, Message: "An unknown error occurred"}),
		Entry("HTTP 400 flagged is_transient", fake.Fault{Code: 100, IsTransient: true, Message: "Please retry"}),
	)

	It("marks a message found in Sending DeliveryUnknown without sending", func() {
		m := e.outgoing("interrupted")
		// A previous manager persisted Sending and died before the outcome.
		e.setPhase(m.Name, igv1.PhaseSending)

		Expect(e.reconcile(m.Name)).To(Equal(ctrl.Result{}))

		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonDeliveryUnknown))
		Expect(got.Labels[igv1.LabelDone]).To(Equal("true"))
		e.reconcile(m.Name)
		Expect(e.ig.CallCount(fake.EndpointSend)).To(BeZero())
	})

	It("leaves a message alone while another manager's send lease runs, and only then reports DeliveryUnknown", func() {
		m := e.outgoing("in flight elsewhere")
		lease := &igv1.SendLease{Holder: "previous-leader", ExpiresAt: metav1.NewTime(e.clock.Now().Add(time.Minute))}
		e.setSending(m.Name, lease)
		writes := e.writes.Load()

		res := e.reconcile(m.Name)
		Expect(res.RequeueAfter).To(BeNumerically("~", time.Minute, time.Second))
		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseSending))
		Expect(got.Status.SendLease.Holder).To(Equal(lease.Holder))
		Expect(got.Status.SendLease.ExpiresAt.Time).To(BeTemporally("==", lease.ExpiresAt.Time))
		Expect(e.writes.Load()).To(Equal(writes), "no write while the lease runs")

		e.clock.Step(59 * time.Second)
		e.reconcile(m.Name)
		Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhaseSending))

		e.clock.Step(time.Second)
		e.reconcile(m.Name)
		got = e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonDeliveryUnknown))
		Expect(got.Status.SendLease).To(BeNil())
		Expect(e.ig.CallCount(fake.EndpointSend)).To(BeZero())
	})

	It("does not overwrite what another manager recorded after its lease ran out", func() {
		m := e.outgoing("late answer")
		// This reconciler's lease, expired; another manager has declared
		// the send interrupted meanwhile.
		e.setSending(m.Name, &igv1.SendLease{Holder: e.r.holder(), ExpiresAt: metav1.NewTime(e.clock.Now())})
		stale := e.get(m.Name)
		e.reconcileWith(e.newReconciler(), m.Name)
		Expect(e.get(m.Name).Status.Reason).To(Equal(igv1.ReasonDeliveryUnknown))
		e.drainEvents()

		Expect(e.r.record(e.ctx, stale, sentStatus("mid-late", e.clock.Now()))).To(Equal(ctrl.Result{}))

		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonDeliveryUnknown))
		Expect(got.Status.MessageID).To(BeEmpty())
		Expect(e.drainEvents()).To(ContainElement(And(HavePrefix("Warning "+igv1.ReasonSendLeaseLost), ContainSubstring("mid-late"))))
	})

	It("leaves the message Pending when stopped while waiting for the rate limit", func() {
		// A bucket of one call, refilled every ~17 minutes, used up.
		limited := instagram.NewClients(instagram.Config{
			GraphURL: e.igURL, APIURL: e.igURL, OAuthURL: e.igURL, RatePerSecond: 0.001, Burst: 1, Clock: e.clock,
		})
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		e.r.Instagram = limited
		first := e.outgoing("takes the only call")
		e.reconcile(first.Name)
		Expect(e.get(first.Name).Status.Phase).To(Equal(igv1.PhaseSent))

		// The manager shuts down as the send starts waiting for its turn.
		e.r.Instagram = hookedClients{InstagramClients: limited, beforeReserve: cancel}
		m := e.outgoing("waits for the rate limit")
		_, err := e.r.Reconcile(ctx, e.request(m.Name))
		Expect(err).NotTo(HaveOccurred())

		got := e.get(m.Name)
		Expect(got.Status.Phase).To(BeElementOf(igv1.Phase(""), igv1.PhasePending))
		Expect(got.Status.SendLease).To(BeNil())
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))
	})

	It("writes an outcome it knows but failed to record instead of DeliveryUnknown", func() {
		m := e.outgoing("known outcome")
		e.setSending(m.Name, &igv1.SendLease{Holder: e.r.holder(), ExpiresAt: metav1.NewTime(e.clock.Now().Add(time.Minute))})
		got := e.get(m.Name)
		// As left by record() when the API server was unreachable.
		e.r.unpersisted.Store(got.UID, sentStatus("mid-known", e.clock.Now()))

		e.reconcile(m.Name)

		got = e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(got.Status.MessageID).To(Equal("mid-known"))
		Expect(got.Labels[igv1.LabelMID]).To(Equal(names.MIDHash("mid-known")))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(BeZero())
	})

	It("sends once when two reconcilers race on the same message", func() {
		// Two managers, each with its own client and no shared cache.
		other := e.newReconciler()
		for i := range 5 {
			m := e.outgoing("race")
			var wg sync.WaitGroup
			results := make([]ctrl.Result, 2)
			for j, r := range []*InstagramMessageReconciler{e.r, other} {
				wg.Go(func() {
					defer GinkgoRecover()
					res, err := r.Reconcile(e.ctx, e.request(m.Name))
					Expect(err).NotTo(HaveOccurred())
					results[j] = res
				})
			}
			wg.Wait()
			Expect(e.ig.Sent()).To(HaveLen(i+1), "exactly one send per message")
			got := e.get(m.Name)
			Expect(got.Status.Phase).To(Equal(igv1.PhaseSent))
			Expect(got.Status.MessageID).To(Equal(e.ig.Sent()[i].MID))
		}
	})

	It("does not send again when a reconcile decides on a stale copy", func() {
		m := e.outgoing("stale cache")
		stale := e.get(m.Name) // Pending, without the labels the manager adds
		e.reconcile(m.Name)
		Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhaseSent))

		// A reconciler whose cache has not seen the send yet.
		lagging := e.newReconciler()
		lagging.Client = interceptor.NewClient(lagging.Client.(client.WithWatch), interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if msg, ok := obj.(*igv1.InstagramMessage); ok && key.Name == m.Name {
					stale.DeepCopyInto(msg)
					return nil
				}
				return c.Get(ctx, key, obj, opts...)
			},
		})
		for range 3 {
			_, err := lagging.Reconcile(e.ctx, e.request(m.Name))
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(e.ig.Sent()).To(HaveLen(1))
		Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhaseSent))
	})

	It("retries a refused connection with backoff and sends once", func() {
		before := sentCount(sendResultRetried)
		e.refuse.n.Store(1)
		m := e.outgoing("retry me")

		res := e.reconcile(m.Name)
		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhasePending))
		Expect(got.Status.Attempts).To(Equal(int32(1)))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonInstagramError))
		Expect(got.Status.NextAttemptAt).NotTo(BeNil())
		Expect(got.Status.NextAttemptAt.Time).To(BeTemporally("==", e.clock.Now().Add(DefaultMessageRetryBaseDelay)))
		Expect(res.RequeueAfter).To(Equal(DefaultMessageRetryBaseDelay))
		expectMessageCondition(got, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonInstagramError)
		Expect(messageKstatus(got)).To(Equal(status.InProgressStatus))
		Expect(sentCount(sendResultRetried) - before).To(Equal(1.0))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(BeZero(), "the refused request never reached Instagram")

		By("an early reconcile keeps the persisted backoff")
		e.clock.Step(2 * time.Second)
		writes := e.writes.Load()
		Expect(e.reconcile(m.Name).RequeueAfter).To(Equal(3 * time.Second))
		Expect(e.writes.Load()).To(Equal(writes))
		Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhasePending))

		By("after the backoff it is sent, once")
		e.clock.Step(3 * time.Second)
		e.reconcile(m.Name)
		got = e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(got.Status.Attempts).To(Equal(int32(1)))
		Expect(got.Status.NextAttemptAt).To(BeNil())
		Expect(e.ig.Sent()).To(HaveLen(1))
	})

	It("honours Instagram's rate limit and sends once afterwards", func() {
		e.ig.FailNext(fake.EndpointSend, 1, fake.Fault{Code: 4, Message: "(#4) Application request limit reached", RetryAfter: "120"})
		m := e.outgoing("rate limited")

		res := e.reconcile(m.Name)
		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhasePending))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonRateLimited))
		Expect(got.Status.Error.Code).To(Equal(int32(4)))
		Expect(got.Status.NextAttemptAt.Time).To(BeTemporally("==", e.clock.Now().Add(2*time.Minute)))
		Expect(res.RequeueAfter).To(Equal(2 * time.Minute))

		e.clock.Step(time.Minute)
		e.reconcile(m.Name)
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))

		e.clock.Step(time.Minute)
		e.reconcile(m.Name)
		got = e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(got.Status.Error).To(BeNil())
		Expect(e.ig.Sent()).To(HaveLen(1))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(2))
	})

	It("waits while the channel is not Ready and sends once it recovers", func() {
		e.setChannelReady(e.channel, false, igv1.ReasonTokenInvalid, "code 190/460: password changed")
		m := e.outgoing("waiting")

		res := e.reconcile(m.Name)
		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhasePending))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonChannelNotReady))
		Expect(got.Status.Message).To(ContainSubstring("TokenInvalid"))
		Expect(got.Status.Message).To(ContainSubstring(e.channel))
		expectMessageCondition(got, igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonChannelNotReady)
		expectMessageCondition(got, igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonChannelNotReady)
		Expect(messageKstatus(got)).To(Equal(status.InProgressStatus))
		Expect(got.Labels[igv1.LabelChannel]).To(Equal(e.channel), "labelled while it waits, so the channel watch finds it")
		Expect(res.RequeueAfter).To(BeNumerically("~", DefaultMessageMaxPendingAge, 5*time.Second))

		By("a second reconcile writes nothing")
		writes := e.writes.Load()
		e.reconcile(m.Name)
		Expect(e.writes.Load()).To(Equal(writes))

		By("the channel watch maps the channel to its waiting message")
		ch := &igv1.InstagramChannel{}
		Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: e.channel}, ch)).To(Succeed())
		Expect(e.r.messagesForChannel(e.ctx, ch)).To(ConsistOf(e.request(m.Name)))

		e.setChannelReady(e.channel, true, igv1.ReasonReady, "connected")
		e.reconcile(m.Name)
		e.reconcile(m.Name)
		Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(e.ig.Sent()).To(HaveLen(1))
		Expect(e.r.messagesForChannel(e.ctx, ch)).To(BeEmpty())
	})

	It("waits for a missing or suspended channel", func() {
		m := e.outgoing("to nowhere", func(m *igv1.InstagramMessage) { m.Spec.ChannelRef.Name = "missing" })
		e.reconcile(m.Name)
		got := e.get(m.Name)
		Expect(got.Status.Reason).To(Equal(igv1.ReasonChannelNotReady))
		Expect(got.Status.Message).To(ContainSubstring(`channel "missing" not found`))

		ch := &igv1.InstagramChannel{}
		Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: e.channel}, ch)).To(Succeed())
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Spec.Suspend = true
		Expect(k8sClient.Patch(e.ctx, ch, patch)).To(Succeed())
		s := e.outgoing("suspended")
		e.reconcile(s.Name)
		Expect(e.get(s.Name).Status.Message).To(ContainSubstring("suspended"))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(BeZero())
	})

	It("fails with Expired once it waited longer than the maximum age", func() {
		before := sentCount(sendResultFailed(igv1.ReasonExpired))
		e.setChannelReady(e.channel, false, igv1.ReasonRateLimited, "rate limited by Instagram")
		m := e.outgoing("too late")
		e.reconcile(m.Name)
		Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhasePending))

		created := e.get(m.Name).CreationTimestamp.Time
		e.clock.SetTime(created.Add(DefaultMessageMaxPendingAge - time.Second))
		e.reconcile(m.Name)
		Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhasePending))

		e.clock.SetTime(created.Add(DefaultMessageMaxPendingAge))
		e.setChannelReady(e.channel, true, igv1.ReasonReady, "connected")
		e.reconcile(m.Name)
		got := e.get(m.Name)
		Expect(got.Status.Phase).To(Equal(igv1.PhaseFailed))
		Expect(got.Status.Reason).To(Equal(igv1.ReasonExpired))
		Expect(got.Status.Message).To(ContainSubstring("RateLimited"), "says what it was waiting for")
		expectMessageCondition(got, igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonExpired)
		Expect(got.Labels[igv1.LabelDone]).To(Equal("true"))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(BeZero())
		Expect(sentCount(sendResultFailed(igv1.ReasonExpired)) - before).To(Equal(1.0))
	})

	Context("echo of the own send", func() {
		It("removes an echo the receiver stored before the send's answer", func() {
			var echoKept bool
			e.r.Instagram = hookedClients{InstagramClients: e.clients, afterSend: func(mid string) {
				defer GinkgoRecover()
				echoKept = e.receiverEcho(mid)
			}}
			m := e.outgoing("echo first")
			e.reconcile(m.Name)

			Expect(echoKept).To(BeTrue(), "the receiver could not know yet that the mid is ours")
			mid := e.get(m.Name).Status.MessageID
			Expect(e.messagesWithMID(mid)).To(ConsistOf(m.Name))
		})

		It("keeps one object when the echo arrives after the send was recorded", func() {
			m := e.outgoing("echo later")
			e.reconcile(m.Name)
			mid := e.get(m.Name).Status.MessageID

			Expect(e.receiverEcho(mid)).To(BeFalse(), "the receiver finds the outgoing message by its mid label")
			Expect(e.messagesWithMID(mid)).To(ConsistOf(m.Name))
		})

		It("tolerates the echo being gone already", func() {
			m := e.outgoing("no echo")
			e.reconcile(m.Name)
			echo := &igv1.InstagramMessage{}
			err := k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns,
				Name: names.IncomingMessageName(e.channel, e.get(m.Name).Status.MessageID)}, echo)
			Expect(apierrors.IsNotFound(err)).To(BeTrue())
		})
	})

	It("leaves incoming messages and receiver phases alone", func() {
		in := e.outgoing("", func(m *igv1.InstagramMessage) {
			m.Spec.Direction = igv1.DirectionIncoming
			m.Spec.Text = "from the customer"
		})
		writes := e.writes.Load()
		Expect(e.reconcile(in.Name)).To(Equal(ctrl.Result{}))
		Expect(e.writes.Load()).To(Equal(writes))
		Expect(e.get(in.Name).Status.Phase).To(BeEmpty())

		res, err := e.r.Reconcile(e.ctx, e.request("does-not-exist"))
		Expect(err).NotTo(HaveOccurred())
		Expect(res).To(Equal(ctrl.Result{}))
	})
})
