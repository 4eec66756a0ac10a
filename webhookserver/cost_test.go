package webhookserver

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
)

const costNamespace = "operator"

// manyApps is a cache holding the published credentials of n tenant apps,
// each with a current and a previous secret, as tenants creating
// InstagramApps would make it.
func manyApps(t testing.TB, n int) client.Reader {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := igv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for i := range n {
		ns, name := fmt.Sprintf("tenant-%03d", i), "app"
		objs = append(objs, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: costNamespace, Name: names.AppCredentialsSecretName(igv1.KindInstagramApp, ns, name),
				Labels: map[string]string{igv1.LabelAppCredentials: "true"},
				Annotations: map[string]string{
					igv1.AnnotationAppKind: igv1.KindInstagramApp, igv1.AnnotationAppNamespace: ns, igv1.AnnotationAppName: name,
				},
				// Distinct creation times order the shared path's apps.
				CreationTimestamp: metav1.Unix(int64(1_700_000_000+i), 0),
			},
			Type: igv1.AppCredentialsSecretType,
			Data: map[string][]byte{
				igv1.AppSecretKeyAppSecret:         fmt.Appendf(nil, "secret-%d", i),
				igv1.AppSecretKeyPreviousAppSecret: fmt.Appendf(nil, "previous-%d", i),
				igv1.AppSecretKeyVerifyToken:       fmt.Appendf(nil, "verify-%d", i),
			},
		})
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
}

// secretsTried is how many secrets a delivery on path would be checked
// against: the HMACs a forged POST costs.
func secretsTried(t *testing.T, s *Server, path string) int {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, nil)
	mux := http.NewServeMux()
	var n int
	var err error
	count := func(_ http.ResponseWriter, r *http.Request) {
		var apps []AppCredentials
		apps, _, err = s.candidates(context.Background(), r)
		for _, a := range apps {
			n += len(a.Secrets)
		}
	}
	mux.HandleFunc("POST "+WebhookPath, count)
	mux.HandleFunc("POST "+WebhookPath+"/{app...}", count)
	mux.ServeHTTP(httptest.NewRecorder(), r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

func TestForgedPostCostIsBoundedWhateverTheNumberOfApps(t *testing.T) {
	for _, apps := range []int{1, 101} {
		s := New(Options{Cache: manyApps(t, apps), ClusterResourceNamespace: costNamespace})
		if got := secretsTried(t, s, names.AppWebhookPath(igv1.KindInstagramApp, "tenant-000", "app")); got != 2 {
			t.Errorf("%d apps: a per-app path tries %d secrets, want 2 (current and previous)", apps, got)
		}
		if got := secretsTried(t, s, WebhookPath); got > DefaultMaxSharedPathSecrets {
			t.Errorf("%d apps: the shared path tries %d secrets, bound %d", apps, got, DefaultMaxSharedPathSecrets)
		}
	}
}

// BenchmarkForgedPost is the cost of a forged 1 MiB POST through the real
// handler with 101 apps: on an app's path it is that of one app.
func BenchmarkForgedPost(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1<<20)
	header := hubSignature("forged", body)
	for _, path := range []string{names.AppWebhookPath(igv1.KindInstagramApp, "tenant-050", "app"), WebhookPath} {
		b.Run(path, func(b *testing.B) {
			s := New(Options{Cache: manyApps(b, 101), ClusterResourceNamespace: costNamespace, SignatureFailureBurst: 1 << 30})
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
				r.Header.Set(SignatureHeader, header)
				w := httptest.NewRecorder()
				s.ServeHTTP(w, r)
				if w.Code != http.StatusUnauthorized {
					b.Fatalf("forged POST answered %d", w.Code)
				}
			}
		})
	}
}

// TestSharedPathBound: the shared path serves the apps published first, up
// to the bound in secrets, whole apps only; the others are refused there
// (delivery and handshake alike) and served on their own path.
func TestSharedPathBound(t *testing.T) {
	cache := manyApps(t, 3) // each app: current and previous secret
	s := New(Options{Cache: cache, ClusterResourceNamespace: costNamespace, MaxSharedPathSecrets: 5, SignatureFailureBurst: 1 << 20})
	body := []byte(`{"object":"instagram","entry":[]}`)
	post := func(path, secret string) int {
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		r.Header.Set(SignatureHeader, hubSignature(secret, body))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code
	}
	own := func(i int) string {
		return names.AppWebhookPath(igv1.KindInstagramApp, fmt.Sprintf("tenant-%03d", i), "app")
	}
	tests := map[string]struct {
		path, secret string
		want         int
	}{
		"first app on the shared path":                 {WebhookPath, "secret-0", http.StatusOK},
		"first app's previous secret":                  {WebhookPath, "previous-0", http.StatusOK},
		"second app on the shared path":                {WebhookPath, "secret-1", http.StatusOK},
		"third app past the bound of 5 secrets":        {WebhookPath, "secret-2", http.StatusUnauthorized},
		"third app on its own path":                    {own(2), "secret-2", http.StatusOK},
		"another app's secret on the third app's path": {own(2), "secret-0", http.StatusUnauthorized},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := post(tc.path, tc.secret); got != tc.want {
				t.Fatalf("POST %s signed with %s: %d, want %d", tc.path, tc.secret, got, tc.want)
			}
		})
	}

	handshake := func(path, token string) int {
		r := httptest.NewRequest(http.MethodGet, path+"?hub.mode=subscribe&hub.challenge=42&hub.verify_token="+token, nil)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code
	}
	if got := handshake(WebhookPath, "verify-2"); got != http.StatusForbidden {
		t.Errorf("shared-path handshake of an app past the bound: %d, want 403 (it would promise deliveries that fail)", got)
	}
	if got := handshake(WebhookPath, "verify-0"); got != http.StatusOK {
		t.Errorf("shared-path handshake of the first app: %d, want 200", got)
	}
	if got := handshake(own(2), "verify-2"); got != http.StatusOK {
		t.Errorf("own-path handshake of the third app: %d, want 200", got)
	}

	off := New(Options{Cache: cache, ClusterResourceNamespace: costNamespace, MaxSharedPathSecrets: -1})
	r := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(body))
	r.Header.Set(SignatureHeader, hubSignature("secret-0", body))
	w := httptest.NewRecorder()
	off.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("shared path turned off answered %d, want 401", w.Code)
	}
}
