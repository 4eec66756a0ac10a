package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

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
	if os.Getenv("UPDATE_ARGOCD_TESTDATA") == "1" {
		recordTestdata(kind, u, health)
	}

	res, err := status.Compute(u)
	Expect(err).NotTo(HaveOccurred())
	return health, res.Status
}

// recordTestdata keeps a live object as Argo CD test data, so the health
// checks' tests (test/argocd) run on objects the operator really wrote:
// UPDATE_ARGOCD_TESTDATA=1 go test ./test/e2e, then commit.
func recordTestdata(kind string, u *unstructured.Unstructured, health argocdlua.Health) {
	dir := filepath.Join(testenv.RepoRoot(), "config", "argocd", "resource_customizations", "instagram.leadchat.io", kind)
	obj := u.DeepCopy()
	obj.SetManagedFields(nil)
	// Names and namespaces made random by the suite are made stable.
	if obj.GetNamespace() != "" {
		obj.SetNamespace("shop")
	}
	raw, err := yaml.Marshal(obj.Object)
	Expect(err).NotTo(HaveOccurred())
	if ns := u.GetNamespace(); ns != "" {
		raw = []byte(strings.ReplaceAll(string(raw), ns+"/", "shop/"))
	}
	input := filepath.Join("testdata", "e2e_"+strings.ToLower(string(health.Status))+"_"+u.GetName()+".yaml")
	header := "# Captured from the end-to-end suite: UPDATE_ARGOCD_TESTDATA=1 go test ./test/e2e\n"
	Expect(os.WriteFile(filepath.Join(dir, input), append([]byte(header), raw...), 0o644)).To(Succeed())

	// health_test.yaml keeps Argo CD's upstream layout: the entry for this
	// input is replaced, or appended, as text.
	testsPath := filepath.Join(dir, "health_test.yaml")
	b, err := os.ReadFile(testsPath)
	Expect(err).NotTo(HaveOccurred())
	var kept []string
	var block []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.HasPrefix(line, "  - ") && len(block) > 0 {
			kept = append(kept, block...)
			block = nil
		}
		if strings.HasPrefix(line, "  - ") || len(block) > 0 {
			block = append(block, line)
			if strings.TrimSpace(line) == "inputPath: "+input {
				block = nil // the old entry for this input goes
			}
			continue
		}
		kept = append(kept, line)
	}
	kept = append(kept, block...)
	// JSON quoting is valid YAML and keeps the message on one line.
	message, err := json.Marshal(health.Message)
	Expect(err).NotTo(HaveOccurred())
	kept = append(kept,
		"  - healthStatus:",
		"      status: "+string(health.Status),
		"      message: "+string(message),
		"    inputPath: "+input,
	)
	Expect(os.WriteFile(testsPath, []byte(strings.Join(kept, "\n")+"\n"), 0o644)).To(Succeed())
}
