package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/leadchat/instagram-operator/internal/localenv"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

// proc is a running manager: the one localenv started, or one this command
// started with other flags.
type proc interface {
	PID() int
	Scrape() (string, error)
}

// managerProc is a bin/manager started by the bench with its own flags
// (localenv fixes the flags of the manager it starts). It points at the
// same control plane, fake and receiver as localenv's.
type managerProc struct {
	cmd        *exec.Cmd
	metricsURL string
	probeURL   string
	logPath    string
	exited     chan struct{}
}

// managerArgs are the flags localenv gives its manager, so a manager
// started here differs only by extra.
func managerArgs(env *localenv.Env, metricsPort, probePort int, extra []string) []string {
	args := []string{
		"--kubeconfig=" + env.Kubeconfig,
		"--graph-api-url=" + env.FakeURL,
		"--instagram-api-url=" + env.FakeURL,
		"--instagram-oauth-url=" + env.FakeURL,
		"--public-url=" + env.PublicURL,
		"--cluster-resource-namespace=" + localenv.SystemNamespace,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort),
	}
	return append(args, extra...)
}

func startManager(ctx context.Context, env *localenv.Env, logDir, label string, extra ...string) (*managerProc, error) {
	metricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	probePort, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &managerProc{
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		probeURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort),
		logPath:    filepath.Join(logDir, "manager-"+label+".log"),
		exited:     make(chan struct{}),
	}
	logFile, err := os.Create(m.logPath)
	if err != nil {
		return nil, err
	}
	m.cmd = exec.Command(filepath.Join(testenv.RepoRoot(), "bin", "manager"), managerArgs(env, metricsPort, probePort, extra)...)
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	if err := m.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start manager: %w", err)
	}
	go func() {
		_ = m.cmd.Wait()
		_ = logFile.Close()
		close(m.exited)
	}()
	if err := m.waitReady(ctx); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

func (m *managerProc) waitReady(ctx context.Context) error {
	httpClient := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			return fmt.Errorf("manager exited during start-up; log: %s", m.logPath)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := httpClient.Get(m.probeURL); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("manager not ready after 60s; log: %s", m.logPath)
}

// PID is the manager's process ID.
func (m *managerProc) PID() int { return m.cmd.Process.Pid }

// Scrape returns the manager's /metrics text.
func (m *managerProc) Scrape() (string, error) {
	resp, err := http.Get(m.metricsURL)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", m.metricsURL, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Stop sends SIGTERM and waits, killing the process after 30 seconds.
func (m *managerProc) Stop() {
	if m == nil {
		return
	}
	select {
	case <-m.exited:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("listener has no TCP address")
	}
	return addr.Port, nil
}
