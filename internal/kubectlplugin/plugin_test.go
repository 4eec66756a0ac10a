package kubectlplugin_test

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/kubectlplugin"
)

const (
	ns        = "shop"
	loginLink = "https://www.instagram.com/oauth/authorize?client_id=1234567890&state=abc"
)

var ansi = "\x1b["

var _ = Describe("kubectl instagram", Ordered, func() {
	It("says in one line that the operator is not installed on a cluster without its CRDs", func() {
		for _, args := range [][]string{{"status"}, {"status", "-A", "-o", "json"}, {"login", "support"}, {"refresh", "support"}, {"send", "support", "1", "hi"}, {"tail", "support"}, {"contacts", "support"}} {
			expectOneLineError(run(args...), "the instagram-operator is not installed in this cluster")
		}
	})

	It("answers --help for every verb with an example", func() {
		for _, verb := range []string{"status", "login", "refresh", "send", "tail", "contacts"} {
			res := run(verb, "--help")
			Expect(res.code).To(BeZero())
			Expect(res.stdout).To(ContainSubstring("kubectl instagram " + verb))
			Expect(res.stdout).To(ContainSubstring("Examples:"))
			Expect(res.stdout).To(ContainSubstring("--namespace"))
		}
		res := run("--help")
		Expect(res.stdout).To(ContainSubstring("kubectl instagram [command]"))
	})

	It("writes shell completion", func() {
		for _, shell := range []string{"bash", "zsh", "fish"} {
			res := run("completion", shell)
			Expect(res.code).To(BeZero())
			Expect(res.stdout).To(ContainSubstring("kubectl-instagram"))
		}
	})

	It("refuses a wrong number of arguments and unknown flag values", func() {
		expectOneLineError(run("login"), "accepts 1 arg(s), received 0")
		expectOneLineError(run("status", "-o", "table"), "--output must be json or yaml")
		expectOneLineError(run("status", "--color", "sometimes"), "--color must be auto, always or never")
	})

	Context("with the CRDs installed", Ordered, func() {
		BeforeAll(func() {
			installCRDs()
			Expect(k8sClient.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
			seedApp()
			seedChannel("support", true)
			seedChannel("sales", false)
			seedMessage("support-in-1", "support", "Is this in stock?", 3*time.Hour)
		})

		Describe("status", func() {
			It("shows apps, channels, token expiry, subscription and last message, plain when piped", func() {
				res := run("status", "-n", ns)
				Expect(res.code).To(BeZero(), res.stderr)
				Expect(res.stdout).NotTo(ContainSubstring(ansi))
				Expect(res.stdout).To(ContainSubstring("ClusterInstagramApp acme  Ready"))
				Expect(res.stdout).To(ContainSubstring("webhook https://hooks.shop.test/webhooks/instagram"))
				lines := strings.Split(res.stdout, "\n")
				Expect(findLine(lines, "support")).To(MatchRegexp(`support\s+@acme_shop\s+Ready\s+in 40d \(2027-01-11\)\s+yes \(2 fields\)\s+(in \S+|\S+ ago) incoming$`))
				Expect(findLine(lines, "sales ")).To(MatchRegexp(`sales\s+-\s+AwaitingAuthorization\s+-\s+-\s+-`))
				Expect(res.stdout).To(ContainSubstring("sales awaits a login: kubectl instagram login sales -n shop"))
			})

			It("colours on a terminal, and not with NO_COLOR or --color=never", func() {
				Expect(invocation{terminal: true}.run("status", "-n", ns).stdout).To(ContainSubstring(ansi))
				Expect(invocation{terminal: true, env: map[string]string{"NO_COLOR": "1"}}.run("status", "-n", ns).stdout).NotTo(ContainSubstring(ansi))
				Expect(invocation{terminal: true}.run("status", "-n", ns, "--color=never").stdout).NotTo(ContainSubstring(ansi))
				Expect(run("status", "-n", ns, "--color=always").stdout).To(ContainSubstring(ansi))
			})

			It("prints the same facts as JSON and YAML", func() {
				for _, format := range []string{"json", "yaml"} {
					res := invocation{terminal: true}.run("status", "-A", "-o", format)
					Expect(res.code).To(BeZero(), res.stderr)
					Expect(res.stdout).NotTo(ContainSubstring(ansi))
					var report kubectlplugin.StatusReport
					if format == "json" {
						Expect(json.Unmarshal([]byte(res.stdout), &report)).To(Succeed())
					} else {
						Expect(yaml.UnmarshalStrict([]byte(res.stdout), &report)).To(Succeed())
					}
					Expect(report.Apps).To(HaveLen(1))
					app := report.Apps[0]
					Expect(app.Kind).To(Equal("ClusterInstagramApp"))
					Expect(app.Found).To(BeTrue())
					Expect(app.Ready).To(Equal("True"))
					Expect(app.Channels).To(HaveLen(2))
					sales, support := app.Channels[0], app.Channels[1]
					Expect(sales.Name).To(Equal("sales"))
					Expect(sales.Ready).To(Equal("False"))
					Expect(sales.Reason).To(Equal(igv1.ReasonAwaitingAuthorization))
					Expect(sales.AuthorizationURL).To(Equal(loginLink))
					Expect(support.Username).To(Equal("acme_shop"))
					Expect(support.Ready).To(Equal("True"))
					Expect(support.Subscribed).To(Equal("True"))
					Expect(support.SubscribedFields).To(Equal([]string{"messages", "messaging_seen"}))
					Expect(support.TokenExpiresAt.UTC()).To(Equal(time.Date(2027, time.January, 11, 9, 0, 0, 0, time.UTC)))
					Expect(support.LastMessage).NotTo(BeNil())
					Expect(support.LastMessage.Name).To(Equal("support-in-1"))
					Expect(support.LastMessage.Direction).To(Equal("incoming"))
				}
			})

			It("says so when a namespace has nothing", func() {
				res := run("status", "-n", "default")
				Expect(res.code).To(BeZero())
				Expect(res.stdout).To(Equal("No Instagram apps or channels in namespace \"default\".\n"))
			})

			It("shows an app that channels name but that does not exist", func() {
				ch := &igv1.InstagramChannel{
					ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "default"},
					Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindInstagramApp, Name: "gone"}},
				}
				Expect(k8sClient.Create(suiteCtx, ch)).To(Succeed())
				DeferCleanup(func() { Expect(k8sClient.Delete(suiteCtx, ch)).To(Succeed()) })
				res := run("status", "-n", "default")
				Expect(res.stdout).To(ContainSubstring("InstagramApp default/gone  NotFound: no such app, or you may not read it"))
				Expect(res.stdout).To(ContainSubstring("orphan"))
			})
			It("says why a deleted app is still there", func() {
				app := &igv1.InstagramApp{
					ObjectMeta: metav1.ObjectMeta{Name: "leaving", Namespace: "default"},
					Spec:       igv1.AppSpec{AppID: "1", SecretRef: igv1.LocalObjectReference{Name: "s"}},
				}
				Expect(k8sClient.Create(suiteCtx, app)).To(Succeed())
				DeferCleanup(func() { Expect(k8sClient.Delete(suiteCtx, app)).To(Succeed()) })
				app.Status.Conditions = []metav1.Condition{
					condition(igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady, "app credentials are present", app.Generation),
					condition(igv1.ConditionReconciling, metav1.ConditionTrue, igv1.ReasonInUse, "deletion waits for 1 channel(s) that use this app: default/a", app.Generation),
				}
				Expect(k8sClient.Status().Update(suiteCtx, app)).To(Succeed())
				res := run("status", "-n", "default")
				Expect(res.stdout).To(ContainSubstring("InstagramApp default/leaving  Ready  being deleted: deletion waits for 1 channel(s) that use this app: default/a"))
			})
		})

		Describe("login", func() {
			It("prints only the link when piped and does not open a browser", func() {
				res := run("login", "sales", "-n", ns)
				Expect(res.code).To(BeZero(), res.stderr)
				Expect(res.stdout).To(Equal(loginLink + "\n"))
				Expect(res.opened).To(BeEmpty())
			})

			It("opens the link when asked", func() {
				res := run("login", "sales", "-n", ns, "--open=always")
				Expect(res.code).To(BeZero(), res.stderr)
				Expect(res.opened).To(Equal([]string{loginLink}))
				Expect(res.stderr).To(ContainSubstring("Opened in your browser."))
			})

			It("explains on a terminal whom the link is for", func() {
				res := invocation{terminal: true}.run("login", "sales", "-n", ns, "--open=never")
				Expect(res.stdout).To(ContainSubstring("Login link for InstagramChannel shop/sales (for the owner of the Instagram account):"))
				Expect(res.opened).To(BeEmpty())
			})

			It("refuses a connected channel and a missing one", func() {
				expectOneLineError(run("login", "support", "-n", ns), "InstagramChannel shop/support is already connected as @acme_shop")
				expectOneLineError(run("login", "nope", "-n", ns), `InstagramChannel "nope" not found in namespace "shop"`)
			})
		})

		Describe("refresh", func() {
			It("sets requestedAt, waits for the manager's echo and prints the result", func() {
				ctx, stop := context.WithCancel(suiteCtx)
				defer stop()
				go fakeManagerHandlesRequests(ctx, "support", metav1.ConditionTrue, igv1.ReasonReady)
				res := run("refresh", "support", "-n", ns)
				Expect(res.code).To(BeZero(), res.stderr)
				Expect(res.stdout).To(ContainSubstring("shop/support: Ready"))
				Expect(res.stdout).To(ContainSubstring("token expires in 40d (2027-01-11)"))
				ch := getChannel("support")
				Expect(ch.Annotations[igv1.AnnotationRequestedAt]).To(HavePrefix("2026-12-02T01:00:00."))
				Expect(ch.Status.LastHandledReconcileAt).To(Equal(ch.Annotations[igv1.AnnotationRequestedAt]))
			})

			It("exits non-zero when the channel is not Ready afterwards", func() {
				ctx, stop := context.WithCancel(suiteCtx)
				defer stop()
				go fakeManagerHandlesRequests(ctx, "sales", metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization)
				expectOneLineError(run("refresh", "sales", "-n", ns), "InstagramChannel shop/sales is not Ready: AwaitingAuthorization")
			})

			It("gives up when no manager answers", func() {
				expectOneLineError(run("refresh", "support", "-n", ns, "--timeout=200ms"), "the manager did not handle the request within 200ms")
			})

			It("refuses a missing channel", func() {
				expectOneLineError(run("refresh", "nope", "-n", ns), `InstagramChannel "nope" not found`)
			})
		})

		Describe("send", func() {
			It("creates an outgoing message and follows it to Sent", func() {
				ctx, stop := context.WithCancel(suiteCtx)
				defer stop()
				go fakeManagerSends(ctx)
				res := run("send", "support", "5512340000000001", "Yes, it is in stock.", "-n", ns)
				Expect(res.code).To(BeZero(), res.stderr)
				Expect(res.stdout).To(MatchRegexp(`^shop/support-out-\w+: Sent \(message ID m_sent\)\n$`))
				var list igv1.InstagramMessageList
				Expect(k8sClient.List(suiteCtx, &list, client.InNamespace(ns), client.MatchingLabels{igv1.LabelDirection: "outgoing"})).To(Succeed())
				Expect(list.Items).To(HaveLen(1))
				m := list.Items[0]
				Expect(m.Spec.Direction).To(Equal(igv1.DirectionOutgoing))
				Expect(m.Spec.ChannelRef.Name).To(Equal("support"))
				Expect(m.Spec.ContactID).To(Equal("5512340000000001"))
				Expect(m.Spec.Text).To(Equal("Yes, it is in stock."))
				Expect(m.Labels).To(HaveKeyWithValue(igv1.LabelContact, "5512340000000001"))
			})

			It("exits non-zero with the reason when the message fails", func() {
				ctx, stop := context.WithCancel(suiteCtx)
				defer stop()
				go fakeManagerSends(ctx)
				res := run("send", "support", "5512340000000001", "please fail", "-n", ns)
				expectOneLineError(res, "failed: OutsideWindow")
				Expect(res.stdout).To(ContainSubstring("Failed (OutsideWindow: the 24-hour window is closed)"))
			})

			It("refuses a missing channel and a message the API server rejects", func() {
				expectOneLineError(run("send", "nope", "1", "hi", "-n", ns), `InstagramChannel "nope" not found`)
				expectOneLineError(run("send", "support", "5512340000000001", "hi", "--tag=NOT_A_TAG", "-n", ns, "--wait=false"), "spec.tag")
			})
		})

		Describe("tail", func() {
			It("prints recent incoming messages and follows new ones until interrupted", func() {
				ctx, stop := context.WithCancel(suiteCtx)
				defer stop()
				out := &syncBuffer{}
				done := make(chan result, 1)
				go func() { done <- invocation{ctx: ctx, out: out}.run("tail", "support", "-n", ns) }()
				Eventually(out.String).Should(ContainSubstring("support 5512340000000001 < Is this in stock?"))

				seedMessage("support-in-2", "support", "Do you ship to Lisbon?", 2*time.Hour)
				seedMessage("sales-in-1", "sales", "not for this channel", time.Hour)
				Eventually(out.String).Should(ContainSubstring("support 5512340000000001 < Do you ship to Lisbon?"))
				stop()
				var res result
				Eventually(done).Should(Receive(&res))
				Expect(res.code).To(BeZero(), res.stderr)
				Expect(out.String()).NotTo(ContainSubstring("not for this channel"))
				Expect(out.String()).NotTo(ContainSubstring(ansi))
				Expect(strings.Count(out.String(), "Is this in stock?")).To(Equal(1))
			})

			It("prints every namespace with -A and stops with --follow=false", func() {
				res := run("tail", "-A", "--follow=false", "--tail=2")
				Expect(res.code).To(BeZero(), res.stderr)
				lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
				Expect(lines).To(HaveLen(2))
				Expect(res.stdout).To(ContainSubstring("shop/support 5512340000000001 < Do you ship to Lisbon?"))
				Expect(res.stdout).To(ContainSubstring("shop/sales 5512340000000001 < not for this channel"))
			})

			It("refuses a missing channel", func() {
				expectOneLineError(run("tail", "nope", "-n", ns), `InstagramChannel "nope" not found`)
			})
		})

		Describe("contacts", func() {
			It("says in one line that contacts are not installed", func() {
				expectOneLineError(run("contacts", "support", "-n", ns), "contacts are not installed in this cluster")
			})

			It("lists the channel's contacts once the kind exists", func() {
				installContactCRD()
				for _, c := range []struct{ name, channel, id, username string }{
					{"support-5512340000000001", "support", "5512340000000001", "ana.lisboa"},
					{"sales-5512340000000002", "sales", "5512340000000002", "other"},
				} {
					u := &unstructured.Unstructured{}
					u.SetAPIVersion(igv1.GroupVersion.String())
					u.SetKind("InstagramContact")
					u.SetName(c.name)
					u.SetNamespace(ns)
					u.SetLabels(map[string]string{igv1.LabelChannel: c.channel, igv1.LabelContact: c.id})
					Expect(unstructured.SetNestedField(u.Object, c.channel, "spec", "channelRef", "name")).To(Succeed())
					Expect(unstructured.SetNestedField(u.Object, c.username, "spec", "username")).To(Succeed())
					Expect(k8sClient.Create(suiteCtx, u)).To(Succeed())
				}

				res := run("contacts", "support", "-n", ns)
				Expect(res.code).To(BeZero(), res.stderr)
				Expect(res.stdout).To(MatchRegexp(`support-5512340000000001\s+5512340000000001\s+@ana.lisboa`))
				Expect(res.stdout).NotTo(ContainSubstring("other"))
				Expect(res.stdout).NotTo(ContainSubstring(ansi))

				res = run("contacts", "support", "-n", ns, "-o", "json")
				Expect(res.code).To(BeZero(), res.stderr)
				var list struct {
					Kind  string                      `json:"kind"`
					Items []unstructured.Unstructured `json:"items"`
				}
				Expect(json.Unmarshal([]byte(res.stdout), &list)).To(Succeed())
				Expect(list.Kind).To(Equal("List"))
				Expect(list.Items).To(HaveLen(1))
				Expect(list.Items[0].GetName()).To(Equal("support-5512340000000001"))

				expectOneLineError(run("contacts", "nope", "-n", ns), `InstagramChannel "nope" not found`)
			})
		})

		It("completes channel names of the namespace", func() {
			res := run("__complete", "-n", ns, "refresh", "")
			Expect(res.code).To(BeZero(), res.stderr)
			Expect(strings.Split(res.stdout, "\n")[:2]).To(ConsistOf("sales", "support"))
			Expect(res.stdout).To(ContainSubstring(":4\n"), "no file completion")
		})

		It("says in one line when the user may not read channels", func() {
			user, err := testEnv.AddUser(envtest.User{Name: "nobody"}, nil)
			Expect(err).NotTo(HaveOccurred())
			config := writeKubeconfig(user.Config(), "nobody")
			for _, args := range [][]string{{"status", "-n", ns}, {"login", "sales", "-n", ns}, {"tail", "support", "-n", ns}} {
				expectOneLineError(invocation{config: config}.run(args...), "forbidden:")
			}
		})

		It("shows channels to a user who may not read cluster-scoped apps", func() {
			user, err := testEnv.AddUser(envtest.User{Name: "shop-team"}, nil)
			Expect(err).NotTo(HaveOccurred())
			role := &rbacv1.Role{
				ObjectMeta: metav1.ObjectMeta{Name: "instagram-viewer", Namespace: ns},
				Rules:      []rbacv1.PolicyRule{{APIGroups: []string{igv1.GroupVersion.Group}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}}},
			}
			binding := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "shop-team", Namespace: ns},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
				Subjects:   []rbacv1.Subject{{Kind: "User", Name: "shop-team", APIGroup: "rbac.authorization.k8s.io"}},
			}
			Expect(k8sClient.Create(suiteCtx, role)).To(Succeed())
			Expect(k8sClient.Create(suiteCtx, binding)).To(Succeed())
			res := invocation{config: writeKubeconfig(user.Config(), "shop-team")}.run("status", "-n", ns)
			Expect(res.code).To(BeZero(), res.stderr)
			Expect(res.stdout).To(ContainSubstring("ClusterInstagramApp acme  NotFound"))
			Expect(res.stdout).To(ContainSubstring("@acme_shop"))
		})
	})
})

