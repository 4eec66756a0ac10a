package helm_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/lint/support"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func everyOption(t *testing.T) map[string]any {
	t.Helper()
	return readYAML(t, filepath.Join("testdata", "every-option.yaml"))
}

func TestLint(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"defaults":     nil,
		"every option": everyOption(t),
	} {
		t.Run(name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = namespace
			lint.KubeVersion = kubeVersion
			result := lint.Run([]string{chartDir}, values)
			for _, err := range result.Errors {
				t.Errorf("lint: %v", err)
			}
			for _, msg := range result.Messages {
				// INFO is only "icon is recommended".
				if msg.Severity > support.InfoSev {
					t.Errorf("lint: %s", msg)
				}
			}
		})
	}
}

func TestDefaultRender(t *testing.T) {
	r := mustRender(t, nil)
	want := []string{
		"ClusterRole /instagram-operator-instagram-conversations-reader-role",
		"ClusterRole /instagram-operator-instagram-editor-role",
		"ClusterRole /instagram-operator-instagram-viewer-role",
		"ClusterRole /instagram-operator-manager-role",
		"ClusterRole /instagram-operator-webhookserver-role",
		"ClusterRoleBinding /instagram-operator-manager-rolebinding",
		"ClusterRoleBinding /instagram-operator-webhookserver-rolebinding",
		"ConfigMap instagram-operator-system/instagram-operator-settings",
	}
	// Every CRD of config/crd/bases, as make chart copies them.
	bases, err := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) < 5 {
		t.Fatalf("CRDs of config/crd/bases: %v %v", bases, err)
	}
	for _, b := range bases {
		group, plural := crdName(t, b)
		want = append(want, "CustomResourceDefinition /"+plural+"."+group)
	}
	want = append(want,
		"Deployment instagram-operator-system/instagram-operator-manager",
		"Deployment instagram-operator-system/instagram-operator-webhookserver",
		"NetworkPolicy instagram-operator-system/instagram-operator-manager-metrics",
		"NetworkPolicy instagram-operator-system/instagram-operator-webhookserver-public",
		"PodDisruptionBudget instagram-operator-system/instagram-operator-webhookserver",
		"Role instagram-operator-system/instagram-operator-leader-election-role",
		"Role instagram-operator-system/instagram-operator-webhookserver-role",
		"RoleBinding instagram-operator-system/instagram-operator-leader-election-rolebinding",
		"RoleBinding instagram-operator-system/instagram-operator-webhookserver-rolebinding",
		"Service instagram-operator-system/instagram-operator-manager-metrics",
		"Service instagram-operator-system/instagram-operator-webhookserver",
		"Service instagram-operator-system/instagram-operator-webhookserver-metrics",
		"ServiceAccount instagram-operator-system/instagram-operator-manager",
		"ServiceAccount instagram-operator-system/instagram-operator-webhookserver",
		"ValidatingAdmissionPolicy /instagram-operator-secret-writes",
		"ValidatingAdmissionPolicy /instagram-operator-trusted-writes",
		"ValidatingAdmissionPolicyBinding /instagram-operator-secret-writes",
		"ValidatingAdmissionPolicyBinding /instagram-operator-trusted-writes",
	)
	sort.Strings(want)
	if diff := cmp.Diff(want, keys(r.objects)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Pod instagram-operator-system/instagram-operator-test-receiver"}, keys(r.hooks)); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	version := readVersion(t)
	for _, name := range []string{"instagram-operator-manager", "instagram-operator-webhookserver"} {
		c := container(t, find(t, r.objects, "Deployment", name))
		if got, want := c["image"], "ghcr.io/leadchat/instagram-operator:"+version; got != want {
			t.Errorf("%s image = %v, want %s", name, got, want)
		}
	}
	if !strings.Contains(r.notes, `networkPolicy.metricsNamespaceSelector {"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}`) {
		t.Errorf("notes do not say who may scrape metrics:\n%s", r.notes)
	}
	// Empty publicURL: the notes say what is missing instead of URLs that are wrong.
	if !strings.Contains(r.notes, "WARNING: publicURL is empty") || strings.Contains(r.notes, "/webhooks/instagram") {
		t.Errorf("notes without publicURL:\n%s", r.notes)
	}
}

