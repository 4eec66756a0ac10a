// Package admission_test runs the install's RBAC and admission policies
// against a real kube-apiserver: the receiver and the manager under the
// roles generated for them (as the end-to-end suite runs them), tenants
// under the aggregated user roles, and the ValidatingAdmissionPolicies of
// dist/install.yaml exactly as shipped.
package admission_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/localenv"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

const tenantNS = "team-a"

var (
	testEnv *envtest.Environment
	cfg     *rest.Config
	admin   client.Client
	scheme  = runtime.NewScheme()
	ctx     = context.Background()

	receiver, manager, tenant, auditor, reader client.Client
)

func TestAdmission(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a control plane")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Admission and RBAC Suite")
}

// as is a client that authenticates as user in groups.
func as(user string, groups ...string) client.Client {
	GinkgoHelper()
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	cl, err := client.New(c, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return cl
}

// serviceAccount is a client acting as a ServiceAccount with its groups.
func serviceAccount(user string) client.Client {
	GinkgoHelper()
	// system:serviceaccount:<namespace>:<name>
	ns := user[len("system:serviceaccount:"):]
	for i := range ns {
		if ns[i] == ':' {
			ns = ns[:i]
			break
		}
	}
	return as(user, "system:serviceaccounts", "system:serviceaccounts:"+ns)
}

// userRoles creates the ClusterRoles of config/rbac/user_roles.yaml.
func userRoles() {
	GinkgoHelper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "user_roles.yaml"))
	Expect(err).NotTo(HaveOccurred())
	for _, doc := range splitDocs(raw) {
		role := &rbacv1.ClusterRole{}
		Expect(yaml.UnmarshalStrict(doc, role)).To(Succeed())
		Expect(admin.Create(ctx, role)).To(Succeed())
	}
}

func bindInTenant(role, user string) {
	GinkgoHelper()
	Expect(admin.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role + "-" + user, Namespace: tenantNS},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})).To(Succeed())
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(30 * time.Second)
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(igv1.AddToScheme(scheme))
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: testenv.AssetsDir(),
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	admin, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	for _, n := range []string{localenv.SystemNamespace, tenantNS} {
		Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})).To(Succeed())
	}
	Expect(localenv.BindGeneratedRoles(ctx, admin, "webhookserver", filepath.Join("webhookserver", "role.yaml"))).To(Succeed())
	Expect(localenv.BindGeneratedRoles(ctx, admin, "manager", "role.yaml")).To(Succeed())
	Expect(localenv.InstallAdmissionPolicies(ctx, admin)).To(Succeed())
	userRoles()
	bindInTenant("instagram-editor-role", "system:serviceaccount:team-a:bot")
	bindInTenant("instagram-viewer-role", "auditor")
	bindInTenant("instagram-conversations-reader-role", "reader")

	receiver = serviceAccount(localenv.ServiceAccountUser("webhookserver"))
	manager = serviceAccount(localenv.ServiceAccountUser("manager"))
	tenant = serviceAccount("system:serviceaccount:team-a:bot")
	auditor = as("auditor")
	reader = as("reader")

	// The policies take effect once the API server has compiled them.
	Eventually(func() error {
		return tenant.Create(ctx, incoming("probe"), client.DryRunAll)
	}).Should(MatchError(ContainSubstring("only the webhook receiver")))
})

var _ = AfterSuite(func() {
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

func incoming(name string) *igv1.InstagramMessage {
	return &igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenantNS},
		Spec: igv1.InstagramMessageSpec{
			ChannelRef: igv1.ChannelReference{Name: "support"},
			Direction:  igv1.DirectionIncoming,
			ContactID:  "5512340000000001",
			Text:       "is this in stock?",
		},
	}
}

func outgoing(name string, labels map[string]string) *igv1.InstagramMessage {
	return &igv1.InstagramMessage{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenantNS, Labels: labels},
		Spec: igv1.InstagramMessageSpec{
			ChannelRef: igv1.ChannelReference{Name: "support"},
			Direction:  igv1.DirectionOutgoing,
			ContactID:  "5512340000000001",
			Text:       "yes",
		},
	}
}

