// Package controlplane tests hack/controlplane, the local control plane a
// person starts by hand (make controlplane): it comes up with the CRDs
// installed, writes a kubeconfig kubectl can use, and stops on Ctrl-C.
package controlplane

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leadchat/instagram-operator/internal/testenv"
)

func TestControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	bin := filepath.Join(testenv.RepoRoot(), "bin", "controlplane")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("bin/controlplane is missing: run make build (make test does)")
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	var out bytes.Buffer
	cmd := exec.Command(bin, "--kubeconfig-out", kubeconfig)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(kubeconfig); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no kubeconfig after 60s; output:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	kubectl := filepath.Join(testenv.AssetsDir(), "kubectl")
	got, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "get", "crds", "-o", "name").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get crds: %v\n%s", err, got)
	}
	for _, crd := range []string{"instagramapps", "clusterinstagramapps", "instagramchannels", "instagrammessages"} {
		if !strings.Contains(string(got), crd+".instagram.leadchat.io") {
			t.Errorf("CRD %s not installed; kubectl says:\n%s", crd, got)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("control plane exited with %v; output:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("control plane did not stop after Ctrl-C; output:\n%s", out.String())
	}
}
