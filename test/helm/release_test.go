package helm_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
)

// The local control plane's version (hack/tools builds kube-apiserver v1.36).
var kubeVersion = &chartutil.KubeVersion{Version: "v1.36.3", Major: "1", Minor: "36"}

func readVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// One release everywhere: VERSION, the chart, and the images of config/.
func TestReleaseVersionAgrees(t *testing.T) {
	version := readVersion(t)
	if !strings.HasPrefix(version, "v") {
		t.Fatalf("VERSION %q must start with v (it is the image tag)", version)
	}
	ch := loadChart(t)
	if ch.Metadata.AppVersion != version {
		t.Errorf("Chart.yaml appVersion %q, VERSION %q", ch.Metadata.AppVersion, version)
	}
	if want := strings.TrimPrefix(version, "v"); ch.Metadata.Version != want {
		t.Errorf("Chart.yaml version %q, want %q (VERSION without v)", ch.Metadata.Version, want)
	}
	for _, dir := range []string{"manager", "webhookserver"} {
		k := readYAML(t, filepath.Join(repoRoot, "config", dir, "kustomization.yaml"))
		images, _ := k["images"].([]any)
		if len(images) != 1 {
			t.Fatalf("config/%s: images = %v", dir, k["images"])
		}
		img := images[0].(map[string]any)
		if img["newTag"] != version {
			t.Errorf("config/%s image tag %v, VERSION %s", dir, img["newTag"], version)
		}
	}
}

// crds/ and files/ are copies `make chart` makes; stale copies fail here.
func TestChartCopiesAreFresh(t *testing.T) {
	copies := map[string]string{
		"files/manager-role.yaml":       "config/rbac/role.yaml",
		"files/webhookserver-role.yaml": "config/rbac/webhookserver/role.yaml",
		"files/prometheus-rules.yaml":   "config/prometheus/rules.yaml",
		"files/user-roles.yaml":         "config/rbac/user_roles.yaml",
		// The admission policies: config/admission minus its kustomization.
		"files/admission-secret-writes.yaml":  "config/admission/secret_writes.yaml",
		"files/admission-trusted-writes.yaml": "config/admission/trusted_writes.yaml",
	}
	admission, _ := filepath.Glob(filepath.Join(repoRoot, "config", "admission", "*.yaml"))
	if len(admission) != 3 {
		t.Errorf("config/admission has %d files, the chart copies 2 and the kustomization: update make chart, templates/admission.yaml and this test", len(admission))
	}
	inFiles, _ := filepath.Glob(filepath.Join(chartDir, "files", "*"))
	for _, f := range inFiles {
		if _, ok := copies[filepath.Join("files", filepath.Base(f))]; !ok {
			t.Errorf("charts/instagram-operator/files/%s is a copy of nothing: run make chart", filepath.Base(f))
		}
	}
	bases, err := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	for _, b := range bases {
		copies[filepath.Join("crds", filepath.Base(b))] = filepath.Join("config", "crd", "bases", filepath.Base(b))
	}
	inChart, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*"))
	if len(inChart) != len(bases) {
		t.Errorf("chart has %d CRDs, config/crd/bases %d: run make chart", len(inChart), len(bases))
	}
	for dst, src := range copies {
		want, err := os.ReadFile(filepath.Join(repoRoot, src))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(chartDir, dst))
		if err != nil {
			t.Errorf("%s: %v (run make chart)", dst, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("charts/instagram-operator/%s differs from %s: run make chart", dst, src)
		}
	}
}