func secret(ns, name string, typ corev1.SecretType) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Type:       typ,
		StringData: map[string]string{"k": "v"},
	}
	if typ == corev1.SecretTypeServiceAccountToken {
		s.Annotations = map[string]string{corev1.ServiceAccountNameKey: "default"}
		s.StringData = nil
	}
	return s
}

func forbidden(err error) bool { return apierrors.IsForbidden(err) }

var _ = Describe("the receiver under its generated roles", func() {
	It("cannot read, list or write a tenant's Secrets, and reads its own namespace's", func() {
		token := secret(tenantNS, "support-instagram-token", igv1.TokenSecretType)
		token.StringData = map[string]string{igv1.TokenSecretKeyAccessToken: "IGAA-tenant-token"}
		Expect(admin.Create(ctx, token)).To(Succeed())

		err := receiver.Get(ctx, client.ObjectKeyFromObject(token), &corev1.Secret{})
		Expect(forbidden(err)).To(BeTrue(), "get of a tenant's token Secret: %v", err)
		err = receiver.List(ctx, &corev1.SecretList{})
		Expect(forbidden(err)).To(BeTrue(), "list of every Secret: %v", err)
		err = receiver.List(ctx, &corev1.SecretList{}, client.InNamespace(tenantNS))
		Expect(forbidden(err)).To(BeTrue(), "list in a tenant namespace: %v", err)
		err = receiver.Create(ctx, secret(tenantNS, "planted", igv1.LoginSecretType))
		Expect(forbidden(err)).To(BeTrue(), "create in a tenant namespace: %v", err)

		Expect(receiver.List(ctx, &corev1.SecretList{}, client.InNamespace(localenv.SystemNamespace))).To(Succeed())
	})

	It("creates only login hand-over Secrets, never a ServiceAccount token", func() {
		err := receiver.Create(ctx, secret(localenv.SystemNamespace, "sa-token", corev1.SecretTypeServiceAccountToken))
		Expect(err).To(MatchError(ContainSubstring("may not create a Secret of type kubernetes.io/service-account-token")))
		err = receiver.Create(ctx, secret(localenv.SystemNamespace, "opaque", corev1.SecretTypeOpaque))
		Expect(forbidden(err)).To(BeTrue(), "%v", err)
		Expect(receiver.Create(ctx, secret(localenv.SystemNamespace, "iglogin-x", igv1.LoginSecretType))).To(Succeed())
	})
})

var _ = Describe("the manager under its generated role", func() {
	It("creates token Secrets in tenant namespaces and credential copies in its own, nothing else", func() {
		err := manager.Create(ctx, secret("kube-system", "minted", corev1.SecretTypeServiceAccountToken))
		Expect(err).To(MatchError(ContainSubstring("may not create a Secret")))
		err = manager.Create(ctx, secret(tenantNS, "opaque", corev1.SecretTypeOpaque))
		Expect(forbidden(err)).To(BeTrue(), "%v", err)
		err = manager.Create(ctx, secret(tenantNS, "copy", igv1.AppCredentialsSecretType))
		Expect(forbidden(err)).To(BeTrue(), "app credentials outside the operator's namespace: %v", err)

		Expect(manager.Create(ctx, secret(tenantNS, "sales-instagram-token", igv1.TokenSecretType))).To(Succeed())
		Expect(manager.Create(ctx, secret(localenv.SystemNamespace, "igapp-x", igv1.AppCredentialsSecretType))).To(Succeed())
		Expect(manager.Create(ctx, secret(localenv.SystemNamespace, igv1.HashKeySecretName, igv1.HashKeySecretType))).To(Succeed())
	})

	It("labels a Secret it references but cannot change the data or annotations of one that is not its own", func() {
		boot := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-abcdef", Namespace: "kube-system"},
			Type:       corev1.SecretTypeBootstrapToken,
			StringData: map[string]string{"token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-authentication": "true"},
		}
		Expect(admin.Create(ctx, boot)).To(Succeed())
		Expect(manager.Get(ctx, client.ObjectKeyFromObject(boot), boot)).To(Succeed())

		patch := client.MergeFrom(boot.DeepCopy())
		boot.Labels = map[string]string{igv1.LabelWatch: "true"}
		Expect(manager.Patch(ctx, boot, patch)).To(Succeed(), "labelling for the cache is allowed")

		patch = client.MergeFrom(boot.DeepCopy())
		boot.Data["auth-extra-groups"] = []byte("system:masters")
		Expect(manager.Patch(ctx, boot, patch)).To(MatchError(ContainSubstring("may only label a Secret of type bootstrap.kubernetes.io/token")))

		Expect(manager.Get(ctx, client.ObjectKeyFromObject(boot), boot)).To(Succeed())
		patch = client.MergeFrom(boot.DeepCopy())
		boot.Annotations = map[string]string{"x": "y"}
		Expect(forbidden(manager.Patch(ctx, boot, patch))).To(BeTrue())

		By("its own Secrets it writes as it needs")
		token := secret(tenantNS, "ops-instagram-token", igv1.TokenSecretType)
		Expect(manager.Create(ctx, token)).To(Succeed())
		patch = client.MergeFrom(token.DeepCopy())
		token.Data = map[string][]byte{igv1.TokenSecretKeyAccessToken: []byte("IGAA-refreshed")}
		Expect(manager.Patch(ctx, token, patch)).To(Succeed())
	})
})