func findLine(lines []string, prefix string) string {
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return l
		}
	}
	return ""
}

func seedApp() {
	app := &igv1.ClusterInstagramApp{
		ObjectMeta: metav1.ObjectMeta{Name: "acme"},
		Spec:       igv1.AppSpec{AppID: "1234567890", SecretRef: igv1.LocalObjectReference{Name: "acme-app"}},
	}
	Expect(k8sClient.Create(suiteCtx, app)).To(Succeed())
	app.Status = igv1.AppStatus{
		ObservedGeneration: app.Generation,
		WebhookURL:         "https://hooks.shop.test/webhooks/instagram",
		RedirectURL:        "https://hooks.shop.test/instagram/callback",
		Conditions:         []metav1.Condition{condition(igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady, "app credentials are present", app.Generation)},
	}
	Expect(k8sClient.Status().Update(suiteCtx, app)).To(Succeed())
}

// seedChannel writes a channel with the status the manager leaves: a
// connected one, or one that awaits its login.
func seedChannel(name string, connected bool) {
	ch := &igv1.InstagramChannel{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       igv1.InstagramChannelSpec{AppRef: igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: "acme"}},
	}
	Expect(k8sClient.Create(suiteCtx, ch)).To(Succeed())
	g := ch.Generation
	if connected {
		expires := metav1.NewTime(time.Date(2027, time.January, 11, 9, 0, 0, 0, time.UTC))
		next := metav1.NewTime(time.Date(2026, time.December, 22, 9, 0, 0, 0, time.UTC))
		ch.Status = igv1.InstagramChannelStatus{
			ObservedGeneration: g,
			Account:            &igv1.AccountStatus{UserID: "17841400000000001", Username: "acme_shop"},
			Token:              &igv1.TokenStatus{SecretName: name + "-instagram-token", ExpiresAt: &expires, NextRefreshAt: &next},
			SubscribedFields:   []string{"messages", "messaging_seen"},
			Conditions: []metav1.Condition{
				condition(igv1.ConditionReady, metav1.ConditionTrue, igv1.ReasonReady, "connected", g),
				condition(igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonSucceeded, "token is valid", g),
				condition(igv1.ConditionWebhookSubscribed, metav1.ConditionTrue, igv1.ReasonSubscribed, "subscribed", g),
			},
		}
	} else {
		ch.Status = igv1.InstagramChannelStatus{
			ObservedGeneration: g,
			AuthorizationURL:   loginLink,
			Conditions: []metav1.Condition{
				condition(igv1.ConditionReady, metav1.ConditionFalse, igv1.ReasonAwaitingAuthorization, "open status.authorizationURL to connect the account", g),
				condition(igv1.ConditionStalled, metav1.ConditionTrue, igv1.ReasonAwaitingAuthorization, "open status.authorizationURL to connect the account", g),
			},
		}
	}
	Expect(k8sClient.Status().Update(suiteCtx, ch)).To(Succeed())
}

