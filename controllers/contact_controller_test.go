package controllers

import (
	"encoding/json"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
)

// contactEnv adds contacts and a contact reconciler to a messageEnv: the
// same channel, fake Instagram and fake clock serve profile lookups and
// sends.
type contactEnv struct {
	*messageEnv
	cr *InstagramContactReconciler
}

func newContactEnv() *contactEnv {
	GinkgoHelper()
	e := &contactEnv{messageEnv: newMessageEnv()}
	base, err := client.New(cfg, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
	e.cr = &InstagramContactReconciler{
		Client: base, APIReader: base, Clock: e.clock, Instagram: e.clients,
		// No client-side wait in these specs; the limiter has its own.
		Options: ContactOptions{ProfileRatePerSecond: 1000, ProfileBurst: 1000},
	}
	e.cr.targets = &InstagramMessageReconciler{Client: base, APIReader: base, Instagram: e.clients, Clock: e.clock}
	return e
}

// recordContact writes a contact as the receiver does for a customer whose
// message at openedAt opened the window (zero: no opening event).
func (e *contactEnv) recordContact(igsid string, openedAt time.Time) *igv1.InstagramContact {
	GinkgoHelper()
	ch := &igv1.InstagramChannel{}
	Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: e.channel}, ch)).To(Succeed())
	c := &igv1.InstagramContact{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: e.ns, Name: names.ContactName(e.channel, igsid),
			Labels: map[string]string{igv1.LabelChannel: e.channel, igv1.LabelContact: igsid},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: igv1.GroupVersion.String(), Kind: "InstagramChannel",
				Name: ch.Name, UID: ch.UID, Controller: ptr.To(true)}},
		},
		Spec: igv1.ContactSpec{ChannelRef: igv1.ChannelReference{Name: e.channel}, ContactID: igsid},
	}
	Expect(k8sClient.Create(e.ctx, c)).To(Succeed())
	if !openedAt.IsZero() {
		e.customerWrote(c.Name, openedAt)
	}
	return e.contact(c.Name)
}

// customerWrote records a customer message at t as the receiver does.
func (e *contactEnv) customerWrote(name string, t time.Time) {
	GinkgoHelper()
	c := e.contact(name)
	patch := client.MergeFrom(c.DeepCopy())
	at := metav1.NewMicroTime(t)
	c.Status.LastMessageAt, c.Status.Window.OpenedAt = &at, &at
	if c.Status.FirstMessageAt == nil {
		c.Status.FirstMessageAt = &at
	}
	Expect(k8sClient.Status().Patch(e.ctx, c, patch)).To(Succeed())
}

func (e *contactEnv) contact(name string) *igv1.InstagramContact {
	GinkgoHelper()
	c := &igv1.InstagramContact{}
	Expect(k8sClient.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: name}, c)).To(Succeed())
	return c
}

func (e *contactEnv) reconcileContact(name string) ctrl.Result {
	GinkgoHelper()
	res, err := e.cr.Reconcile(e.ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: e.ns, Name: name}})
	Expect(err).NotTo(HaveOccurred())
	return res
}

func contactKstatus(c *igv1.InstagramContact) status.Status {
	GinkgoHelper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c)
	Expect(err).NotTo(HaveOccurred())
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	Expect(err).NotTo(HaveOccurred())
	return res.Status
}

