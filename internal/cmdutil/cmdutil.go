// Package cmdutil holds what both binaries' mains share.
package cmdutil

import (
	"os"
	"strings"
)

// DefaultNamespace is where the install bundle puts the operator.
const DefaultNamespace = "instagram-operator-system"

// PodNamespace is the namespace the binary runs in: POD_NAMESPACE (set from
// the downward API), else the service account's namespace file, else the
// install bundle's namespace.
func PodNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		return strings.TrimSpace(string(b))
	}
	return DefaultNamespace
}
