// Package helm_test tests charts/instagram-operator with the Helm Go SDK:
// lint, render, schema, equivalence with config/ (kustomize) and a
// server-side dry run against a local control plane. No helm binary, no
// network.
package helm_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	// The documented release: its name gives the object names config/default gives.
	releaseName = "instagram-operator"
	namespace   = "instagram-operator-system"
)

var (
	repoRoot = filepath.Join("..", "..")
	chartDir = filepath.Join(repoRoot, "charts", "instagram-operator")
)

// rendered is what an install of the chart would send to the API server.
type rendered struct {
	// objects are the CRDs and templates, in the order Helm would apply them.
	objects []*unstructured.Unstructured
	// hooks are the helm test Pods and other hooks.
	hooks []*unstructured.Unstructured
	notes string
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

// render installs the chart client-only (helm template --include-crds).
func render(t *testing.T, values map[string]any) (rendered, error) {
	t.Helper()
	return renderIn(t, namespace, values)
}

// renderIn renders the chart into another release namespace.
func renderIn(t *testing.T, ns string, values map[string]any) (rendered, error) {
	t.Helper()
	cfg := &action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: chartutil.DefaultCapabilities,
	}
	install := action.NewInstall(cfg)
	install.DryRun = true
	install.ClientOnly = true
	install.IncludeCRDs = true
	install.ReleaseName = releaseName
	install.Namespace = ns
	install.Replace = true
	// The version of the local control plane (hack/tools builds it); Helm's
	// client-only default is older than the chart's kubeVersion.
	install.KubeVersion = kubeVersion
	rel, err := install.Run(loadChart(t), values)
	if err != nil {
		return rendered{}, err
	}
	out := rendered{notes: rel.Info.Notes}
	if out.objects, err = decode(rel.Manifest); err != nil {
		return rendered{}, err
	}
	for _, h := range rel.Hooks {
		objs, err := decode(h.Manifest)
		if err != nil {
			return rendered{}, fmt.Errorf("hook %s: %w", h.Path, err)
		}
		out.hooks = append(out.hooks, objs...)
	}
	return out, nil
}

func mustRender(t *testing.T, values map[string]any) rendered {
	t.Helper()
	r, err := render(t, values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

func mustRenderIn(t *testing.T, ns string, values map[string]any) rendered {
	t.Helper()
	r, err := renderIn(t, ns, values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// crdName reads the group and plural of a CRD file.
func crdName(t *testing.T, path string) (group, plural string) {
	t.Helper()
	crd := &unstructured.Unstructured{Object: readYAML(t, path)}
	group, _, _ = unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ = unstructured.NestedString(crd.Object, "spec", "names", "plural")
	if group == "" || plural == "" {
		t.Fatalf("%s: no spec.group or spec.names.plural", path)
	}
	return group, plural
}

// decode splits a multi-document YAML stream into objects.
func decode(manifest string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// key names an object the way the API server does.
func key(u *unstructured.Unstructured) string {
	return fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
}

func keys(objs []*unstructured.Unstructured) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, key(o))
	}
	sort.Strings(ks)
	return ks
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among %v", kind, name, keys(objs))
	return nil
}

// container returns the only container of a Deployment.
func container(t *testing.T, deploy *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("%s has %d containers, want 1", key(deploy), len(cs))
	}
	return cs[0].(map[string]any)
}

// readYAML reads a YAML file into a map.
func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func toYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}
