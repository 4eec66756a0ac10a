package helm_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// assetsDir is where `make envtest` puts kube-apiserver and etcd.
func assetsDir(t *testing.T) string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	dir, err := filepath.Abs(filepath.Join(repoRoot, "bin", "k8s"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// The rendered chart, with the defaults and with every option, passes a
// server-side dry run against a real kube-apiserver: every object is valid
// as the API server sees it (schemas, defaulting, admission), not only as
// YAML. The chart's own CRDs are installed first, as Helm installs crds/.
func TestServerDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a control plane (make envtest)")
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(chartDir, "crds"), filepath.Join("testdata", "monitoring-crds.yaml")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assetsDir(t),
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start control plane (make envtest builds it): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Labelled as docs/install.md says, so Pod Security admission holds the
	// helm test Pod to the restricted profile.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}

	for name, values := range map[string]map[string]any{
		"defaults":     nil,
		"every option": everyOption(t),
		"as config/":   kustomizeEquivalentValues,
		// The admission policies with the names put in (every option turns them off).
		"other names": {"fullnameOverride": "acme-ig", "publicURL": "https://hooks.acme.test"},
	} {
		t.Run(name, func(t *testing.T) {
			r := mustRender(t, values)
			var n int
			for _, o := range append(r.objects, r.hooks...) {
				if o.GetKind() == "CustomResourceDefinition" {
					// Installed above from crds/; a dry run of them would only repeat it.
					continue
				}
				if err := c.Create(ctx, o.DeepCopy(), client.DryRunAll); err != nil {
					t.Errorf("dry run of %s: %v", key(o), err)
				}
				n++
			}
			if n < 15 {
				t.Errorf("only %d objects dry-run", n)
			}
		})
	}

	// The dry run is a real check: an invalid object is refused.
	bad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "broken", "namespace": namespace},
		"spec":     map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"a": "b"}}},
	}}
	if err := c.Create(ctx, bad, client.DryRunAll); err == nil {
		t.Error("dry run accepted a Deployment without a pod template")
	}
}
