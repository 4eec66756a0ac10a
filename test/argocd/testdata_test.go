package argocd

import (
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// conditioned is what every kind of the API implements.
type conditioned interface {
	client.Object
	GetConditions() []metav1.Condition
}

// testObjects lists every object the Lua scripts are tested with.
func testObjects(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*/testdata/*.yaml", "*/actions/testdata/*.yaml"} {
		matches, err := filepath.Glob(filepath.Join(customizationsDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, matches...)
	}
	if len(files) == 0 {
		t.Fatal("no test objects found")
	}
	return files
}

// TestTestdataAreRealObjects keeps the test objects honest: each decodes
// into the API types without unknown fields and carries what the operator
// writes (generation, observedGeneration, conditions valid for the API
// server), so the health checks are tested against what they will meet.
func TestTestdataAreRealObjects(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := igv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for _, path := range testObjects(t) {
		rel, _ := filepath.Rel(customizationsDir, path)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(data, &tm); err != nil {
				t.Fatal(err)
			}
			if tm.APIVersion != igv1.GroupVersion.String() {
				t.Fatalf("apiVersion %q, want %q", tm.APIVersion, igv1.GroupVersion.String())
			}
			typed, err := scheme.New(igv1.GroupVersion.WithKind(tm.Kind))
			if err != nil {
				t.Fatalf("kind %q: %v", tm.Kind, err)
			}
			if err := yaml.UnmarshalStrict(data, typed); err != nil {
				t.Fatalf("not a valid %s: %v", tm.Kind, err)
			}
			obj := typed.(conditioned)

			if obj.GetName() == "" || obj.GetUID() == "" || obj.GetCreationTimestamp().Time.IsZero() || obj.GetGeneration() < 1 {
				t.Errorf("metadata lacks name, uid, creationTimestamp or generation as the API server sets them")
			}
			observed := observedGeneration(t, data)
			if observed > obj.GetGeneration() {
				t.Errorf("status.observedGeneration %d is ahead of metadata.generation %d", observed, obj.GetGeneration())
			}
			if errs := metav1validation.ValidateConditions(obj.GetConditions(), field.NewPath("status", "conditions")); len(errs) > 0 {
				t.Errorf("conditions the API server would reject: %v", errs.ToAggregate())
			}
			for _, c := range obj.GetConditions() {
				if c.ObservedGeneration < 1 || c.ObservedGeneration > observed {
					t.Errorf("condition %s: observedGeneration %d outside 1..%d", c.Type, c.ObservedGeneration, observed)
				}
				if c.Message == "" {
					t.Errorf("condition %s has no message", c.Type)
				}
			}
			if len(obj.GetConditions()) > 0 && observed == 0 {
				t.Errorf("conditions without status.observedGeneration")
			}
		})
	}
}

// observedGeneration reads status.observedGeneration without knowing the
// kind (every status has it).
func observedGeneration(t *testing.T, data []byte) int64 {
	t.Helper()
	var partial struct {
		Status struct {
			ObservedGeneration int64 `json:"observedGeneration"`
		} `json:"status"`
	}
	if err := yaml.Unmarshal(data, &partial); err != nil {
		t.Fatal(err)
	}
	return partial.Status.ObservedGeneration
}
