package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestBuild builds the image for the host's architecture, the way make
// image does for each platform, and checks what a cluster would run.
func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles both binaries")
	}
	if runtime.GOOS != "linux" {
		t.Skip("runs the linux binaries it builds")
	}
	dir := t.TempDir()
	p := Platform{OS: "linux", Arch: runtime.GOARCH}
	const version = "v9.8.7-test"
	o := Options{
		RepoRoot:  filepath.Join("..", ".."),
		Out:       filepath.Join(dir, "image"),
		SBOMDir:   filepath.Join(dir, "sbom"),
		Platforms: []Platform{p},
		LDFlags:   "-X github.com/leadchat/instagram-operator/internal/version.version=" + version + " -X github.com/leadchat/instagram-operator/internal/version.revision=abc123",
		Version:   version, Revision: "abc123",
		Tag:     "ghcr.io/leadchat/instagram-operator:" + version,
		CACerts: "/etc/ssl/certs/ca-certificates.crt",
	}
	if _, err := os.Stat(o.CACerts); err != nil {
		t.Skipf("no CA bundle on this machine: %v", err)
	}
	digest, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}

	lp, err := layout.FromPath(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(topManifest.Manifests) != 1 || topManifest.Manifests[0].Digest != digest ||
		topManifest.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != o.Tag {
		t.Fatalf("index.json = %+v, want the image index %s named %s", topManifest.Manifests, digest, o.Tag)
	}
	idx, err := top.ImageIndex(digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 1 {
		t.Fatalf("image index: media type %s, %d manifests", im.MediaType, len(im.Manifests))
	}
	if pl := im.Manifests[0].Platform; pl == nil || pl.OS != p.OS || pl.Architecture != p.Arch {
		t.Fatalf("platform = %+v, want %s", im.Manifests[0].Platform, p)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root)", cfg.Config.User)
	}
	if diff := cmp.Diff([]string{"/manager"}, cfg.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if cfg.OS != p.OS || cfg.Architecture != p.Arch {
		t.Errorf("config platform %s/%s", cfg.OS, cfg.Architecture)
	}
	if cfg.Config.Labels["org.opencontainers.image.version"] != version {
		t.Errorf("labels %v", cfg.Config.Labels)
	}

	files := extract(t, img)
	for _, name := range []string{"manager", "webhookserver"} {
		f, ok := files[name]
		if !ok {
			t.Fatalf("/%s is not in the image (files %v)", name, keysOf(files))
		}
		if f.hdr.Mode&0o111 == 0 || f.hdr.Uid != 0 {
			t.Errorf("/%s mode %o uid %d: want executable, owned by root", name, f.hdr.Mode, f.hdr.Uid)
		}
		bin, err := elf.NewFile(bytes.NewReader(f.data))
		if err != nil {
			t.Fatalf("/%s: %v", name, err)
		}
		for _, prog := range bin.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("/%s is dynamically linked; a from-scratch image has no libc", name)
			}
		}
		// Runs, and carries the stamped version.
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, f.data, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(path, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", name, err, out)
		}
		if want := name + " " + version + " (revision abc123, "; !strings.HasPrefix(string(out), want) {
			t.Errorf("%s --version = %q, want prefix %q", name, out, want)
		}
	}
	if ca := files["etc/ssl/certs/ca-certificates.crt"]; ca == nil || !bytes.Contains(ca.data, []byte("BEGIN CERTIFICATE")) {
		t.Error("no CA bundle in the image")
	}
	if pw := files["etc/passwd"]; pw == nil || !strings.Contains(string(pw.data), "nonroot:x:65532:65532:") {
		t.Error("no nonroot user in /etc/passwd")
	}

	var sbom struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name         string `json:"name"`
			VersionInfo  string `json:"versionInfo"`
			ExternalRefs []struct {
				Locator string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
	}
	data, err := os.ReadFile(SBOMPath(o.SBOMDir, p))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &sbom); err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, pkg := range sbom.Packages {
		found[pkg.Name] = pkg.VersionInfo
	}
	if sbom.SPDXVersion != "SPDX-2.3" || found["sigs.k8s.io/controller-runtime"] == "" || found["manager"] != version || found["webhookserver"] != version {
		t.Errorf("SBOM: version %s, packages %v", sbom.SPDXVersion, found)
	}
}

func TestEscapeModulePath(t *testing.T) {
	if got, want := escapeModulePath("github.com/Masterminds/semver/v3"), "github.com/!masterminds/semver/v3"; got != want {
		t.Errorf("escapeModulePath = %q, want %q", got, want)
	}
}

type entry struct {
	hdr  *tar.Header
	data []byte
}

// extract reads every file of the image's layers.
func extract(t *testing.T, img v1.Image) map[string]*entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*entry{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimSuffix(hdr.Name, "/")] = &entry{hdr: hdr, data: data}
		}
		rc.Close()
	}
	return files
}

func keysOf(m map[string]*entry) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
