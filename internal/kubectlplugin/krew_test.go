package kubectlplugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// krewPlugin is the part of a krew.googlecontainertools.github.com/v1alpha2
// Plugin that krew checks on install; decoding is strict, so a misspelt
// field fails here rather than in `kubectl krew install`.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		Homepage         string `json:"homepage"`
		ShortDescription string `json:"shortDescription"`
		Description      string `json:"description"`
		Caveats          string `json:"caveats"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			Sha256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

func TestKrewManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "plugins", "instagram.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var p krewPlugin
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" {
		t.Fatalf("a %s %s, want a krew v1alpha2 Plugin", p.APIVersion, p.Kind)
	}
	// kubectl finds the plugin as kubectl-<name>: the binary's name.
	if p.Metadata.Name != "instagram" {
		t.Errorf("name %q, want instagram", p.Metadata.Name)
	}
	if !strings.HasPrefix(p.Spec.Version, "v") || p.Spec.ShortDescription == "" || p.Spec.Homepage == "" {
		t.Errorf("version %q (want vX.Y.Z), shortDescription and homepage are required", p.Spec.Version)
	}
	seen := map[string]bool{}
	for _, pl := range p.Spec.Platforms {
		os, arch := pl.Selector.MatchLabels["os"], pl.Selector.MatchLabels["arch"]
		key := os + "/" + arch
		if seen[key] {
			t.Errorf("%s listed twice", key)
		}
		seen[key] = true
		archive := "kubectl-instagram_" + os + "_" + arch + ".tar.gz"
		if want := p.Spec.Homepage + "/releases/download/" + p.Spec.Version + "/" + archive; pl.URI != want {
			t.Errorf("%s: uri %q, want %q (hack/plugin-release.sh names archives so)", key, pl.URI, want)
		}
		if len(pl.Sha256) != 64 {
			t.Errorf("%s: sha256 %q is not 64 hex digits", key, pl.Sha256)
		}
		bin := "kubectl-instagram"
		if os == "windows" {
			bin += ".exe"
		}
		if pl.Bin != bin {
			t.Errorf("%s: bin %q, want %q", key, pl.Bin, bin)
		}
		var shipsBin bool
		for _, f := range pl.Files {
			shipsBin = shipsBin || f.From == bin
		}
		if !shipsBin {
			t.Errorf("%s: files do not include %s", key, bin)
		}
	}
	for _, want := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"} {
		if !seen[want] {
			t.Errorf("no platform %s", want)
		}
	}
}
