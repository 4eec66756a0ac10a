// Package argocd tests the Argo CD resource customizations in
// config/argocd/resource_customizations the way Argo CD runs them: each Lua
// script gets the object as the global obj in a gopher-lua state with only
// the libraries Argo CD grants custom scripts (package, base, table and a
// safe os with date and time), and its return value is compared with the
// expectations in health_test.yaml and action_test.yaml.
package argocd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/leadchat/instagram-operator/internal/argocdlua"
)

// testVM's clock matches the timestamps in the actions' expected outputs.
var testVM = argocdlua.VM{Now: time.Date(2026, time.June, 1, 12, 0, 0, 0, time.UTC)}

// customizationsDir holds one folder per kind, as in Argo CD's repository.
const customizationsDir = "../../config/argocd/resource_customizations/instagram.leadchat.io"

// readObject decodes a YAML manifest the way the Lua sees it: plain maps,
// lists and float64 numbers.
func readObject(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return obj
}

func readScript(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// readStrict decodes a test definition, rejecting unknown fields so a typo
// in a test file does not silently skip an expectation.
func readStrict(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

// kindDirs lists the kind folders under customizationsDir.
func kindDirs(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(customizationsDir)
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			dirs[e.Name()] = filepath.Join(customizationsDir, e.Name())
		}
	}
	return dirs
}

func TestLuaConversionRoundTrip(t *testing.T) {
	in := map[string]any{
		"metadata": map[string]any{"generation": float64(3), "annotations": map[string]any{}},
		"spec":     map[string]any{"suspend": true, "scopes": []any{"a", "b"}, "empty": []any{}},
		"status":   map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}},
	}
	got, err := testVM.Run("return obj", in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("round trip through Lua changed the object (-want +got):\n%s", diff)
	}
}

func TestLuaSandbox(t *testing.T) {
	tests := map[string]struct {
		script  string
		want    any
		wantErr string
	}{
		"os.date UTC timestamp": {script: `return os.date("!%Y-%m-%dT%H:%M:%SZ")`, want: "2026-06-01T12:00:00Z"},
		"os.time":               {script: `return os.time()`, want: float64(testVM.Now.Unix())},
		"unsupported os.date":   {script: `return os.date("%A")`, wantErr: "not supported"},
		// Argo CD does not open these for argocd-cm scripts.
		"no string library": {script: `return string.format("%d", 1)`, wantErr: "non-table object(nil) with key 'format'"},
		"no os.execute":     {script: `return os.execute("true")`, wantErr: "attempt to call a non-function object"},
		"no io library":     {script: `return io.open("/etc/passwd")`, wantErr: "non-table object(nil) with key 'open'"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := testVM.Run(tc.script, map[string]any{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
