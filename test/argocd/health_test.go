package argocd

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// healthTestFile is Argo CD's health_test.yaml.
type healthTestFile struct {
	Tests []struct {
		HealthStatus healthStatus `json:"healthStatus"`
		InputPath    string       `json:"inputPath"`
	} `json:"tests"`
}

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// argoHealthStatuses are the values Argo CD accepts; anything else shows as
// Unknown with "Lua returned an invalid health status".
var argoHealthStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

// apiKinds are the kinds of the API group, read from the scheme so a new
// kind without a health check fails this test.
func apiKinds(t *testing.T) []string {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := igv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	// The scheme also lists the meta options types under every group.
	pkg := reflect.TypeFor[igv1.InstagramChannel]().PkgPath()
	var kinds []string
	for kind, typ := range scheme.KnownTypes(igv1.GroupVersion) {
		if typ.PkgPath() == pkg && !strings.HasSuffix(kind, "List") {
			kinds = append(kinds, kind)
		}
	}
	if len(kinds) == 0 {
		t.Fatal("the scheme lists no kinds of the API group")
	}
	sort.Strings(kinds)
	return kinds
}

func TestEveryKindHasAHealthCheck(t *testing.T) {
	dirs := kindDirs(t)
	for _, kind := range apiKinds(t) {
		dir, ok := dirs[kind]
		if !ok {
			t.Errorf("no folder %s/%s", customizationsDir, kind)
			continue
		}
		for _, f := range []string{"health.lua", "health_test.yaml"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", kind, err)
			}
		}
	}
}

func TestHealthChecks(t *testing.T) {
	for kind, dir := range kindDirs(t) {
		t.Run(kind, func(t *testing.T) {
			script := readScript(t, filepath.Join(dir, "health.lua"))
			var file healthTestFile
			readStrict(t, filepath.Join(dir, "health_test.yaml"), &file)
			if len(file.Tests) == 0 {
				t.Fatal("health_test.yaml has no tests")
			}

			used := map[string]bool{}
			for _, tc := range file.Tests {
				used[filepath.Clean(tc.InputPath)] = true
				t.Run(tc.InputPath, func(t *testing.T) {
					if !argoHealthStatuses[tc.HealthStatus.Status] {
						t.Fatalf("expected status %q is not an Argo CD health status", tc.HealthStatus.Status)
					}
					obj := readObject(t, filepath.Join(dir, tc.InputPath))
					if obj["kind"] != kind {
						t.Fatalf("input is a %v, not a %s", obj["kind"], kind)
					}
					got, err := testVM.Run(script, obj)
					if err != nil {
						t.Fatalf("health.lua: %v", err)
					}
					if diff := cmp.Diff(map[string]any{"status": tc.HealthStatus.Status, "message": tc.HealthStatus.Message}, got); diff != "" {
						t.Errorf("health (-want +got):\n%s", diff)
					}
				})
			}

			// Every test object is exercised, so none documents a
			// behaviour that is no longer checked.
			files, err := filepath.Glob(filepath.Join(dir, "testdata", "*.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				rel, _ := filepath.Rel(dir, f)
				if !used[rel] {
					t.Errorf("%s is not used by health_test.yaml", rel)
				}
			}
		})
	}
}