func TestNotesPrintMetaDashboardURLs(t *testing.T) {
	r := mustRender(t, map[string]any{"publicURL": "https://hooks.acme.test/"})
	for _, want := range []string{
		"Configure webhooks > Callback URL:\n    https://hooks.acme.test/webhooks/instagram\n",
		"OAuth redirect URIs:\n    https://hooks.acme.test/instagram/callback\n",
		"helm test instagram-operator -n instagram-operator-system",
	} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("notes lack %q:\n%s", want, r.notes)
		}
	}
	if strings.Contains(r.notes, "WARNING") {
		t.Errorf("notes warn with publicURL set:\n%s", r.notes)
	}
}

// Every value does what its name says, checked on the objects.
func TestEveryOptionRenders(t *testing.T) {
	r := mustRender(t, everyOption(t))
	manager := find(t, r.objects, "Deployment", "acme-ig-manager")
	receiver := find(t, r.objects, "Deployment", "acme-ig-webhookserver")
	digestRef := "registry.acme.test/mirror/instagram-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	checks := []struct {
		obj  *unstructured.Unstructured
		path []string
		want any
	}{
		{manager, []string{"spec", "replicas"}, float64(2)},
		{receiver, []string{"spec", "replicas"}, float64(3)},
		{manager, []string{"metadata", "labels", "app.kubernetes.io/name"}, "igop"},
		{manager, []string{"spec", "template", "metadata", "labels", "acme.test/cost-center"}, "42"},
		{manager, []string{"spec", "template", "metadata", "annotations", "acme.test/team"}, "platform"},
		{manager, []string{"spec", "template", "spec", "nodeSelector", "kubernetes.io/os"}, "linux"},
		{manager, []string{"spec", "template", "spec", "priorityClassName"}, "system-cluster-critical"},
		{manager, []string{"spec", "template", "spec", "securityContext", "runAsUser"}, float64(65532)},
		{receiver, []string{"spec", "template", "spec", "nodeSelector", "node-role.acme.test/edge"}, "true"},
		{find(t, r.objects, "ServiceAccount", "acme-ig-manager"), []string{"metadata", "annotations", "acme.test/role"}, "manager"},
		{find(t, r.objects, "ServiceAccount", "acme-ig-webhookserver"), []string{"metadata", "annotations", "acme.test/role"}, "receiver"},
		{find(t, r.objects, "PodDisruptionBudget", "acme-ig-manager"), []string{"spec", "minAvailable"}, "50%"},
		{find(t, r.objects, "ConfigMap", "acme-ig-settings"), []string{"data", "publicURL"}, "https://hooks.acme.test/instagram/"},
		{find(t, r.objects, "Service", "acme-ig-webhookserver"), []string{"spec", "type"}, "LoadBalancer"},
		{find(t, r.objects, "Service", "acme-ig-webhookserver"), []string{"spec", "ports"}, []any{map[string]any{"name": "public", "port": float64(8443), "targetPort": "public"}}},
		{find(t, r.objects, "Service", "acme-ig-webhookserver-metrics"), []string{"spec", "ports"}, []any{map[string]any{"name": "metrics", "port": float64(9091), "targetPort": "metrics"}}},
		{find(t, r.objects, "Service", "acme-ig-manager-metrics"), []string{"spec", "ports"}, []any{map[string]any{"name": "metrics", "port": float64(9090), "targetPort": "metrics"}}},
		{find(t, r.objects, "Ingress", "acme-ig-webhookserver"), []string{"spec", "ingressClassName"}, "nginx"},
		{find(t, r.objects, "Ingress", "acme-ig-webhookserver"), []string{"spec", "tls"}, []any{map[string]any{"hosts": []any{"hooks-ingress.acme.test"}, "secretName": "hooks-tls"}}},
		{find(t, r.objects, "ServiceMonitor", "acme-ig-manager"), []string{"metadata", "labels", "release"}, "kube-prometheus-stack"},
		{find(t, r.objects, "PrometheusRule", "acme-ig-alerts"), []string{"metadata", "labels", "release"}, "kube-prometheus-stack"},
		{find(t, r.hooks, "Pod", "acme-ig-test-receiver"), []string{"metadata", "annotations", "helm.sh/hook"}, "test"},
	}
	for _, c := range checks {
		got, found, err := unstructured.NestedFieldNoCopy(c.obj.Object, c.path...)
		if err != nil || !found {
			t.Errorf("%s: no %s", key(c.obj), strings.Join(c.path, "."))
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s %s (-want +got):\n%s", key(c.obj), strings.Join(c.path, "."), diff)
		}
	}

	mc := container(t, manager)
	if mc["image"] != digestRef || mc["imagePullPolicy"] != "Always" {
		t.Errorf("manager image %v %v, want %s Always", mc["image"], mc["imagePullPolicy"], digestRef)
	}
	if diff := cmp.Diff([]any{"--leader-elect", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081",
		"--public-url=$(PUBLIC_URL)", "--cluster-resource-namespace=platform-secrets", "--zap-log-level=debug", "--resync-interval=5m"}, mc["args"]); diff != "" {
		t.Errorf("manager args (-want +got):\n%s", diff)
	}
	if env := toYAML(t, mc["env"]); !strings.Contains(env, "name: HTTPS_PROXY") || !strings.Contains(env, "name: acme-ig-settings") {
		t.Errorf("manager env:\n%s", env)
	}
	rc := container(t, receiver)
	if diff := cmp.Diff([]any{"--bind-address=:8443", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081",
		"--public-url=$(PUBLIC_URL)", "--cluster-resource-namespace=platform-secrets", "--max-body-bytes=2097152"}, rc["args"]); diff != "" {
		t.Errorf("receiver args (-want +got):\n%s", diff)
	}
	if env := toYAML(t, rc["env"]); !strings.Contains(env, "name: GOMEMLIMIT") {
		t.Errorf("receiver env:\n%s", env)
	}
	if got := toYAML(t, rc["resources"]); got != "limits:\n  memory: 384Mi\nrequests:\n  cpu: 200m\n  memory: 128Mi" {
		t.Errorf("receiver resources:\n%s", got)
	}
	if got, _, _ := unstructured.NestedSlice(receiver.Object, "spec", "template", "spec", "topologySpreadConstraints"); len(got) != 1 {
		t.Errorf("receiver topologySpreadConstraints = %v", got)
	}
	if got := toYAML(t, manager.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["tolerations"]); !strings.Contains(got, "value: platform") {
		t.Errorf("manager tolerations:\n%s", got)
	}
	for _, kind := range []string{"NetworkPolicy"} {
		for _, o := range r.objects {
			if o.GetKind() == kind {
				t.Errorf("networkPolicy.enabled=false still renders %s", key(o))
			}
		}
	}
	for _, o := range r.objects {
		if strings.HasSuffix(o.GetName(), "-viewer-role") || strings.HasSuffix(o.GetName(), "-editor-role") {
			t.Errorf("rbac.aggregateToUserRoles=false still renders %s", key(o))
		}
		if o.GetKind() == "PodDisruptionBudget" && o.GetName() == "acme-ig-webhookserver" {
			t.Errorf("webhookserver.podDisruptionBudget.enabled=false still renders %s", key(o))
		}
		if strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") {
			t.Errorf("admissionPolicies.enabled=false still renders %s", key(o))
		}
	}
	// Not aggregated: installed whatever rbac.aggregateToUserRoles says.
	find(t, r.objects, "ClusterRole", "acme-ig-instagram-conversations-reader-role")
	ing := find(t, r.objects, "Ingress", "acme-ig-webhookserver")
	if got := toYAML(t, ing.Object["spec"].(map[string]any)["rules"]); !strings.Contains(got, "path: /webhooks/instagram") ||
		!strings.Contains(got, "path: /instagram/callback") || !strings.Contains(got, "name: acme-ig-webhookserver") {
		t.Errorf("ingress rules:\n%s", got)
	}
	hook := container(t, &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"template": find(t, r.hooks, "Pod", "acme-ig-test-receiver").Object}}})
	if hook["image"] != "registry.acme.test/mirror/busybox:1.36.1" || !strings.Contains(toYAML(t, hook["args"]), "http://acme-ig-webhookserver:8443/webhooks/instagram") {
		t.Errorf("test hook container:\n%s", toYAML(t, hook))
	}
}

