package e2e

import (
	"context"
	"os"
	"path/filepath"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/leadchat/instagram-operator/internal/argocdlua"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

// liveHealth reads an object as Argo CD and kstatus see it and returns the
// Argo CD health (from the shipped Lua) and the kstatus status.
func liveHealth(ctx context.Context, kind string, key client.ObjectKey) (argocdlua.Health, status.Status) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "instagram.leadchat.io", Version: "v1alpha1", Kind: kind})
	Expect(k8sClient.Get(ctx, key, u)).To(Succeed())

	script, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "argocd", "resource_customizations", "instagram.leadchat.io", kind, "health.lua"))
	Expect(err).NotTo(HaveOccurred())
	// Through JSON, as Argo CD hands objects to Lua: numbers are float64.
	raw, err := u.MarshalJSON()
	Expect(err).NotTo(HaveOccurred())
	obj := map[string]any{}
	Expect(jsonUnmarshal(raw, &obj)).To(Succeed())
	health, err := argocdlua.VM{}.Health(string(script), obj)
	Expect(err).NotTo(HaveOccurred())

	res, err := status.Compute(u)
	Expect(err).NotTo(HaveOccurred())
	return health, res.Status
}
