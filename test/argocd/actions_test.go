package argocd

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// actionTestFile is Argo CD's actions/action_test.yaml.
type actionTestFile struct {
	DiscoveryTests []struct {
		InputPath string           `json:"inputPath"`
		Result    []resourceAction `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action             string `json:"action"`
		InputPath          string `json:"inputPath"`
		ExpectedOutputPath string `json:"expectedOutputPath"`
	} `json:"actionTests"`
}

// resourceAction mirrors the fields of Argo CD's ResourceAction that a
// discovery script sets.
type resourceAction struct {
	Name        string `json:"name"`
	Disabled    bool   `json:"disabled"`
	IconClass   string `json:"iconClass,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

func TestActions(t *testing.T) {
	found := false
	for kind, dir := range kindDirs(t) {
		actionsDir := filepath.Join(dir, "actions")
		if _, err := os.Stat(actionsDir); os.IsNotExist(err) {
			continue
		}
		found = true
		t.Run(kind, func(t *testing.T) {
			var file actionTestFile
			readStrict(t, filepath.Join(actionsDir, "action_test.yaml"), &file)
			discovery := readScript(t, filepath.Join(actionsDir, "discovery.lua"))

			offered := map[string]bool{}
			for _, tc := range file.DiscoveryTests {
				t.Run("discovery/"+tc.InputPath, func(t *testing.T) {
					got, err := testVM.Run(discovery, readObject(t, filepath.Join(actionsDir, tc.InputPath)))
					if err != nil {
						t.Fatalf("discovery.lua: %v", err)
					}
					actions := discovered(t, got)
					for _, a := range actions {
						offered[a.Name] = true
					}
					want := append([]resourceAction(nil), tc.Result...)
					sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
					if diff := cmp.Diff(want, actions); diff != "" {
						t.Errorf("actions (-want +got):\n%s", diff)
					}
				})
			}

			tested := map[string]bool{}
			for _, tc := range file.ActionTests {
				tested[tc.Action] = true
				t.Run("action/"+tc.Action+"/"+tc.InputPath, func(t *testing.T) {
					script := readScript(t, filepath.Join(actionsDir, tc.Action, "action.lua"))
					in := readObject(t, filepath.Join(actionsDir, tc.InputPath))
					got, err := testVM.Run(script, in)
					if err != nil {
						t.Fatalf("%s/action.lua: %v", tc.Action, err)
					}
					want := readObject(t, filepath.Join(actionsDir, tc.ExpectedOutputPath))
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("object after %s (-want +got):\n%s", tc.Action, diff)
					}
				})
			}

			// Each offered action has a script and a test, and each script
			// is offered.
			scripts, err := filepath.Glob(filepath.Join(actionsDir, "*", "action.lua"))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range scripts {
				name := filepath.Base(filepath.Dir(s))
				if !offered[name] {
					t.Errorf("action %s has a script but discovery.lua never offers it", name)
				}
				delete(offered, name)
				if !tested[name] {
					t.Errorf("action %s has no test in action_test.yaml", name)
				}
			}
			for name := range offered {
				t.Errorf("discovery.lua offers %s, which has no %s/action.lua", name, name)
			}
		})
	}
	if !found {
		t.Fatal("no actions found; the path to the customizations is wrong")
	}
}

// discovered turns the table a discovery script returns (action name to
// settings) into a sorted list, failing on settings Argo CD would ignore.
func discovered(t *testing.T, got any) []resourceAction {
	t.Helper()
	table, ok := got.(map[string]any)
	if !ok {
		t.Fatalf("discovery.lua returned %T, want a table of actions", got)
	}
	var actions []resourceAction
	for name, v := range table {
		settings, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("action %s: settings are %T, want a table", name, v)
		}
		a := resourceAction{Name: name}
		for key, val := range settings {
			var ok bool
			switch key {
			case "disabled":
				a.Disabled, ok = val.(bool)
			case "iconClass":
				a.IconClass, ok = val.(string)
			case "displayName":
				a.DisplayName, ok = val.(string)
			}
			if !ok {
				t.Fatalf("action %s: setting %s=%v is not one Argo CD reads", name, key, val)
			}
		}
		actions = append(actions, a)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return actions
}