// Under another release name and namespace, the admission policies name
// the release's ServiceAccounts and namespace, and nothing of config/'s.
func TestAdmissionPoliciesNameTheRelease(t *testing.T) {
	r := mustRenderIn(t, "acme-ops", map[string]any{"fullnameOverride": "acme-ig"})
	var manager, receiver string
	for _, o := range r.objects {
		if o.GetKind() == "ServiceAccount" {
			user := "system:serviceaccount:" + o.GetNamespace() + ":" + o.GetName()
			switch o.GetName() {
			case "acme-ig-manager":
				manager = user
			case "acme-ig-webhookserver":
				receiver = user
			}
		}
	}
	if manager != "system:serviceaccount:acme-ops:acme-ig-manager" || receiver != "system:serviceaccount:acme-ops:acme-ig-webhookserver" {
		t.Fatalf("ServiceAccounts %q %q", manager, receiver)
	}
	secrets := toYAML(t, find(t, r.objects, "ValidatingAdmissionPolicy", "acme-ig-secret-writes").Object)
	trusted := toYAML(t, find(t, r.objects, "ValidatingAdmissionPolicy", "acme-ig-trusted-writes").Object)
	for _, want := range []string{"'" + manager + "'", "'" + receiver + "'", `expression: '''acme-ops'''`} {
		if !strings.Contains(secrets, want) {
			t.Errorf("secret-writes lacks %s:\n%s", want, secrets)
		}
	}
	for _, want := range []string{"'" + manager + "'", "'" + receiver + "'"} {
		if !strings.Contains(trusted, want) {
			t.Errorf("trusted-writes lacks %s:\n%s", want, trusted)
		}
	}
	for _, o := range r.objects {
		if spec := toYAML(t, o.Object["spec"]); strings.HasPrefix(o.GetKind(), "ValidatingAdmissionPolicy") && strings.Contains(spec, "instagram-operator-") {
			t.Errorf("%s still names config/'s namespace or accounts:\n%s", key(o), spec)
		}
	}
	for _, name := range []string{"acme-ig-secret-writes", "acme-ig-trusted-writes"} {
		if got, _, _ := unstructured.NestedString(find(t, r.objects, "ValidatingAdmissionPolicyBinding", name).Object, "spec", "policyName"); got != name {
			t.Errorf("binding %s binds policy %q", name, got)
		}
	}
}

