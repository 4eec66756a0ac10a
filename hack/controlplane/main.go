// Command controlplane starts a local etcd and kube-apiserver (through
// controller-runtime's envtest, from the binaries `make envtest` builds),
// installs the CRDs, writes a kubeconfig and runs until interrupted. `make
// demo` and the end-to-end tests use it; it is no cluster: no scheduler, no
// kubelet, no garbage collector.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/leadchat/instagram-operator/internal/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		os.Exit(1)
	}
}

func run() error {
	root := testenv.RepoRoot()
	kubeconfig := flag.String("kubeconfig-out", filepath.Join(root, "bin", "demo", "kubeconfig"), "Where to write the admin kubeconfig.")
	crdDir := flag.String("crd-dir", filepath.Join(root, "config", "crd", "bases"), "CRDs to install.")
	assets := flag.String("assets", testenv.AssetsDir(), "Directory with kube-apiserver and etcd.")
	flag.Parse()

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{*crdDir},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: *assets,
	}
	if _, err := env.Start(); err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	defer func() { _ = env.Stop() }()

	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add admin user: %w", err)
	}
	b, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("render kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(*kubeconfig), 0o755); err != nil {
		return err
	}
	// Written to a temporary name first so a reader never sees half a file.
	tmp := *kubeconfig + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, *kubeconfig); err != nil {
		return err
	}
	fmt.Printf("control plane up at %s; kubeconfig %s\n", env.Config.Host, *kubeconfig)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	fmt.Println("stopping control plane")
	return nil
}
