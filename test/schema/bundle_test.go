package schema_test

import (
	"bytes"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// bundle reads a multi-document YAML file of dist/.
func bundle(name string) []*unstructured.Unstructured {
	GinkgoHelper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "dist", name))
	Expect(err).NotTo(HaveOccurred(), "run make build-installer")
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
	Expect(out).NotTo(BeEmpty())
	return out
}

func ofKind[T any](objs []*unstructured.Unstructured, kind string) []*T {
	GinkgoHelper()
	var out []*T
	for _, u := range objs {
		if u.GetKind() != kind {
			continue
		}
		t := new(T)
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t)).To(Succeed())
		out = append(out, t)
	}
	return out
}

var _ = Describe("install bundle as a platform engineer reads it", func() {
	install := func() []*unstructured.Unstructured { return bundle("install.yaml") }

	It("dist/monitoring.yaml is what config/monitoring builds", func() {
		built, err := kubectlCmd("kustomize", filepath.Join(repoRoot, "config", "monitoring")).Output()
		Expect(err).NotTo(HaveOccurred())
		committed, err := os.ReadFile(filepath.Join(repoRoot, "dist", "monitoring.yaml"))
		Expect(err).NotTo(HaveOccurred(), "run make build-installer")
		Expect(string(committed)).To(Equal(string(built)), "dist/monitoring.yaml is stale: run make build-installer")
	})

	It("puts the monitoring objects in the namespace the install creates, selecting metrics Services that exist", func() {
		objs := install()
		var namespaces []string
		for _, ns := range ofKind[corev1.Namespace](objs, "Namespace") {
			namespaces = append(namespaces, ns.Name)
		}
		services := ofKind[corev1.Service](objs, "Service")
		monitoring := bundle("monitoring.yaml")
		kinds := map[string]int{}
		for _, u := range monitoring {
			kinds[u.GetKind()]++
			Expect(namespaces).To(ContainElement(u.GetNamespace()), "%s %s", u.GetKind(), u.GetName())
			if u.GetKind() != "ServiceMonitor" {
				continue
			}
			sel, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
			endpoints, _, _ := unstructured.NestedSlice(u.Object, "spec", "endpoints")
			Expect(endpoints).To(HaveLen(1))
			port := endpoints[0].(map[string]any)["port"]
			var targets []string
			for _, svc := range services {
				if svc.Namespace != u.GetNamespace() || !labels.SelectorFromSet(sel).Matches(labels.Set(svc.Labels)) {
					continue
				}
				for _, p := range svc.Spec.Ports {
					if p.Name == port {
						targets = append(targets, svc.Name)
					}
				}
			}
			Expect(targets).To(HaveLen(1), "ServiceMonitor %s must find exactly one Service with port %v", u.GetName(), port)
		}
		Expect(kinds).To(Equal(map[string]int{"ServiceMonitor": 2, "PrometheusRule": 1}))
	})

	It("exposes only the public port on the receiver's Service, and metrics on their own Services", func() {
		byName := map[string]*corev1.Service{}
		for _, svc := range ofKind[corev1.Service](install(), "Service") {
			byName[svc.Name] = svc
		}
		public := byName["instagram-operator-webhookserver"]
		Expect(public).NotTo(BeNil())
		Expect(public.Spec.Ports).To(HaveLen(1))
		Expect(public.Spec.Ports[0].Name).To(Equal("public"))
		for _, name := range []string{"instagram-operator-webhookserver-metrics", "instagram-operator-manager-metrics"} {
			Expect(byName).To(HaveKey(name))
			Expect(byName[name].Spec.Ports).To(HaveLen(1))
			Expect(byName[name].Spec.Ports[0].Name).To(Equal("metrics"))
		}
	})

	It("admits Prometheus by the namespace name label Kubernetes sets on every namespace", func() {
		policies := ofKind[networkingv1.NetworkPolicy](install(), "NetworkPolicy")
		Expect(policies).NotTo(BeEmpty())
		selectors := 0
		for _, np := range policies {
			for _, rule := range np.Spec.Ingress {
				for _, peer := range rule.From {
					if peer.NamespaceSelector == nil {
						continue
					}
					selectors++
					Expect(peer.NamespaceSelector.MatchLabels).To(Equal(map[string]string{"kubernetes.io/metadata.name": "monitoring"}), np.Name)
				}
			}
		}
		Expect(selectors).To(Equal(2))
	})

	It("ships publicURL empty, in a ConfigMap whose name changes with its content, so apps say PublicURLMissing until it is set", func() {
		objs := install()
		maps := ofKind[corev1.ConfigMap](objs, "ConfigMap")
		Expect(maps).To(HaveLen(1))
		settings := maps[0]
		Expect(settings.Name).To(MatchRegexp(`^instagram-operator-settings-[a-z0-9]{10}$`))
		Expect(settings.Data).To(Equal(map[string]string{"publicURL": ""}))
		deployments := ofKind[appsv1.Deployment](objs, "Deployment")
		Expect(deployments).To(HaveLen(2))
		for _, d := range deployments {
			var ref string
			for _, env := range d.Spec.Template.Spec.Containers[0].Env {
				if env.Name == "PUBLIC_URL" {
					ref = env.ValueFrom.ConfigMapKeyRef.Name
				}
			}
			Expect(ref).To(Equal(settings.Name), d.Name)
		}
	})
})
