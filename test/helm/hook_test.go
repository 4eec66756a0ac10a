package helm_test

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The helm test Pod's script, run here with this machine's wget against a
// stand-in receiver: it passes on the 403 a receiver gives an unknown
// verify token, and fails on anything else (a 200 would mean the receiver
// echoes challenges for tokens no app holds; a 5xx or no answer, that it is
// not serving).
func TestHookScript(t *testing.T) {
	if _, err := exec.LookPath("wget"); err != nil {
		t.Skip("no wget on this machine")
	}
	hook := find(t, mustRender(t, nil).hooks, "Pod", "instagram-operator-test-receiver")
	containers, _, _ := unstructured.NestedSlice(hook.Object, "spec", "containers")
	args := containers[0].(map[string]any)["args"].([]any)
	script := args[0].(string)
	const inCluster = "http://instagram-operator-webhookserver:443"
	if !strings.Contains(script, inCluster+"/webhooks/instagram?hub.mode=subscribe&") {
		t.Fatalf("script does not call the receiver's Service:\n%s", script)
	}
	for name, tc := range map[string]struct {
		status int
		pass   bool
	}{
		"403 for an unknown verify token": {http.StatusForbidden, true},
		"200 echoing the challenge":       {http.StatusOK, false},
		"503 not serving":                 {http.StatusServiceUnavailable, false},
	} {
		t.Run(name, func(t *testing.T) {
			var query string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				query = r.URL.Path + "?" + r.URL.RawQuery
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			out, err := exec.Command("sh", "-c", strings.ReplaceAll(script, inCluster, srv.URL)).CombinedOutput()
			if (err == nil) != tc.pass {
				t.Errorf("script err = %v, want pass=%v\n%s", err, tc.pass, out)
			}
			if !strings.HasPrefix(query, "/webhooks/instagram?") || !strings.Contains(query, "hub.verify_token=") {
				t.Errorf("receiver saw %q", query)
			}
		})
	}
}
