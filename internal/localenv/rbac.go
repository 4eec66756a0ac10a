package localenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/leadchat/instagram-operator/internal/testenv"
)

// InstallPrefix is the name prefix config/default gives every object, the
// ServiceAccounts included; the admission policies name the ServiceAccounts
// by these names.
const InstallPrefix = "instagram-operator-"

// ServiceAccountUser is the username of a binary's ServiceAccount in the
// install ("manager", "webhookserver").
func ServiceAccountUser(name string) string {
	return "system:serviceaccount:" + SystemNamespace + ":" + InstallPrefix + name
}

// kubeconfigFor gives a binary the identity of its ServiceAccount in the
// install, bound to the roles generated for it in config/rbac, so the
// binaries run here with exactly the permissions the install bundle grants
// them: a missing verb fails the end-to-end suite instead of a real cluster.
// (The control plane authorizes with RBAC; the admin kubeconfig is only for
// the tests.)
func (e *Env) kubeconfigFor(ctx context.Context, name, roleFile string) (string, error) {
	if err := BindGeneratedRoles(ctx, e.Client, name, roleFile); err != nil {
		return "", err
	}
	user := ServiceAccountUser(name)
	au, err := e.testEnv.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		return "", err
	}
	b, err := au.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(e.opts.Dir, name+".kubeconfig")
	return path, os.WriteFile(path, b, 0o600)
}

// BindGeneratedRoles creates the roles generated into config/rbac/roleFile
// (a ClusterRole, and Roles in the operator's namespace) and binds them to
// ServiceAccountUser(name), as the install bundle does.
func BindGeneratedRoles(ctx context.Context, c client.Client, name, roleFile string) error {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", roleFile))
	if err != nil {
		return err
	}
	user := ServiceAccountUser(name)
	subjects := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}}
	docs, err := splitYAML(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", roleFile, err)
	}
	for _, doc := range docs {
		var typ metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &typ); err != nil {
			return fmt.Errorf("%s: %w", roleFile, err)
		}
		switch typ.Kind {
		case "ClusterRole":
			role := &rbacv1.ClusterRole{}
			if err := yaml.Unmarshal(doc, role); err != nil {
				return fmt.Errorf("%s: %w", roleFile, err)
			}
			if err := c.Create(ctx, role); err != nil {
				return fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
			}
			if err := c.Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: role.Name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
				Subjects:   subjects,
			}); err != nil {
				return fmt.Errorf("bind ClusterRole %s: %w", role.Name, err)
			}
		case "Role":
			// The generated Roles are in the placeholder namespace that
			// kustomize renames to the operator's.
			role := &rbacv1.Role{}
			if err := yaml.Unmarshal(doc, role); err != nil {
				return fmt.Errorf("%s: %w", roleFile, err)
			}
			role.Namespace = SystemNamespace
			if err := c.Create(ctx, role); err != nil {
				return fmt.Errorf("create Role %s: %w", role.Name, err)
			}
			if err := c.Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: SystemNamespace},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
				Subjects:   subjects,
			}); err != nil {
				return fmt.Errorf("bind Role %s: %w", role.Name, err)
			}
		default:
			return fmt.Errorf("%s: unexpected kind %q", roleFile, typ.Kind)
		}
	}
	return nil
}

// InstallAdmissionPolicies creates the ValidatingAdmissionPolicies and
// their bindings of the install bundle (dist/install.yaml), exactly as
// shipped.
func InstallAdmissionPolicies(ctx context.Context, c client.Client) error {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "dist", "install.yaml"))
	if err != nil {
		return err
	}
	docs, err := splitYAML(raw)
	if err != nil {
		return fmt.Errorf("dist/install.yaml: %w", err)
	}
	n := 0
	for _, doc := range docs {
		var typ metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &typ); err != nil {
			return err
		}
		var obj client.Object
		switch typ.Kind {
		case "ValidatingAdmissionPolicy":
			obj = &admissionv1.ValidatingAdmissionPolicy{}
		case "ValidatingAdmissionPolicyBinding":
			obj = &admissionv1.ValidatingAdmissionPolicyBinding{}
		default:
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return fmt.Errorf("%s: %w", typ.Kind, err)
		}
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %s %s: %w", typ.Kind, obj.GetName(), err)
		}
		n++
	}
	if n == 0 {
		return errors.New("dist/install.yaml holds no admission policy")
	}
	return nil
}

func splitYAML(raw []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 || bytes.Equal(bytes.TrimSpace(doc), []byte("---")) {
			continue
		}
		docs = append(docs, doc)
	}
}
