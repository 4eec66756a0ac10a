package localenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/leadchat/instagram-operator/internal/testenv"
)

// kubeconfigFor gives a binary an identity of its own, bound to the
// ClusterRole generated for it in config/rbac, so the binaries run here with
// exactly the permissions the install bundle grants them: a missing verb
// fails the end-to-end suite instead of a real cluster. (The control plane
// authorizes with RBAC; the admin kubeconfig is only for the tests.)
func (e *Env) kubeconfigFor(ctx context.Context, name, roleFile string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", roleFile))
	if err != nil {
		return "", err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		return "", fmt.Errorf("%s: %w", roleFile, err)
	}
	if err := e.Client.Create(ctx, role); err != nil {
		return "", fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
	}
	user := "system:serviceaccount:" + SystemNamespace + ":" + name
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if err := e.Client.Create(ctx, binding); err != nil {
		return "", fmt.Errorf("bind ClusterRole %s: %w", role.Name, err)
	}
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