// seedMessage writes an incoming message as the receiver does, sent ago
// before the test clock's now.
func seedMessage(name, channel, text string, ago time.Duration) {
	m := &igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
			igv1.LabelChannel:   channel,
			igv1.LabelContact:   "5512340000000001",
			igv1.LabelDirection: igv1.DirectionLabelIncoming,
		}},
		Spec: igv1.InstagramMessageSpec{ChannelRef: igv1.ChannelReference{Name: channel}, Direction: igv1.DirectionIncoming, ContactID: "5512340000000001", Text: text},
	}
	Expect(k8sClient.Create(suiteCtx, m)).To(Succeed())
	at := metav1.NewTime(now.Add(-ago))
	m.Status = igv1.InstagramMessageStatus{Phase: igv1.PhaseReceived, MessageID: "m_" + name, Timestamp: &at}
	Expect(k8sClient.Status().Update(suiteCtx, m)).To(Succeed())
}

func condition(typ string, status metav1.ConditionStatus, reason, message string, generation int64) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}
}

func getChannel(name string) *igv1.InstagramChannel {
	ch := &igv1.InstagramChannel{}
	Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, ch)).To(Succeed())
	return ch
}

// fakeManagerHandlesRequests plays the manager's part for refresh: it echoes
// a new requestedAt into status.lastHandledReconcileAt, with the Ready
// condition the reconcile ended in, in the same status write.
func fakeManagerHandlesRequests(ctx context.Context, name string, ready metav1.ConditionStatus, reason string) {
	defer GinkgoRecover()
	_ = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ch := &igv1.InstagramChannel{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ch); err != nil {
			return false, nil
		}
		requested, ok := ch.Annotations[igv1.AnnotationRequestedAt]
		if !ok || requested == ch.Status.LastHandledReconcileAt {
			return false, nil
		}
		patch := client.MergeFrom(ch.DeepCopy())
		ch.Status.LastHandledReconcileAt = requested
		meta.SetStatusCondition(&ch.Status.Conditions, condition(igv1.ConditionReady, ready, reason, "reconciled", ch.Generation))
		return true, k8sClient.Status().Patch(ctx, ch, patch)
	})
}

