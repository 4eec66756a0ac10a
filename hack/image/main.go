// Command image builds the operator's container image without a Docker
// engine: both binaries, statically linked, for every platform asked for,
// in one from-scratch image per platform with CA certificates and a non-root
// user, written as a multi-arch OCI image layout (push it with
// `crane push bin/image ghcr.io/leadchat/instagram-operator:vX.Y.Z` or
// `skopeo copy oci:bin/image docker://...`). An SPDX SBOM of each platform's
// Go modules is written beside the layout. `make image` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	var o Options
	var platforms string
	flag.StringVar(&o.RepoRoot, "repo-root", "../..", "The operator's module root (where go.mod is).")
	flag.StringVar(&o.Out, "out", "../../bin/image", "Directory of the OCI image layout; replaced.")
	flag.StringVar(&o.SBOMDir, "sbom-dir", "", "Where the SPDX SBOMs go (default: <out>-sbom).")
	flag.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "Comma-separated os/arch list.")
	flag.StringVar(&o.LDFlags, "ldflags", "", "Extra -ldflags for go build (the version stamp).")
	flag.StringVar(&o.Version, "version", "devel", "Release, for the image labels.")
	flag.StringVar(&o.Revision, "revision", "unknown", "Git commit, for the image labels.")
	flag.StringVar(&o.Tag, "tag", "", "Image reference recorded as org.opencontainers.image.ref.name.")
	flag.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the image (the binaries call graph.instagram.com over TLS).")
	flag.Parse()
	for _, p := range strings.Split(platforms, ",") {
		os, arch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || os == "" || arch == "" {
			fatalf("platform %q is not os/arch", p)
		}
		o.Platforms = append(o.Platforms, Platform{OS: os, Arch: arch})
	}
	if o.SBOMDir == "" {
		o.SBOMDir = strings.TrimSuffix(o.Out, "/") + "-sbom"
	}
	digest, err := Build(o)
	if err != nil {
		fatalf("%v", err)
	}
	fmt.Printf("wrote %s (index %s) and SBOMs in %s\n", o.Out, digest, o.SBOMDir)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "image: "+format+"\n", args...)
	os.Exit(1)
}
