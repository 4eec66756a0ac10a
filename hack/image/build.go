package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Binaries are the programs of the image; the first is the entrypoint (the
// Deployments set command to /manager or /webhookserver).
var Binaries = []string{"manager", "webhookserver"}

// NonRoot is the uid and gid the image runs as (distroless' nonroot).
const NonRoot = 65532

// Options say what to build and where to write it.
type Options struct {
	RepoRoot, Out, SBOMDir string
	Platforms              []Platform
	LDFlags                string
	Version, Revision, Tag string
	CACerts                string
}

// Platform is an os/arch pair Go can build for.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// epoch is every timestamp in the image, so the same source gives the same
// digest (SOURCE_DATE_EPOCH overrides it, as reproducible builds expect).
func epoch() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err == nil {
			return time.Unix(sec, 0).UTC()
		}
	}
	return time.Unix(0, 0).UTC()
}

// Build writes the multi-arch image layout and returns its index digest.
func Build(o Options) (v1.Hash, error) {
	if len(o.Platforms) == 0 {
		return v1.Hash{}, fmt.Errorf("no platforms")
	}
	caCerts, err := os.ReadFile(o.CACerts)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read CA certificates: %w", err)
	}
	work, err := os.MkdirTemp("", "instagram-operator-image-")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(work)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		bins, err := buildBinaries(o, p, work)
		if err != nil {
			return v1.Hash{}, err
		}
		img, err := platformImage(o, p, bins, caCerts)
		if err != nil {
			return v1.Hash{}, fmt.Errorf("%s: %w", p, err)
		}
		if err := writeSBOM(o, p, bins); err != nil {
			return v1.Hash{}, fmt.Errorf("%s: sbom: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}},
		})
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return v1.Hash{}, err
	}
	lp, err := layout.Write(o.Out, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("write layout: %w", err)
	}
	var opts []layout.Option
	if o.Tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": o.Tag}))
	}
	if err := lp.AppendIndex(idx, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("write index: %w", err)
	}
	return idx.Digest()
}

// buildBinaries compiles the binaries statically for p; it returns their paths.
func buildBinaries(o Options, p Platform, dir string) (map[string]string, error) {
	bins := map[string]string{}
	for _, name := range Binaries {
		out := filepath.Join(dir, p.OS+"-"+p.Arch, name)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w "+o.LDFlags, "-o", out, "./cmd/"+name)
		cmd.Dir = o.RepoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s for %s: %w\n%s", name, p, err, msg)
		}
		bins[name] = out
	}
	return bins, nil
}

func platformImage(o Options, p Platform, bins map[string]string, caCerts []byte) (v1.Image, error) {
	files := []file{
		{path: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRoot, NonRoot))},
		{path: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRoot))},
		{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caCerts},
	}
	for _, name := range Binaries {
		data, err := os.ReadFile(bins[name])
		if err != nil {
			return nil, err
		}
		files = append(files, file{path: name, mode: 0o755, data: data})
	}
	layerTar, err := tarOf(files, []string{"etc", "etc/ssl", "etc/ssl/certs", "home", "home/nonroot", "tmp"})
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = p.OS, p.Arch
	cfg.Created = v1.Time{Time: epoch()}
	cfg.Config.User = fmt.Sprintf("%d:%d", NonRoot, NonRoot)
	cfg.Config.Entrypoint = []string{"/" + Binaries[0]}
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    "instagram-operator",
		"org.opencontainers.image.source":   "https://github.com/leadchat/instagram-operator",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.revision": o.Revision,
	}
	return mutate.ConfigFile(img, cfg)
}

type file struct {
	path string
	mode int64
	data []byte
}

// tarOf is a layer with fixed owners and times. Files belong to root and are
// not writable by the nonroot user; the root file system is meant to be
// mounted read-only.
func tarOf(files []file, dirs []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := epoch()
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		uid := 0
		if d == "home/nonroot" {
			uid = NonRoot
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.path, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
