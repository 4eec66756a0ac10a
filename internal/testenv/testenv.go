// Package testenv finds the control-plane binaries that `make envtest` builds
// from Go modules, so envtest suites run under plain `go test` too.
package testenv

import (
	"os"
	"path/filepath"
)

// AssetsDir is KUBEBUILDER_ASSETS when set, else bin/k8s at the module root.
func AssetsDir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join(RepoRoot(), "bin", "k8s")
}

// RepoRoot is the directory of the module's go.mod, found from the working
// directory upwards.
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "PROJECT")); err == nil {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "."
		}
		dir = parent
	}
}
