package helm_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Settings under which the chart must render exactly what config/ renders:
// config/manager ships publicURL https://hooks.example.com, and the
// Prometheus objects of config/prometheus are the chart's metrics.* values.
var kustomizeEquivalentValues = map[string]any{
	"publicURL": "https://hooks.example.com",
	"metrics": map[string]any{
		"serviceMonitor": map[string]any{"enabled": true},
		"prometheusRule": map[string]any{"enabled": true},
	},
}

// What may differ between the chart and config/ (docs/install.md lists the
// same): the chart adds Helm's labels to every object and a checksum of the
// settings ConfigMap to the pod templates (so a new publicURL rolls the
// pods); its CRDs are the files of config/crd/bases as they are (Helm does
// not template crds/), without the part-of label kustomize adds; it does not
// create the Namespace (helm install --create-namespace,
// see docs/install.md for its Pod Security label), and its helm test Pod is a
// hook. Everything else, every field of every object, must be equal.
var (
	helmOnlyLabels         = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}
	helmOnlyPodAnnotations = []string{"checksum/settings"}
	kustomizeOnlyKinds     = map[string]bool{"Namespace": true}
	kustomizeOnlyCRDLabels = []string{"app.kubernetes.io/part-of"}
	// kustomize's built-in schema predates ValidatingAdmissionPolicy, so its
	// namespace transformer gives these cluster-scoped objects a namespace,
	// which the API server drops; the chart renders none.
	clusterScopedUnknownToKustomize = map[string]bool{"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true}
)

func TestChartRendersWhatConfigRenders(t *testing.T) {
	chartObjs := map[string]*unstructured.Unstructured{}
	for _, o := range mustRender(t, kustomizeEquivalentValues).objects {
		normalize(o)
		chartObjs[key(o)] = o
	}
	configObjs := map[string]*unstructured.Unstructured{}
	for _, o := range kustomizeBuild(t) {
		if kustomizeOnlyKinds[o.GetKind()] {
			continue
		}
		if o.GetKind() == "CustomResourceDefinition" {
			dropLabels(o, kustomizeOnlyCRDLabels)
		}
		if clusterScopedUnknownToKustomize[o.GetKind()] {
			unstructured.RemoveNestedField(o.Object, "metadata", "namespace")
		}
		configObjs[key(o)] = o
	}
	if diff := cmp.Diff(sortedKeys(configObjs), sortedKeys(chartObjs)); diff != "" {
		t.Errorf("objects of config/ (-) and of the chart (+) differ:\n%s", diff)
	}
	for k, want := range configObjs {
		got, ok := chartObjs[k]
		if !ok {
			continue
		}
		if diff := cmp.Diff(want.Object, got.Object); diff != "" {
			t.Errorf("%s: config/ (-) and chart (+) differ:\n%s", k, diff)
		}
	}
}

// The test compares something: a chart that drops a field fails it.
func TestNormalizeKeepsDifferences(t *testing.T) {
	a := &unstructured.Unstructured{Object: map[string]any{"kind": "Deployment", "metadata": map[string]any{
		"name": "x", "labels": map[string]any{"helm.sh/chart": "c", "app.kubernetes.io/component": "manager"}}}}
	normalize(a)
	want := map[string]any{"kind": "Deployment", "metadata": map[string]any{"name": "x", "labels": map[string]any{"app.kubernetes.io/component": "manager"}}}
	if diff := cmp.Diff(want, a.Object); diff != "" {
		t.Errorf("normalize (-want +got):\n%s", diff)
	}
}

// normalize removes what the chart may add (see helmOnlyLabels).
func normalize(o *unstructured.Unstructured) {
	dropLabels(o, helmOnlyLabels)
	annotations, found, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "annotations")
	if found {
		for _, a := range helmOnlyPodAnnotations {
			delete(annotations, a)
		}
		if len(annotations) == 0 {
			unstructured.RemoveNestedField(o.Object, "spec", "template", "metadata", "annotations")
		} else {
			_ = unstructured.SetNestedStringMap(o.Object, annotations, "spec", "template", "metadata", "annotations")
		}
	}
}

// kustomizeBuild is `kubectl kustomize config/default` plus, unless
// config/default already includes them, the objects of config/prometheus
// under config/default's namespace, name prefix and labels (the bundle
// leaves them out until the Prometheus Operator's CRDs exist).
func kustomizeBuild(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	objs := kustomize(t, filepath.Join(root, "config", "default"))
	for _, o := range objs {
		if o.GetKind() == "ServiceMonitor" || o.GetKind() == "PrometheusRule" {
			return objs
		}
	}

	defaults := readYAML(t, filepath.Join(root, "config", "default", "kustomization.yaml"))
	dir := t.TempDir()
	// kustomize takes only relative paths to other kustomizations.
	prometheus, err := filepath.Rel(dir, filepath.Join(root, "config", "prometheus"))
	if err != nil {
		t.Fatal(err)
	}
	overlay := map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
	}
	if readYAML(t, filepath.Join(root, "config", "prometheus", "kustomization.yaml"))["kind"] == "Component" {
		overlay["components"] = []string{prometheus}
	} else {
		overlay["resources"] = []string{prometheus}
	}
	for _, field := range []string{"namespace", "namePrefix", "labels", "commonLabels"} {
		if v, ok := defaults[field]; ok {
			overlay[field] = v
		}
	}
	data, err := yaml.Marshal(overlay)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return append(objs, kustomize(t, dir)...)
}

func kustomize(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), path)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", path, err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(string(out))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func dropLabels(o *unstructured.Unstructured, drop []string) {
	labels := o.GetLabels()
	for _, l := range drop {
		delete(labels, l)
	}
	if len(labels) == 0 {
		unstructured.RemoveNestedField(o.Object, "metadata", "labels")
	} else {
		o.SetLabels(labels)
	}
}

func sortedKeys(m map[string]*unstructured.Unstructured) []string {
	var objs []*unstructured.Unstructured
	for _, o := range m {
		objs = append(objs, o)
	}
	return keys(objs)
}
