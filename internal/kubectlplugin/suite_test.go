package kubectlplugin_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/kubectlplugin"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

var (
	testEnv    *envtest.Environment
	cfg        *rest.Config
	k8sClient  client.Client
	kubeconfig string
	testScheme = runtime.NewScheme()
	suiteCtx   context.Context
	cancel     context.CancelFunc
	// now is the plugin's clock in every test, so relative times are
	// literals.
	now = time.Date(2026, time.December, 2, 1, 0, 0, 0, time.UTC)
)

func TestPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("the plugin suite needs a control plane")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "kubectl-instagram Suite")
}

// The control plane starts without the operator's CRDs: the first specs
// check what the plugin says there, then install them.
var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	utilruntime.Must(clientgoscheme.AddToScheme(testScheme))
	utilruntime.Must(igv1.AddToScheme(testScheme))
	suiteCtx, cancel = context.WithCancel(context.Background())

	testEnv = &envtest.Environment{BinaryAssetsDirectory: testenv.AssetsDir()}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())
	kubeconfig = writeKubeconfig(cfg, "admin")
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// installCRDs installs the operator's CRDs except InstagramContact, which
// the contacts specs install themselves, so they can show the plugin both
// before and after the kind exists (an older operator serves none).
func installCRDs() {
	dir := filepath.Join("..", "..", "config", "crd", "bases")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var paths []string
	for _, f := range files {
		if !strings.Contains(filepath.Base(f), "instagramcontacts") {
			paths = append(paths, f)
		}
	}
	Expect(paths).NotTo(BeEmpty())
	_, err = envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: paths, ErrorIfPathMissing: true})
	Expect(err).NotTo(HaveOccurred())
}

// writeKubeconfig writes a kubeconfig for cfg, the way a user has one.
func writeKubeconfig(cfg *rest.Config, user string) string {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: user, Namespace: "default"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(GinkgoT().TempDir(), user+".kubeconfig")
	Expect(clientcmd.WriteToFile(*kc, path)).To(Succeed())
	return path
}

// tick is the plugin's clock: it starts at now and moves on a millisecond
// per reading, so two refreshes never request the same time.
func tick() time.Time {
	return now.Add(time.Duration(ticks.Add(1)) * time.Millisecond)
}

var ticks atomic.Int64

// result is one run of the plugin.
type result struct {
	code   int
	stdout string
	stderr string
	opened []string
}

// syncBuffer lets a test read what a running command (tail) wrote so far.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// invocation configures one run: a terminal or a pipe, and the
// environment.
type invocation struct {
	terminal bool
	env      map[string]string
	config   string
	ctx      context.Context
	out      io.Writer
}

func run(args ...string) result { return invocation{}.run(args...) }

func (inv invocation) run(args ...string) result {
	var stdout, stderr syncBuffer
	var out io.Writer = &stdout
	if inv.out != nil {
		out = inv.out
	}
	config := inv.config
	if config == "" {
		config = kubeconfig
	}
	ctx := inv.ctx
	if ctx == nil {
		ctx = suiteCtx
	}
	var opened []string
	code := kubectlplugin.Main(ctx, append([]string{"--kubeconfig", config}, args...), kubectlplugin.Options{
		Out:          out,
		ErrOut:       &stderr,
		Getenv:       func(k string) string { return inv.env[k] },
		IsTerminal:   func(io.Writer) bool { return inv.terminal },
		OpenBrowser:  func(url string) error { opened = append(opened, url); return nil },
		Now:          tick,
		PollInterval: 20 * time.Millisecond,
	})
	res := result{code: code, stdout: stdout.String(), stderr: stderr.String(), opened: opened}
	GinkgoWriter.Printf("$ kubectl instagram %v\n%s%s(exit %d)\n", args, res.stdout, res.stderr, code)
	return res
}

// expectOneLineError checks the plugin failed and said why in one line:
// the last line of stderr (progress notes may come before it).
func expectOneLineError(res result, want string) {
	GinkgoHelper()
	Expect(res.code).NotTo(BeZero())
	lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	Expect(last).To(HavePrefix("error: "))
	Expect(last).To(ContainSubstring(want))
	Expect(strings.Count(res.stderr, "error: ")).To(Equal(1), "one error line, got %q", res.stderr)
}