var _ = Describe("InstagramContact", func() {
	var e *contactEnv
	BeforeEach(func() { e = newContactEnv() })

	It("fills a new contact's profile once, and again only when the picture URL is about to expire", func() {
		e.ig.AddCustomer(fake.Customer{IGSID: "5510000000000001", Name: "Ann Customer", Username: "ann.customer",
			ProfilePic:    "https://scontent.cdninstagram.com/ann.jpg?oe=" + hexUnix(e.clock.Now().Add(48*time.Hour)),
			FollowerCount: 120, IsUserFollowBusiness: true, IsVerifiedUser: true})
		c := e.recordContact("5510000000000001", e.clock.Now().Add(-time.Minute))
		before := testutil.ToFloat64(profileFetchesTotal.WithLabelValues("success"))

		res := e.reconcileContact(c.Name)
		c = e.contact(c.Name)
		p := c.Status.Profile
		Expect(p.Name).To(Equal("Ann Customer"))
		Expect(p.Username).To(Equal("ann.customer"))
		Expect(p.FollowerCount).To(Equal(ptr.To(int64(120))))
		Expect(p.FollowsBusiness).To(Equal(ptr.To(true)))
		Expect(p.FollowedByBusiness).To(Equal(ptr.To(false)))
		Expect(p.Verified).To(Equal(ptr.To(true)))
		Expect(p.ProfilePictureExpiresAt.Time).To(BeTemporally("==", e.clock.Now().Add(48*time.Hour)))
		Expect(meta.IsStatusConditionTrue(c.Status.Conditions, igv1.ConditionReady)).To(BeTrue())
		Expect(c.Status.ObservedGeneration).To(Equal(c.Generation))
		Expect(contactKstatus(c)).To(Equal(status.CurrentStatus))
		Expect(c.Status.Window.State).To(Equal(igv1.WindowOpen))
		Expect(c.Labels).To(HaveKeyWithValue(igv1.LabelWindow, igv1.WindowLabelOpen))
		Expect(e.ig.CallCount(fake.EndpointProfile)).To(Equal(1))
		Expect(testutil.ToFloat64(profileFetchesTotal.WithLabelValues("success")) - before).To(Equal(1.0))
		// The next look is when the window closes (before the picture's
		// refresh 42 h away).
		Expect(res.RequeueAfter).To(BeNumerically("~", 24*time.Hour-time.Minute, time.Second))

		// Steady state: nothing due, no call, no write.
		writes := e.writes.Load()
		rv := e.contact(c.Name).ResourceVersion
		e.reconcileContact(c.Name)
		Expect(e.ig.CallCount(fake.EndpointProfile)).To(Equal(1))
		Expect(e.contact(c.Name).ResourceVersion).To(Equal(rv))
		Expect(e.writes.Load()).To(Equal(writes))

		// 6 hours before the picture expires, it is fetched again.
		e.clock.Step(42*time.Hour - time.Minute)
		e.reconcileContact(c.Name)
		Expect(e.ig.CallCount(fake.EndpointProfile)).To(Equal(1))
		e.clock.Step(2 * time.Minute)
		e.reconcileContact(c.Name)
		Expect(e.ig.CallCount(fake.EndpointProfile)).To(Equal(2))
		// Meanwhile the 24-hour window closed; HUMAN_AGENT is still open.
		c = e.contact(c.Name)
		Expect(c.Status.Window.State).To(Equal(igv1.WindowHumanAgent))
		Expect(c.Labels).To(HaveKeyWithValue(igv1.LabelWindow, igv1.WindowLabelHumanAgent))
	})

	It("fetches again on request (requestedAt) and echoes the request", func() {
		c := e.recordContact(msgTestContact, e.clock.Now())
		e.reconcileContact(c.Name)
		Expect(e.ig.CallCount(fake.EndpointProfile)).To(Equal(1))
		c = e.contact(c.Name)
		patch := client.MergeFrom(c.DeepCopy())
		c.Annotations = map[string]string{igv1.AnnotationRequestedAt: "2026-12-01T10:00:00Z"}
		Expect(k8sClient.Patch(e.ctx, c, patch)).To(Succeed())
		e.reconcileContact(c.Name)
		e.reconcileContact(c.Name)
		Expect(e.ig.CallCount(fake.EndpointProfile)).To(Equal(2))
		Expect(e.contact(c.Name).Status.LastHandledReconcileAt).To(Equal("2026-12-01T10:00:00Z"))
	})

	It("reports a missing consent (230) as a reason, not a retry, until the customer writes", func() {
		e.ig.AddCustomer(fake.Customer{IGSID: "5510000000000002", NoConsent: true})
		c := e.recordContact("5510000000000002", e.clock.Now().Add(-time.Hour))
		res := e.reconcileContact(c.Name)
		c = e.contact(c.Name)
		cond := meta.FindStatusCondition(c.Status.Conditions, igv1.ConditionProfileAvailable)
		Expect(cond).NotTo(BeNil())
		Expect(cond.Reason).To(Equal(igv1.ReasonConsentRequired))
		Expect(cond.Message).To(ContainSubstring("code 230"))
		Expect(meta.IsStatusConditionTrue(c.Status.Conditions, igv1.ConditionStalled)).To(BeTrue())
		Expect(c.Labels).To(HaveKeyWithValue(igv1.LabelProfile, igv1.ProfileLabelConsentRequired))
		Expect(c.Status.Profile.Name).To(BeEmpty())
		// Only the window timer is set; no retry of the lookup.
		Expect(res.RequeueAfter).To(BeNumerically("~", 23*time.Hour, time.Second))
		e.clock.Step(time.Hour)
		e.reconcileContact(c.Name)
		Expect(e.ig.CallCount(fake.EndpointProfile)).To(Equal(1))

		// The customer writes (consent given): the next look fetches it.
		e.ig.AddCustomer(fake.Customer{IGSID: "5510000000000002", Name: "Bo", Username: "bo"})
		e.customerWrote(c.Name, e.clock.Now())
		e.reconcileContact(c.Name)
		Expect(e.ig.CallCount(fake.EndpointProfile)).To(Equal(2))
		c = e.contact(c.Name)
		Expect(c.Status.Profile.Username).To(Equal("bo"))
		Expect(c.Labels).NotTo(HaveKey(igv1.LabelProfile))
		Expect(meta.IsStatusConditionTrue(c.Status.Conditions, igv1.ConditionReady)).To(BeTrue())
		Expect(meta.FindStatusCondition(c.Status.Conditions, igv1.ConditionStalled)).To(BeNil())
	})

	It("reports a blocked or deleted customer as ProfileUnavailable", func() {
		e.ig.AddCustomer(fake.Customer{IGSID: "5510000000000003", Blocked: true})
		c := e.recordContact("5510000000000003", e.clock.Now())
		e.reconcileContact(c.Name)
		c = e.contact(c.Name)
		Expect(meta.FindStatusCondition(c.Status.Conditions, igv1.ConditionProfileAvailable).Reason).To(Equal(igv1.ReasonProfileUnavailable))
		Expect(c.Labels).To(HaveKeyWithValue(igv1.LabelProfile, igv1.ProfileLabelUnavailable))
		e.reconcileContact(c.Name)
		Expect(e.ig.CallCount(fake.EndpointProfile)).To(Equal(1))
	})

	It("never puts the token in a contact", func() {
		c := e.recordContact(msgTestContact, e.clock.Now())
		e.ig.FailNext(fake.EndpointProfile, 1, fake.Fault{Code: 190, Message: "Invalid OAuth access token " + e.token})
		_, err := e.cr.Reconcile(e.ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(c)})
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).NotTo(ContainSubstring(e.token))
		raw, err := json.Marshal(e.contact(c.Name))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).NotTo(ContainSubstring(e.token))
	})

	It("refuses a send after the windows closed without calling Instagram, and says whether HUMAN_AGENT helps", func() {
		c := e.recordContact(msgTestContact, e.clock.Now().Add(-25*time.Hour))
		e.reconcileContact(c.Name)
		before := testutil.ToFloat64(messagesRefusedTotal.WithLabelValues(refusedStandard))

		m := e.outgoing("still there?")
		e.reconcile(m.Name)
		m = e.get(m.Name)
		Expect(m.Status.Phase).To(Equal(igv1.PhaseFailed))
		Expect(m.Status.Reason).To(Equal(igv1.ReasonOutsideWindow))
		Expect(m.Status.Message).To(ContainSubstring("the 24-hour window closed at"))
		Expect(m.Status.Message).To(ContainSubstring("HUMAN_AGENT would help"))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(0))
		Expect(testutil.ToFloat64(messagesRefusedTotal.WithLabelValues(refusedStandard)) - before).To(Equal(1.0))

		// Tagged, inside 7 days: it goes out.
		tagged := e.outgoing("a human here", func(m *igv1.InstagramMessage) { m.Spec.Tag = igv1.TagHumanAgent })
		e.reconcile(tagged.Name)
		Expect(e.get(tagged.Name).Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))

		// After 7 days even HUMAN_AGENT is refused, without a call.
		const quiet = "5510000000000009"
		e.recordContact(quiet, e.clock.Now().Add(-8*24*time.Hour))
		toQuiet := func(m *igv1.InstagramMessage) { m.Spec.ContactID = quiet }
		late := e.outgoing("late", toQuiet, func(m *igv1.InstagramMessage) { m.Spec.Tag = igv1.TagHumanAgent })
		e.reconcile(late.Name)
		late = e.get(late.Name)
		Expect(late.Status.Reason).To(Equal(igv1.ReasonOutsideWindow))
		Expect(late.Status.Message).To(ContainSubstring("the 7-day HUMAN_AGENT window closed at"))
		plain := e.outgoing("late", toQuiet)
		e.reconcile(plain.Name)
		Expect(e.get(plain.Name).Status.Message).To(ContainSubstring("HUMAN_AGENT would not help"))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))

		// Opting out lets Instagram decide.
		optOut := e.outgoing("try anyway", func(m *igv1.InstagramMessage) { m.Spec.SkipWindowCheck = true })
		e.reconcile(optOut.Name)
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(2))
	})

	It("sends inside the window, and to a contact with no recorded history", func() {
		c := e.recordContact(msgTestContact, e.clock.Now().Add(-time.Hour))
		e.reconcileContact(c.Name)
		m := e.outgoing("hello")
		e.reconcile(m.Name)
		Expect(e.get(m.Name).Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))

		Expect(k8sClient.Delete(e.ctx, c)).To(Succeed())
		unknown := e.outgoing("no record")
		e.reconcile(unknown.Name)
		Expect(e.get(unknown.Name).Status.Phase).To(Equal(igv1.PhaseSent))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(2))
	})

	It("lets Instagram's 2534022 close a window the record thought open", func() {
		c := e.recordContact(msgTestContact, e.clock.Now().Add(-time.Hour))
		e.reconcileContact(c.Name)
		before := testutil.ToFloat64(windowCorrectionsTotal.WithLabelValues(correctionRefusedWhileOpen))
		e.ig.FailNext(fake.EndpointSend, 1, fake.Fault{Code: 10, Subcode: 2534022, HTTPStatus: 403, Type: "IGApiException",
			Message: "(#10) This message is sent outside of allowed window."})
		m := e.outgoing("hello")
		e.reconcile(m.Name)
		Expect(e.get(m.Name).Status.Reason).To(Equal(igv1.ReasonOutsideWindow))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))
		Expect(testutil.ToFloat64(windowCorrectionsTotal.WithLabelValues(correctionRefusedWhileOpen)) - before).To(Equal(1.0))

		c = e.contact(c.Name)
		Expect(c.Status.Window.RefusedAt).NotTo(BeNil())
		Expect(c.Status.Window.State).To(Equal(igv1.WindowHumanAgent))
		Expect(c.Labels).To(HaveKeyWithValue(igv1.LabelWindow, igv1.WindowLabelHumanAgent))

		// The next plain send is refused at once.
		again := e.outgoing("hello again")
		e.reconcile(again.Name)
		Expect(e.get(again.Name).Status.Message).To(ContainSubstring("Instagram refused a send at"))
		Expect(e.ig.CallCount(fake.EndpointSend)).To(Equal(1))

		// The customer writes again: the window is open again.
		e.clock.Step(time.Minute)
		e.customerWrote(c.Name, e.clock.Now())
		e.reconcileContact(c.Name)
		Expect(e.contact(c.Name).Status.Window.State).To(Equal(igv1.WindowOpen))
	})

	It("removes a contact once no message and no open window is left", func() {
		c := e.recordContact(msgTestContact, e.clock.Now().Add(-8*24*time.Hour))
		m := e.outgoing("kept")
		// Refused (the window is closed) and labelled with its contact.
		e.reconcile(m.Name)
		Expect(e.get(m.Name).Status.Reason).To(Equal(igv1.ReasonOutsideWindow))
		// Just created: kept for a week whatever it records, so a contact
		// the receiver has not filled in yet is never taken for a closed one.
		res := e.reconcileContact(c.Name)
		Expect(e.contact(c.Name).Status.Window.State).To(Equal(igv1.WindowClosed))
		Expect(res.RequeueAfter).To(BeNumerically("~", 7*24*time.Hour, time.Minute))
		e.clock.Step(7*24*time.Hour + time.Minute)
		// A message is left: looked at again once retention removed it.
		Expect(e.reconcileContact(c.Name).RequeueAfter).To(BeNumerically(">", 0))
		Expect(e.contact(c.Name).DeletionTimestamp).To(BeNil())
		Expect(k8sClient.Delete(e.ctx, m)).To(Succeed())
		e.reconcileContact(c.Name)
		err := k8sClient.Get(e.ctx, client.ObjectKeyFromObject(c), &igv1.InstagramContact{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "contact still there: %v", err)
	})
})

func hexUnix(t time.Time) string { return strconv.FormatInt(t.Unix(), 16) }