// fakeManagerSends plays the manager's part for send: an outgoing message
// without a phase becomes Sent, or Failed when its text asks for it.
func fakeManagerSends(ctx context.Context) {
	defer GinkgoRecover()
	_ = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var list igv1.InstagramMessageList
		if err := k8sClient.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, nil
		}
		for i := range list.Items {
			m := &list.Items[i]
			if m.Spec.Direction != igv1.DirectionOutgoing || m.Status.Phase != "" {
				continue
			}
			patch := client.MergeFrom(m.DeepCopy())
			m.Status.Phase, m.Status.MessageID = igv1.PhaseSent, "m_sent"
			if strings.Contains(m.Spec.Text, "fail") {
				m.Status.Phase, m.Status.MessageID = igv1.PhaseFailed, ""
				m.Status.Reason, m.Status.Message = igv1.ReasonOutsideWindow, "the 24-hour window is closed"
			}
			if err := k8sClient.Status().Patch(ctx, m, patch); err != nil {
				return false, nil
			}
		}
		return false, nil
	})
}

// installContactCRD installs a stand-in for the InstagramContact kind, as a
// later operator version serves it: the plugin must find it by discovery.
func installContactCRD() {
	preserve := true
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "instagramcontacts." + igv1.GroupVersion.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: igv1.GroupVersion.Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "InstagramContact", ListKind: "InstagramContactList", Plural: "instagramcontacts", Singular: "instagramcontact"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: igv1.GroupVersion.Version, Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}},
			}},
		},
	}
	_, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd}})
	Expect(err).NotTo(HaveOccurred())
}
