// Package localenv brings up the whole operator on one machine: a local
// control plane (etcd and kube-apiserver through envtest), the fake
// Instagram, and the real bin/manager and bin/webhookserver binaries pointed
// at both. `make demo` and the end-to-end suite use it, so the demo shows
// exactly what the tests check.
package localenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

// SystemNamespace is where the operator runs and keeps cluster app Secrets.
const SystemNamespace = "instagram-operator-system"

// Options shape the environment.
type Options struct {
	// Dir receives the kubeconfig and the binaries' logs.
	Dir string
	// BinDir holds manager and webhookserver (default <repo>/bin).
	BinDir string
	// Fake configures the fake Instagram; ReceiverURL is filled in.
	Fake fake.Options
	// ManagerArgs and ReceiverArgs are appended to the binaries' flags.
	ManagerArgs, ReceiverArgs []string
	// Logger receives the fake's background delivery failures.
	Logger logr.Logger
}

// Env is a running environment.
type Env struct {
	opts Options

	testEnv    *envtest.Environment
	Config     *rest.Config
	Client     client.Client
	Scheme     *runtime.Scheme
	Kubeconfig string

	Fake       *fake.Server
	fakeServer *httptest.Server
	FakeURL    string

	// PublicURL is the receiver's base URL (its --public-url).
	PublicURL string

	Manager  *Process
	Receiver *Process
}

// Process is one of the operator's binaries.
type Process struct {
	Name        string
	args        []string
	bin         string
	logPath     string
	MetricsURL  string
	ProbeURL    string
	cmd         *exec.Cmd
	exited      chan struct{}
	stopTimeout time.Duration
}

// Start brings everything up; Stop tears it down.
func Start(ctx context.Context, opts Options) (_ *Env, retErr error) {
	if opts.Dir == "" {
		return nil, errors.New("localenv: Options.Dir is required")
	}
	if opts.BinDir == "" {
		opts.BinDir = filepath.Join(testenv.RepoRoot(), "bin")
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	e := &Env{opts: opts}
	defer func() {
		if retErr != nil {
			e.Stop()
		}
	}()

	e.Scheme = runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(e.Scheme))
	utilruntime.Must(igv1.AddToScheme(e.Scheme))

	e.testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: testenv.AssetsDir(),
		// A loaded 2-core machine (CI, or tests beside each other) starts
		// kube-apiserver slowly; its default 20s is tight there.
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	cfg, err := e.testEnv.Start()
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	e.Config = cfg
	if e.Client, err = client.New(cfg, client.Options{Scheme: e.Scheme}); err != nil {
		return nil, err
	}
	if err := e.writeKubeconfig(); err != nil {
		return nil, err
	}
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}}); err != nil {
		return nil, err
	}
	// The install's admission policies hold here as in a cluster.
	if err := InstallAdmissionPolicies(ctx, e.Client); err != nil {
		return nil, fmt.Errorf("install admission policies: %w", err)
	}

	receiverPort, err := freePort()
	if err != nil {
		return nil, err
	}
	e.PublicURL = fmt.Sprintf("http://127.0.0.1:%d", receiverPort)

	fakeOpts := opts.Fake
	if fakeOpts.Clock == nil {
		fakeOpts.Clock = clock.RealClock{}
	}
	fakeOpts.ReceiverURL = e.PublicURL + "/webhooks/instagram"
	fakeOpts.Logger = opts.Logger
	e.Fake = fake.New(fakeOpts)
	e.fakeServer = httptest.NewServer(e.Fake)
	e.FakeURL = e.fakeServer.URL

	managerKubeconfig, err := e.kubeconfigFor(ctx, "manager", "role.yaml")
	if err != nil {
		return nil, err
	}
	receiverKubeconfig, err := e.kubeconfigFor(ctx, "webhookserver", filepath.Join("webhookserver", "role.yaml"))
	if err != nil {
		return nil, err
	}
	instagramFlags := []string{
		"--graph-api-url=" + e.FakeURL,
		"--instagram-api-url=" + e.FakeURL,
		"--public-url=" + e.PublicURL,
		"--cluster-resource-namespace=" + SystemNamespace,
	}
	managerFlags := append([]string{"--kubeconfig=" + managerKubeconfig, "--instagram-oauth-url=" + e.FakeURL}, instagramFlags...)
	if e.Manager, err = e.newProcess("manager", append(managerFlags, opts.ManagerArgs...)); err != nil {
		return nil, err
	}
	receiverFlags := append([]string{"--kubeconfig=" + receiverKubeconfig, fmt.Sprintf("--bind-address=127.0.0.1:%d", receiverPort)}, instagramFlags...)
	if e.Receiver, err = e.newProcess("webhookserver", append(receiverFlags, opts.ReceiverArgs...)); err != nil {
		return nil, err
	}
	for _, p := range []*Process{e.Receiver, e.Manager} {
		if err := p.Start(ctx); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *Env) writeKubeconfig() error {
	user, err := e.testEnv.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add admin user: %w", err)
	}
	b, err := user.KubeConfig()
	if err != nil {
		return err
	}
	e.Kubeconfig = filepath.Join(e.opts.Dir, "kubeconfig")
	return os.WriteFile(e.Kubeconfig, b, 0o600)
}

func (e *Env) newProcess(name string, args []string) (*Process, error) {
	metricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	probePort, err := freePort()
	if err != nil {
		return nil, err
	}
	args = append(args,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort),
	)
	return &Process{
		Name:        name,
		bin:         filepath.Join(e.opts.BinDir, name),
		args:        args,
		logPath:     filepath.Join(e.opts.Dir, name+".log"),
		MetricsURL:  fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		ProbeURL:    fmt.Sprintf("http://127.0.0.1:%d", probePort),
		stopTimeout: 30 * time.Second,
	}, nil
}

// Start runs the binary and waits until its readiness probe answers.
func (p *Process) Start(ctx context.Context) error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout = logFile
	p.cmd.Stderr = logFile
	if err := p.cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.exited = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		_ = logFile.Close()
		close(p.exited)
	}()
	return p.waitReady(ctx, 60*time.Second)
}

func (p *Process) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	httpClient := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited during start-up; log: %s\n%s", p.Name, p.logPath, p.Tail(20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := httpClient.Get(p.ProbeURL + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s; log: %s\n%s", p.Name, timeout, p.logPath, p.Tail(20))
}

// Stop sends SIGTERM and waits for a clean exit (SIGKILL after a timeout).
// It reports whether the process exited on its own after SIGTERM.
func (p *Process) Stop() bool {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return true
	}
	select {
	case <-p.exited:
		return true
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.cmd.ProcessState != nil && p.cmd.ProcessState.Success()
	case <-time.After(p.stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return false
	}
}

// Kill stops the process at once, as a crash would.
func (p *Process) Kill() {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Log returns what the process wrote so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// Tail returns the last n lines of the log.
func (p *Process) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Scrape returns the process's /metrics text.
func (p *Process) Scrape() (string, error) {
	resp, err := http.Get(p.MetricsURL)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Kubectl runs bin/k8s/kubectl against the environment.
func (e *Env) Kubectl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(testenv.AssetsDir(), "kubectl"), append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Stop stops the binaries, the fake and the control plane.
func (e *Env) Stop() {
	e.Manager.Stop()
	e.Receiver.Stop()
	if e.fakeServer != nil {
		e.Fake.Flush()
		e.fakeServer.Close()
	}
	if e.testEnv != nil {
		_ = e.testEnv.Stop()
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
