package controllers

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

var _ = Describe("App controller", func() {
	var (
		ns   string
		opNS string // the operator's namespace: where credentials are published
		r    *AppReconciler
	)
	BeforeEach(func() {
		ns = newTestNamespace(suiteCtx, "igapp-")
		opNS = newTestNamespace(suiteCtx, "igop-")
		r = &AppReconciler{Client: k8sClient, APIReader: k8sClient, PublicURL: "https://hooks.shop.test/", ClusterResourceNamespace: opNS}
	})

	reconcile := func(name string) ctrl.Result {
		GinkgoHelper()
		res, err := r.Reconcile(suiteCtx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
		Expect(err).NotTo(HaveOccurred())
		return res
	}
	get := func(name string) *igv1.InstagramApp {
		GinkgoHelper()
		app := &igv1.InstagramApp{}
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: ns, Name: name}, app)).To(Succeed())
		return app
	}
	createApp := func(name, secret string) {
		GinkgoHelper()
		Expect(k8sClient.Create(suiteCtx, &igv1.InstagramApp{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       igv1.AppSpec{AppID: "123", SecretRef: igv1.LocalObjectReference{Name: secret}},
		})).To(Succeed())
	}
	createSecret := func(name string, data map[string]string) {
		GinkgoHelper()
		Expect(k8sClient.Create(suiteCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data})).To(Succeed())
	}
	expectReady := func(app *igv1.InstagramApp, status metav1.ConditionStatus, reason string) {
		GinkgoHelper()
		c := meta.FindStatusCondition(app.Status.Conditions, igv1.ConditionReady)
		Expect(c).NotTo(BeNil())
		Expect(c.Status).To(Equal(status))
		Expect(c.Reason).To(Equal(reason))
		Expect(c.ObservedGeneration).To(Equal(app.Generation))
		Expect(app.Status.ObservedGeneration).To(Equal(app.Generation))
	}

	published := func(name string) (*corev1.Secret, error) {
		s := &corev1.Secret{}
		err := k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: opNS, Name: names.AppCredentialsSecretName(igv1.KindInstagramApp, ns, name)}, s)
		return s, err
	}

	It("is Ready with both keys, publishes its own webhook URL and the receiver's copy of its credentials", func() {
		createSecret("creds", map[string]string{"appSecret": "s3cr3t", "verifyToken": "v", "unrelated": "not-for-the-receiver"})
		createApp("acme", "creds")
		Expect(reconcile("acme").RequeueAfter).To(BeZero())
		app := get("acme")
		expectReady(app, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(meta.FindStatusCondition(app.Status.Conditions, igv1.ConditionStalled)).To(BeNil())
		Expect(app.Status.WebhookURL).To(Equal("https://hooks.shop.test/webhooks/instagram/apps/" + ns + "/acme"))
		Expect(app.Status.RedirectURL).To(Equal("https://hooks.shop.test/instagram/callback"))

		secret := &corev1.Secret{}
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: ns, Name: "creds"}, secret)).To(Succeed())
		Expect(secret.Labels).To(HaveKeyWithValue(igv1.LabelWatch, "true"))
		Expect(secret.Labels).NotTo(HaveKey(igv1.LabelAppCredentials), "the source stays out of the receiver's cache")

		By("the copy in the operator's namespace holds only what the receiver needs")
		copy, err := published("acme")
		Expect(err).NotTo(HaveOccurred())
		Expect(copy.Type).To(Equal(corev1.SecretType(igv1.AppCredentialsSecretType)))
		Expect(copy.Labels).To(HaveKeyWithValue(igv1.LabelAppCredentials, "true"))
		Expect(copy.Annotations).To(Equal(map[string]string{
			igv1.AnnotationAppKind: igv1.KindInstagramApp, igv1.AnnotationAppNamespace: ns, igv1.AnnotationAppName: "acme",
		}))
		Expect(copy.Data).To(Equal(map[string][]byte{"appSecret": []byte("s3cr3t"), "verifyToken": []byte("v")}))

		By("a second reconcile writes nothing")
		before := get("acme").ResourceVersion
		copyVersion := copy.ResourceVersion
		reconcile("acme")
		Expect(get("acme").ResourceVersion).To(Equal(before))
		copy, err = published("acme")
		Expect(err).NotTo(HaveOccurred())
		Expect(copy.ResourceVersion).To(Equal(copyVersion))

		By("a rotation reaches the copy")
		Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
		secret.Data["previousAppSecret"] = secret.Data["appSecret"]
		secret.Data["appSecret"] = []byte("n3w")
		Expect(k8sClient.Update(suiteCtx, secret)).To(Succeed())
		reconcile("acme")
		copy, err = published("acme")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(copy.Data["appSecret"])).To(Equal("n3w"))
		Expect(string(copy.Data["previousAppSecret"])).To(Equal("s3cr3t"))

		By("deleting the app removes the copy")
		Expect(k8sClient.Delete(suiteCtx, get("acme"))).To(Succeed())
		reconcile("acme")
		_, err = published("acme")
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%v", err)
	})

	It("refuses a channel's token Secret as app credentials, without labelling or copying it", func() {
		Expect(k8sClient.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "support-instagram-token", Namespace: ns},
			Type:       igv1.TokenSecretType,
			StringData: map[string]string{"appSecret": "IGAA-token", "verifyToken": "v", "accessToken": "IGAA-token"},
		})).To(Succeed())
		Expect(k8sClient.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "labelled", Namespace: ns, Labels: map[string]string{igv1.LabelChannel: "support"}},
			StringData: map[string]string{"appSecret": "IGAA-token", "verifyToken": "v"},
		})).To(Succeed())
		for _, name := range []string{"support-instagram-token", "labelled"} {
			createApp("steal-"+name, name)
			reconcile("steal-" + name)
			app := get("steal-" + name)
			expectReady(app, metav1.ConditionFalse, igv1.ReasonSecretNotAppCredentials)
			Expect(meta.IsStatusConditionTrue(app.Status.Conditions, igv1.ConditionStalled)).To(BeTrue())
			Expect(meta.FindStatusCondition(app.Status.Conditions, igv1.ConditionReady).Message).NotTo(ContainSubstring("IGAA"))
			_, err := published("steal-" + name)
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "copied: %v", err)
			s := &corev1.Secret{}
			Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: ns, Name: name}, s)).To(Succeed())
			Expect(s.Labels).NotTo(HaveKey(igv1.LabelAppCredentials))
		}
	})

	It("maps a published copy back to its app, so a copy left behind is swept", func() {
		copy := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "x", Annotations: map[string]string{
			igv1.AnnotationAppKind: igv1.KindInstagramApp, igv1.AnnotationAppNamespace: ns, igv1.AnnotationAppName: "gone",
		}}}
		Expect(r.appsForSecret(suiteCtx, copy)).To(Equal([]ctrl.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: "gone"}}}))
		cr := &AppReconciler{Client: k8sClient, APIReader: k8sClient, Cluster: true, ClusterResourceNamespace: opNS}
		Expect(cr.appsForSecret(suiteCtx, copy)).To(BeEmpty(), "a namespaced app's copy is not a cluster app's")
	})

	It("is Stalled with SecretKeyMissing naming the keys, never their values", func() {
		createSecret("partial", map[string]string{"appSecret": "do-not-print-me"})
		createApp("partial", "partial")
		reconcile("partial")
		app := get("partial")
		expectReady(app, metav1.ConditionFalse, igv1.ReasonSecretKeyMissing)
		Expect(meta.IsStatusConditionTrue(app.Status.Conditions, igv1.ConditionStalled)).To(BeTrue())
		msg := meta.FindStatusCondition(app.Status.Conditions, igv1.ConditionReady).Message
		Expect(msg).To(ContainSubstring("verifyToken"))
		Expect(msg).NotTo(ContainSubstring("do-not-print-me"))
	})

	It("waits for a missing Secret, looking again periodically, and turns Ready once it exists", func() {
		createApp("later", "not-yet")
		res := reconcile("later")
		Expect(res.RequeueAfter).To(Equal(appMissingSecretRetry))
		expectReady(get("later"), metav1.ConditionFalse, igv1.ReasonSecretNotFound)

		createSecret("not-yet", map[string]string{"appSecret": "s", "verifyToken": "v"})
		reconcile("later")
		app := get("later")
		expectReady(app, metav1.ConditionTrue, igv1.ReasonReady)
		Expect(meta.FindStatusCondition(app.Status.Conditions, igv1.ConditionStalled)).To(BeNil())
	})

	It("is Stalled with PublicURLMissing and publishes no URLs without --public-url", func() {
		r.PublicURL = ""
		createSecret("creds2", map[string]string{"appSecret": "s", "verifyToken": "v"})
		createApp("nourl", "creds2")
		reconcile("nourl")
		app := get("nourl")
		expectReady(app, metav1.ConditionFalse, igv1.ReasonPublicURLMissing)
		Expect(meta.IsStatusConditionTrue(app.Status.Conditions, igv1.ConditionStalled)).To(BeTrue())
		Expect(meta.FindStatusCondition(app.Status.Conditions, igv1.ConditionReady).Message).To(ContainSubstring("set publicURL in the operator's settings ConfigMap"))
		Expect(app.Status.WebhookURL).To(BeEmpty())
		Expect(app.Status.RedirectURL).To(BeEmpty())

		By("setting --public-url (the manager restarts with it) makes it Ready")
		r.PublicURL = "https://hooks.shop.test"
		reconcile("nourl")
		expectReady(get("nourl"), metav1.ConditionTrue, igv1.ReasonReady)
	})

	It("refuses the shipped placeholder https://hooks.example.com with PublicURLMissing", func() {
		r.PublicURL = "https://hooks.example.com"
		createSecret("creds3", map[string]string{"appSecret": "s", "verifyToken": "v"})
		createApp("placeholder", "creds3")
		reconcile("placeholder")
		app := get("placeholder")
		expectReady(app, metav1.ConditionFalse, igv1.ReasonPublicURLMissing)
		Expect(meta.FindStatusCondition(app.Status.Conditions, igv1.ConditionReady).Message).To(ContainSubstring("--public-url https://hooks.example.com is a documentation placeholder"))
	})

	It("keeps a deleted app while channels use it, naming them, and lets go after the last one", func() {
		recorder := events.NewFakeRecorder(10)
		r.Recorder = recorder
		createSecret("creds4", map[string]string{"appSecret": "s", "verifyToken": "v"})
		createApp("used", "creds4")
		reconcile("used")
		Expect(get("used").Finalizers).To(ContainElement(igv1.AppFinalizer))

		channel := func(name, app string) *igv1.InstagramChannel {
			ch := &igv1.InstagramChannel{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindInstagramApp, Name: app}},
			}
			Expect(k8sClient.Create(suiteCtx, ch)).To(Succeed())
			return ch
		}
		support, sales := channel("support", "used"), channel("sales", "used")
		channel("other", "another-app")
		Expect(r.appForChannel(suiteCtx, support)).To(Equal([]ctrl.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: "used"}}}))

		Expect(k8sClient.Delete(suiteCtx, get("used"))).To(Succeed())
		reconcile("used")
		app := get("used")
		Expect(app.DeletionTimestamp).NotTo(BeNil())
		By("it stays Ready, so its channels keep working and can unsubscribe")
		Expect(meta.IsStatusConditionTrue(app.Status.Conditions, igv1.ConditionReady)).To(BeTrue())
		reconciling := meta.FindStatusCondition(app.Status.Conditions, igv1.ConditionReconciling)
		Expect(reconciling).NotTo(BeNil())
		Expect(reconciling.Status).To(Equal(metav1.ConditionTrue))
		Expect(reconciling.Reason).To(Equal(igv1.ReasonInUse))
		Expect(reconciling.ObservedGeneration).To(Equal(app.Generation))
		msg := reconciling.Message
		Expect(msg).To(Equal("deletion waits for 2 channel(s) that use this app: " + ns + "/sales, " + ns + "/support; delete them first, or point their spec.appRef elsewhere"))
		Expect(recorder.Events).To(Receive(ContainSubstring("Warning DeletionBlocked " + msg)))

		By("the same state again records no second Event")
		reconcile("used")
		Expect(recorder.Events).NotTo(Receive())

		By("one channel gone, the other is named")
		Expect(k8sClient.Delete(suiteCtx, sales)).To(Succeed())
		reconcile("used")
		Expect(meta.FindStatusCondition(get("used").Status.Conditions, igv1.ConditionReconciling).Message).To(ContainSubstring("1 channel(s) that use this app: " + ns + "/support;"))
		Expect(recorder.Events).To(Receive(ContainSubstring("1 channel(s)")))

		By("the last channel gone, the app goes")
		Expect(k8sClient.Delete(suiteCtx, support)).To(Succeed())
		reconcile("used")
		Expect(apierrors.IsNotFound(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: ns, Name: "used"}, &igv1.InstagramApp{}))).To(BeTrue())
	})

	It("reads a ClusterInstagramApp's Secret from the cluster resource namespace only", func() {
		cr := &AppReconciler{Client: k8sClient, APIReader: k8sClient, Cluster: true, ClusterResourceNamespace: ns, PublicURL: "https://hooks.shop.test"}
		createSecret("platform-creds", map[string]string{"appSecret": "s", "verifyToken": "v"})
		name := "platform-" + ns
		Expect(k8sClient.Create(suiteCtx, &igv1.ClusterInstagramApp{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       igv1.AppSpec{AppID: "123", SecretRef: igv1.LocalObjectReference{Name: "platform-creds"}},
		})).To(Succeed())
		_, err := cr.Reconcile(suiteCtx, ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
		Expect(err).NotTo(HaveOccurred())
		app := &igv1.ClusterInstagramApp{}
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Name: name}, app)).To(Succeed())
		Expect(meta.IsStatusConditionTrue(app.Status.Conditions, igv1.ConditionReady)).To(BeTrue())

		By("the same Secret name elsewhere does not count")
		cr.ClusterResourceNamespace = "somewhere-else"
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Name: name}, app)).To(Succeed())
		app.Spec.AppID = "456"
		Expect(k8sClient.Update(suiteCtx, app)).To(Succeed())
		_, err = cr.Reconcile(suiteCtx, ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Name: name}, app)).To(Succeed())
		c := meta.FindStatusCondition(app.Status.Conditions, igv1.ConditionReady)
		Expect(c.Reason).To(Equal(igv1.ReasonSecretNotFound))
		Expect(c.ObservedGeneration).To(Equal(app.Generation))
	})
})
