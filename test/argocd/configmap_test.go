package argocd

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// configMapPath is the ready-to-paste argocd-cm snippet.
const configMapPath = "../../config/argocd/argocd-cm.yaml"

var update = flag.Bool("update", false, "rewrite config/argocd/argocd-cm.yaml from the Lua files")

const configMapHeader = `# Argo CD health checks and actions for instagram.leadchat.io, for clusters
# whose Argo CD does not ship them yet. Merge these keys into argocd-cm, e.g.
# as a kustomize patch over Argo CD's install manifests; applying this file
# on its own would replace the rest of argocd-cm.
#
# Generated from config/argocd/resource_customizations; do not edit. After
# changing a Lua file run:
#   go test ./test/argocd -run TestArgoCDConfigMap -update
`

// actionsDefinition is the value of resource.customizations.actions.*.
type actionsDefinition struct {
	DiscoveryLua string             `json:"discovery.lua"`
	Definitions  []actionDefinition `json:"definitions"`
}

type actionDefinition struct {
	Name      string `json:"name"`
	ActionLua string `json:"action.lua"`
}

// renderConfigMap builds argocd-cm.yaml with the Lua inlined as block
// scalars, so the scripts read in the ConfigMap exactly as in their files.
func renderConfigMap(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(configMapHeader)
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\n  labels:\n    app.kubernetes.io/name: argocd-cm\n    app.kubernetes.io/part-of: argocd\ndata:\n")

	dirs := kindDirs(t)
	kinds := make([]string, 0, len(dirs))
	for kind := range dirs {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		fmt.Fprintf(&b, "  %s: |\n", configKey("health", kind))
		writeBlock(t, &b, readScript(t, filepath.Join(dirs[kind], "health.lua")), 4)
	}
	for _, kind := range kinds {
		actionsDir := filepath.Join(dirs[kind], "actions")
		if _, err := os.Stat(actionsDir); os.IsNotExist(err) {
			continue
		}
		fmt.Fprintf(&b, "  %s: |\n", configKey("actions", kind))
		b.WriteString("    discovery.lua: |\n")
		writeBlock(t, &b, readScript(t, filepath.Join(actionsDir, "discovery.lua")), 6)
		b.WriteString("    definitions:\n")
		for _, name := range actionNames(t, actionsDir) {
			fmt.Fprintf(&b, "      - name: %s\n        action.lua: |\n", name)
			writeBlock(t, &b, readScript(t, filepath.Join(actionsDir, name, "action.lua")), 10)
		}
	}
	return b.Bytes()
}

func configKey(what, kind string) string {
	return fmt.Sprintf("resource.customizations.%s.%s_%s", what, igv1.GroupVersion.Group, kind)
}

// actionNames lists the actions in the order Argo CD's UI would show them
// if it kept the file order: alphabetical, for a stable file.
func actionNames(t *testing.T, actionsDir string) []string {
	t.Helper()
	scripts, err := filepath.Glob(filepath.Join(actionsDir, "*", "action.lua"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(scripts))
	for _, s := range scripts {
		names = append(names, filepath.Base(filepath.Dir(s)))
	}
	sort.Strings(names)
	return names
}

// writeBlock writes script as the body of a literal block scalar.
func writeBlock(t *testing.T, b *bytes.Buffer, script string, indent int) {
	t.Helper()
	if !strings.HasSuffix(script, "\n") || strings.HasSuffix(script, "\n\n") {
		t.Fatalf("a script must end with exactly one newline to survive a YAML block scalar:\n%s", script)
	}
	if strings.HasPrefix(script, " ") || strings.HasPrefix(script, "\n") {
		t.Fatalf("a script must not start with blank space:\n%s", script)
	}
	pad := strings.Repeat(" ", indent)
	for _, line := range strings.SplitAfter(script, "\n") {
		if line == "" {
			continue
		}
		if strings.TrimSpace(line) != "" {
			b.WriteString(pad)
		}
		b.WriteString(line)
	}
}

// TestArgoCDConfigMap fails when argocd-cm.yaml no longer matches the Lua
// files, and checks that the ConfigMap carries every script byte for byte.
func TestArgoCDConfigMap(t *testing.T) {
	want := renderConfigMap(t)
	if *update {
		if err := os.WriteFile(configMapPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(configMapPath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Fatalf("%s is stale; run go test ./test/argocd -run TestArgoCDConfigMap -update (-want +got):\n%s", configMapPath, diff)
	}

	// The rendering is ours; make sure a YAML parser reads back the
	// scripts unchanged, as Argo CD will.
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(got, &cm); err != nil {
		t.Fatalf("decode %s: %v", configMapPath, err)
	}
	dirs := kindDirs(t)
	wantKeys := 0
	for kind, dir := range dirs {
		wantKeys++
		if diff := cmp.Diff(readScript(t, filepath.Join(dir, "health.lua")), cm.Data[configKey("health", kind)]); diff != "" {
			t.Errorf("%s health script differs (-file +configmap):\n%s", kind, diff)
		}
		actionsDir := filepath.Join(dir, "actions")
		if _, err := os.Stat(actionsDir); os.IsNotExist(err) {
			continue
		}
		wantKeys++
		var defs actionsDefinition
		if err := yaml.UnmarshalStrict([]byte(cm.Data[configKey("actions", kind)]), &defs); err != nil {
			t.Fatalf("%s actions: %v", kind, err)
		}
		wantDefs := actionsDefinition{DiscoveryLua: readScript(t, filepath.Join(actionsDir, "discovery.lua"))}
		for _, name := range actionNames(t, actionsDir) {
			wantDefs.Definitions = append(wantDefs.Definitions, actionDefinition{Name: name, ActionLua: readScript(t, filepath.Join(actionsDir, name, "action.lua"))})
		}
		if diff := cmp.Diff(wantDefs, defs); diff != "" {
			t.Errorf("%s actions differ (-files +configmap):\n%s", kind, diff)
		}
	}
	if len(cm.Data) != wantKeys {
		t.Errorf("argocd-cm has %d keys, want %d", len(cm.Data), wantKeys)
	}
}