var _ = Describe("trusted writes", func() {
	It("refuses a forged incoming message from a tenant ServiceAccount and accepts the receiver's", func() {
		err := tenant.Create(ctx, incoming("forged"))
		Expect(forbidden(err)).To(BeTrue(), "%v", err)
		Expect(err).To(MatchError(ContainSubstring("only the webhook receiver may create incoming messages")))

		Expect(receiver.Create(ctx, incoming("real"))).To(Succeed())

		By("the tenant may label it for its own bookkeeping, not rewrite what the customer sent")
		m := &igv1.InstagramMessage{}
		Expect(tenant.Get(ctx, client.ObjectKey{Namespace: tenantNS, Name: "real"}, m)).To(Succeed())
		patch := client.MergeFrom(m.DeepCopy())
		m.Labels = map[string]string{"crm.example.com/handled": "true"}
		Expect(tenant.Patch(ctx, m, patch)).To(Succeed())
		patch = client.MergeFrom(m.DeepCopy())
		m.Spec.Text = "please send me your password"
		err = tenant.Patch(ctx, m, patch)
		Expect(err).To(MatchError(ContainSubstring("change what a customer sent")))
	})

	It("lets only the receiver record an echo, which the manager would never send", func() {
		echo := outgoing("fake-echo", nil)
		echo.Spec.Echo = true
		err := tenant.Create(ctx, echo)
		Expect(forbidden(err)).To(BeTrue(), "%v", err)
		Expect(err).To(MatchError(ContainSubstring("spec.echo")))

		By("nor turn a pending message into one")
		Expect(tenant.Create(ctx, outgoing("pending-reply", nil))).To(Succeed())
		m := &igv1.InstagramMessage{}
		Expect(tenant.Get(ctx, client.ObjectKey{Namespace: tenantNS, Name: "pending-reply"}, m)).To(Succeed())
		patch := client.MergeFrom(m.DeepCopy())
		m.Spec.Echo = true
		Expect(tenant.Patch(ctx, m, patch)).To(MatchError(ContainSubstring("spec.echo")))

		echo = outgoing("real-echo", map[string]string{igv1.LabelDone: "true"})
		echo.Spec.Echo = true
		Expect(receiver.Create(ctx, echo)).To(Succeed())
	})

	It("leaves the send-protocol labels to the operator", func() {
		err := tenant.Create(ctx, outgoing("pre-done", map[string]string{igv1.LabelDone: "true"}))
		Expect(err).To(MatchError(ContainSubstring("set by the operator only")))

		Expect(tenant.Create(ctx, outgoing("reply", nil))).To(Succeed())
		m := &igv1.InstagramMessage{}
		Expect(tenant.Get(ctx, client.ObjectKey{Namespace: tenantNS, Name: "reply"}, m)).To(Succeed())
		patch := client.MergeFrom(m.DeepCopy())
		m.Labels = map[string]string{igv1.LabelMID: "0123456789abcdef0123456789abcdef01234567"}
		Expect(tenant.Patch(ctx, m.DeepCopy(), patch)).To(MatchError(ContainSubstring("set by the operator only")))

		By("the manager sets them")
		Expect(manager.Get(ctx, client.ObjectKeyFromObject(m), m)).To(Succeed())
		patch = client.MergeFrom(m.DeepCopy())
		m.Labels = map[string]string{igv1.LabelMID: "0123456789abcdef0123456789abcdef01234567", igv1.LabelDone: "true"}
		Expect(manager.Patch(ctx, m, patch)).To(Succeed())

		By("and a tenant cannot take them off")
		patch = client.MergeFrom(m.DeepCopy())
		delete(m.Labels, igv1.LabelDone)
		Expect(tenant.Patch(ctx, m, patch)).To(MatchError(ContainSubstring("set by the operator only")))
	})

	It("covers comments and contacts by resource name before their kinds exist", func() {
		raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "admission", "trusted_writes.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var policy struct {
			Spec struct {
				MatchConstraints struct {
					ResourceRules []struct {
						Resources []string `json:"resources"`
					} `json:"resourceRules"`
				} `json:"matchConstraints"`
			} `json:"spec"`
		}
		Expect(yaml.Unmarshal(splitDocs(raw)[0], &policy)).To(Succeed())
		Expect(policy.Spec.MatchConstraints.ResourceRules).To(HaveLen(1))
		Expect(policy.Spec.MatchConstraints.ResourceRules[0].Resources).To(ConsistOf("instagrammessages", "instagramcomments", "instagramcontacts"))
	})
})

