// Package version says which release a binary is. The release is stamped at
// link time (make build, make image and the Dockerfile pass -ldflags), so
// `--version`, the logs and the build-info metric name the same release a
// platform team pinned.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at link time:
//
//	-X github.com/leadchat/instagram-operator/internal/version.version=v0.1.0
//	-X github.com/leadchat/instagram-operator/internal/version.revision=<git commit>
var (
	version  string
	revision string
)

// Info is what a binary knows about its own build.
type Info struct {
	// Version is the release (the VERSION file at build time), or the
	// module version for `go install ...@vX`, or "devel".
	Version string
	// Revision is the git commit, or "unknown".
	Revision string
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// Get returns the stamped build information, filling what the linker was
// not given from the Go build information.
func Get() Info {
	return resolve(version, revision, readBuildInfo)
}

func readBuildInfo() (*debug.BuildInfo, bool) { return debug.ReadBuildInfo() }

func resolve(stampedVersion, stampedRevision string, buildInfo func() (*debug.BuildInfo, bool)) Info {
	info := Info{Version: stampedVersion, Revision: stampedRevision, GoVersion: runtime.Version()}
	if bi, ok := buildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		if info.Revision == "" {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					info.Revision = s.Value
				}
			}
		}
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	if info.Revision == "" {
		info.Revision = "unknown"
	}
	return info
}

// String is the line `--version` prints, e.g.
// "manager v0.1.0 (revision 81c54cd, go1.26.8)".
func (i Info) String(binary string) string {
	return fmt.Sprintf("%s %s (revision %s, %s)", binary, i.Version, i.Revision, i.GoVersion)
}

// MetricName is the build-info gauge both binaries export.
const MetricName = "instagram_operator_build_info"

// Collector returns the gauge instagram_operator_build_info{version,revision,goversion},
// always 1, the convention of Prometheus' own build_info metrics: join on it
// to see which release each scraped pod runs.
func (i Info) Collector() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricName,
		Help: "Build information of the instagram-operator binary; always 1.",
		ConstLabels: prometheus.Labels{
			"version":   i.Version,
			"revision":  i.Revision,
			"goversion": i.GoVersion,
		},
	})
	g.Set(1)
	return g
}
