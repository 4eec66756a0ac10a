package schema_test

import (
	"os"
	"path/filepath"
	"sync"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

var (
	kubeconfigOnce sync.Once
	kubeconfigPath string
)

// writeKubeconfig writes a kubeconfig for the test control plane once.
func writeKubeconfig() string {
	kubeconfigOnce.Do(func() {
		user, err := testEnv.AddUser(envtest.User{Name: "schema-admin", Groups: []string{"system:masters"}}, nil)
		Expect(err).NotTo(HaveOccurred())
		b, err := user.KubeConfig()
		Expect(err).NotTo(HaveOccurred())
		dir, err := os.MkdirTemp("", "schema-kubeconfig")
		Expect(err).NotTo(HaveOccurred())
		kubeconfigPath = filepath.Join(dir, "kubeconfig")
		Expect(os.WriteFile(kubeconfigPath, b, 0o600)).To(Succeed())
		_, err = clientcmd.LoadFromFile(kubeconfigPath)
		Expect(err).NotTo(HaveOccurred())
	})
	return kubeconfigPath
}

// restConfigFor returns a REST config for the instagram.leadchat.io group.
func restConfigFor() *rest.Config {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &schema.GroupVersion{Group: "instagram.leadchat.io", Version: "v1alpha1"}
	c.APIPath = "/apis"
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	return c
}