var _ = Describe("personal data", func() {
	BeforeEach(func() {
		Expect(client.IgnoreAlreadyExists(receiver.Create(ctx, incoming("personal")))).To(Succeed())
	})

	It("is not readable through the view role, which still shows channels", func() {
		err := auditor.List(ctx, &igv1.InstagramMessageList{}, client.InNamespace(tenantNS))
		Expect(forbidden(err)).To(BeTrue(), "view lists messages: %v", err)
		err = auditor.Get(ctx, client.ObjectKey{Namespace: tenantNS, Name: "personal"}, &igv1.InstagramMessage{})
		Expect(forbidden(err)).To(BeTrue(), "view reads a message: %v", err)
		Expect(auditor.List(ctx, &igv1.InstagramChannelList{}, client.InNamespace(tenantNS))).To(Succeed())
	})

	It("is readable by edit and by the explicit conversations reader, who cannot write", func() {
		Expect(tenant.List(ctx, &igv1.InstagramMessageList{}, client.InNamespace(tenantNS))).To(Succeed())
		Expect(reader.Get(ctx, client.ObjectKey{Namespace: tenantNS, Name: "personal"}, &igv1.InstagramMessage{})).To(Succeed())
		err := reader.Create(ctx, outgoing("from-reader", nil))
		Expect(forbidden(err)).To(BeTrue(), "%v", err)
	})

	It("aggregates the viewer role into view and the editor role into edit and admin", func() {
		raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "user_roles.yaml"))
		Expect(err).NotTo(HaveOccurred())
		labels := map[string]map[string]string{}
		for _, doc := range splitDocs(raw) {
			role := &rbacv1.ClusterRole{}
			Expect(yaml.Unmarshal(doc, role)).To(Succeed())
			labels[role.Name] = role.Labels
		}
		Expect(labels["instagram-viewer-role"]).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-view", "true"))
		Expect(labels["instagram-editor-role"]).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-edit", "true"))
		Expect(labels["instagram-editor-role"]).To(HaveKeyWithValue("rbac.authorization.k8s.io/aggregate-to-admin", "true"))
		Expect(labels["instagram-conversations-reader-role"]).To(BeEmpty(), "the reader role is granted on purpose, never aggregated")
	})
})

var _ = Describe("the policies and the install", func() {
	It("name the ServiceAccounts the install creates", func() {
		raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "dist", "install.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var accounts []string
		for _, doc := range splitDocs(raw) {
			var o struct {
				Kind     string            `json:"kind"`
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			Expect(yaml.Unmarshal(doc, &o)).To(Succeed())
			if o.Kind == "ServiceAccount" {
				accounts = append(accounts, "system:serviceaccount:"+o.Metadata.Namespace+":"+o.Metadata.Name)
			}
		}
		Expect(accounts).To(ConsistOf(localenv.ServiceAccountUser("manager"), localenv.ServiceAccountUser("webhookserver")))
	})
})
