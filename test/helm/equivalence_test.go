package helm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Settings under which the chart must render exactly what config/ renders:
// both ship publicURL empty, and the Prometheus objects of
// config/prometheus are the chart's metrics.* values.
var kustomizeEquivalentValues = map[string]any{
	"metrics": map[string]any{
		"serviceMonitor": map[string]any{"enabled": true},
		"prometheusRule": map[string]any{"enabled": true},
	},
}

// What may differ between the chart and config/ (docs/install.md lists the
// same): the chart adds Helm's labels to every object and a checksum of the
// settings ConfigMap to the pod templates (so a new publicURL rolls the
// pods), where config/settings generates the ConfigMap with a hash of its
// content in its name (so a new publicURL renames it and rolls the pods):
// the chart's is named without the hash; its CRDs are the files of
// config/crd/bases as they are (Helm does not template crds/), without the
// part-of label kustomize adds; it does not create the Namespace (helm
// install --create-namespace, see docs/install.md for its Pod Security
// label), and its helm test Pod is a hook. Everything else, every field of
// every object, must be equal.
var (
	helmOnlyLabels         = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}
	helmOnlyPodAnnotations = []string{"checksum/settings"}
	kustomizeOnlyKinds     = map[string]bool{"Namespace": true}
	kustomizeOnlyCRDLabels = []string{"app.kubernetes.io/part-of"}
	// The ConfigMaps of config/'s configMapGenerators, by the name the chart
	// gives them (without kustomize's content hash).
	generatedConfigMaps = []string{"instagram-operator-settings"}
)

// Cluster-scoped kinds kustomize v5.8.1 (kyaml v0.21.1, in kubectl and in
// test/helm) does not know, so it gives them config/default's namespace
// (dist/install.yaml has it too); the API server drops the namespace of a
// cluster-scoped object: not a difference of the chart.
var clusterScopedUnknownToKustomize = map[string]bool{
	"ValidatingAdmissionPolicy":        true,
	"ValidatingAdmissionPolicyBinding": true,
}

func TestChartRendersWhatConfigRenders(t *testing.T) {
	chartObjs := map[string]*unstructured.Unstructured{}
	for _, o := range mustRender(t, kustomizeEquivalentValues).objects {
		normalize(o)
		chartObjs[key(o)] = o
	}
	configObjs := map[string]*unstructured.Unstructured{}
	built := kustomizeBuild(t)
	unhashConfigMaps(built)
	for _, o := range built {
		if kustomizeOnlyKinds[o.GetKind()] {
			continue
		}
		if o.GetKind() == "CustomResourceDefinition" {
			dropLabels(o, kustomizeOnlyCRDLabels)
		}
		if clusterScopedUnknownToKustomize[o.GetKind()] {
			o.SetNamespace("")
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

// Only the generated ConfigMaps lose their hash, and every reference to
// them follows; any other name stays as it is.
func TestUnhashConfigMaps(t *testing.T) {
	objs, err := decode(`
kind: ConfigMap
metadata: {name: instagram-operator-settings-d97mgttf29}
---
kind: ConfigMap
metadata: {name: instagram-operator-other-d97mgttf29}
---
kind: Deployment
metadata: {name: instagram-operator-settings-d97mgttf29}
spec: {template: {spec: {containers: [{env: [
  {valueFrom: {configMapKeyRef: {name: instagram-operator-settings-d97mgttf29}}},
  {valueFrom: {configMapKeyRef: {name: instagram-operator-settings-d97mgttf2}}}]}]}}}
`)
	if err != nil {
		t.Fatal(err)
	}
	unhashConfigMaps(objs)
	want := `- kind: ConfigMap
  metadata:
    name: instagram-operator-settings
- kind: ConfigMap
  metadata:
    name: instagram-operator-other-d97mgttf29
- kind: Deployment
  metadata:
    name: instagram-operator-settings-d97mgttf29
  spec:
    template:
      spec:
        containers:
        - env:
          - valueFrom:
              configMapKeyRef:
                name: instagram-operator-settings
          - valueFrom:
              configMapKeyRef:
                name: instagram-operator-settings-d97mgttf2`
	var got []any
	for _, o := range objs {
		got = append(got, o.Object)
	}
	if diff := cmp.Diff(want, toYAML(t, got)); diff != "" {
		t.Errorf("unhashConfigMaps (-want +got):\n%s", diff)
	}
}

// unhashConfigMaps names the ConfigMaps of generatedConfigMaps without the
// content hash kustomize appends (-<10 characters>), in the ConfigMaps
// themselves and in every configMapKeyRef to them.
func unhashConfigMaps(objs []*unstructured.Unstructured) {
	renamed := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "ConfigMap" {
			continue
		}
		for _, base := range generatedConfigMaps {
			if hash, ok := strings.CutPrefix(o.GetName(), base+"-"); ok && len(hash) == 10 {
				renamed[o.GetName()] = base
				o.SetName(base)
			}
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["configMapKeyRef"].(map[string]any); ok {
				if name, ok := ref["name"].(string); ok && renamed[name] != "" {
					ref["name"] = renamed[name]
				}
			}
			for _, sub := range v {
				walk(sub)
			}
		case []any:
			for _, sub := range v {
				walk(sub)
			}
		}
	}
	for _, o := range objs {
		walk(o.Object)
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