func TestLeaderElectionOff(t *testing.T) {
	r := mustRender(t, map[string]any{"leaderElection": map[string]any{"enabled": false}})
	args := container(t, find(t, r.objects, "Deployment", "instagram-operator-manager"))["args"].([]any)
	if slices.Contains(args, any("--leader-elect")) {
		t.Errorf("leaderElection.enabled=false: args %v", args)
	}
	_, err := render(t, map[string]any{"leaderElection": map[string]any{"enabled": false}, "manager": map[string]any{"replicas": 2}})
	if err == nil || !strings.Contains(err.Error(), "manager.replicas > 1 needs leaderElection.enabled") {
		t.Errorf("two managers without leader election: err = %v", err)
	}
}

func TestIngressNeedsAHost(t *testing.T) {
	_, err := render(t, map[string]any{"ingress": map[string]any{"enabled": true}})
	if err == nil || !strings.Contains(err.Error(), "ingress.enabled needs ingress.host or publicURL") {
		t.Errorf("err = %v", err)
	}
	r := mustRender(t, map[string]any{"ingress": map[string]any{"enabled": true}, "publicURL": "https://hooks.acme.test:8443/base"})
	host, _, _ := unstructured.NestedString(find(t, r.objects, "Ingress", "instagram-operator-webhookserver").Object["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any), "host")
	if host != "hooks.acme.test" {
		t.Errorf("host from publicURL = %q, want hooks.acme.test", host)
	}
}

// masks names the value that hides another one in every-option.yaml: the
// hidden value is checked with its mask back at the default.
var masks = map[string]string{
	"image.tag": "image.digest",
	"webhookserver.podDisruptionBudget.minAvailable": "webhookserver.podDisruptionBudget.enabled",
	"networkPolicy.metricsNamespaceSelector":         "networkPolicy.enabled",
}

// Values every-option.yaml leaves at their default, with the test that covers them.
var coveredElsewhere = map[string]string{
	"leaderElection.enabled": "TestLeaderElectionOff",
}

// Every value in values.yaml is in every-option.yaml with another value, and
// taking it away changes what is rendered: no value is dead.
func TestEveryOptionIsCovered(t *testing.T) {
	defaults := readYAML(t, filepath.Join(chartDir, "values.yaml"))
	full := everyOption(t)
	for _, path := range schemaLeaves(t) {
		if path == "global" {
			continue
		}
		if _, ok := coveredElsewhere[path]; ok {
			continue
		}
		t.Run(path, func(t *testing.T) {
			def, _ := lookup(defaults, path)
			val, ok := lookup(full, path)
			if !ok {
				t.Fatalf("every-option.yaml does not set %s", path)
			}
			if reflect.DeepEqual(def, val) {
				t.Fatalf("every-option.yaml sets %s to its default %v", path, val)
			}
			with := deepCopy(t, full)
			if mask, ok := masks[path]; ok {
				remove(with, mask)
			}
			without := deepCopy(t, with)
			remove(without, path)
			if a, b := renderString(t, with), renderString(t, without); a == b {
				t.Errorf("%s changes nothing that is rendered", path)
			}
		})
	}
}

// values.yaml and values.schema.json name the same values.
func TestSchemaMatchesValues(t *testing.T) {
	var fromValues []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			p := strings.TrimPrefix(prefix+"."+k, ".")
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 && !freeForm(t, p) {
				walk(p, sub)
				continue
			}
			fromValues = append(fromValues, p)
		}
	}
	walk("", readYAML(t, filepath.Join(chartDir, "values.yaml")))
	sort.Strings(fromValues)
	var fromSchema []string
	for _, p := range schemaLeaves(t) {
		if p != "global" {
			fromSchema = append(fromSchema, p)
		}
	}
	if diff := cmp.Diff(fromSchema, fromValues); diff != "" {
		t.Errorf("values.schema.json (-) and values.yaml (+) differ:\n%s", diff)
	}
}

func TestSchemaRefusesBadValues(t *testing.T) {
	cases := map[string]struct {
		values map[string]any
		want   string
	}{
		"typo at the top":      {map[string]any{"publicUrl": "https://hooks.acme.test"}, "publicUrl"},
		"typo in a component":  {map[string]any{"webhookserver": map[string]any{"replica": 3}}, "replica"},
		"typo in a nested key": {map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enable": true}}}, "enable"},
		"latest tag":           {map[string]any{"image": map[string]any{"tag": "latest"}}, "/image/tag"},
		"digest without algo":  {map[string]any{"image": map[string]any{"digest": "0123abcd"}}, "/image/digest"},
		"publicURL no scheme":  {map[string]any{"publicURL": "hooks.acme.test"}, "/publicURL"},
		"publicURL with query": {map[string]any{"publicURL": "https://hooks.acme.test/?a=b"}, "/publicURL"},
		"replicas as a string": {map[string]any{"manager": map[string]any{"replicas": "2"}}, "/manager/replicas"},
		"extra arg not a flag": {map[string]any{"manager": map[string]any{"extraArgs": []any{"debug"}}}, "/manager/extraArgs/0"},
		"env without a name":   {map[string]any{"manager": map[string]any{"extraEnv": []any{map[string]any{"value": "x"}}}}, "name"},
		"unknown service type": {map[string]any{"webhookserver": map[string]any{"service": map[string]any{"type": "External"}}}, "/webhookserver/service/type"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := render(t, tc.values)
			if err == nil {
				t.Fatalf("values %v accepted", tc.values)
			}
			if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name %q:\n%v", tc.want, err)
			}
		})
	}
}

// renderString is the whole install as text: objects, hooks and notes.
func renderString(t *testing.T, values map[string]any) string {
	t.Helper()
	r := mustRender(t, values)
	return toYAML(t, map[string]any{"objects": r.objects, "hooks": r.hooks, "notes": r.notes})
}

type schemaNode struct {
	Properties map[string]*schemaNode `json:"properties"`
}

func readSchema(t *testing.T) *schemaNode {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s schemaNode
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// schemaLeaves lists the dotted paths of the schema's values that have no
// properties of their own (scalars, lists, Kubernetes objects).
func schemaLeaves(t *testing.T) []string {
	t.Helper()
	var out []string
	var walk func(prefix string, n *schemaNode)
	walk = func(prefix string, n *schemaNode) {
		for k, sub := range n.Properties {
			p := strings.TrimPrefix(prefix+"."+k, ".")
			if len(sub.Properties) == 0 {
				out = append(out, p)
				continue
			}
			walk(p, sub)
		}
	}
	walk("", readSchema(t))
	sort.Strings(out)
	return out
}

// freeForm is whether the schema leaves a value's keys open (a Kubernetes
// object such as resources).
func freeForm(t *testing.T, path string) bool {
	n := readSchema(t)
	for _, k := range strings.Split(path, ".") {
		if n = n.Properties[k]; n == nil {
			return false
		}
	}
	return len(n.Properties) == 0
}

func lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// remove deletes a value, so the chart's default applies.
func remove(m map[string]any, path string) {
	parts := strings.Split(path, ".")
	for _, k := range parts[:len(parts)-1] {
		m = m[k].(map[string]any)
	}
	delete(m, parts[len(parts)-1])
}

func deepCopy(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
