package names

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func TestAppWebhookPath(t *testing.T) {
	tests := map[string]struct {
		kind, namespace, name string
		want                  string
	}{
		"cluster app":                                {igv1.KindClusterInstagramApp, "", "acme", "/webhooks/instagram/clusterapps/acme"},
		"cluster app ignores a namespace":            {igv1.KindClusterInstagramApp, "x", "acme", "/webhooks/instagram/clusterapps/acme"},
		"namespaced app":                             {igv1.KindInstagramApp, "team-a", "own", "/webhooks/instagram/apps/team-a/own"},
		"a namespace named like the cluster segment": {igv1.KindInstagramApp, "clusterapps", "acme", "/webhooks/instagram/apps/clusterapps/acme"},
		"dotted name":                                {igv1.KindInstagramApp, "team-a", "meta.app", "/webhooks/instagram/apps/team-a/meta.app"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := AppWebhookPath(tc.kind, tc.namespace, tc.name); got != tc.want {
				t.Fatalf("AppWebhookPath = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseAppWebhookPath(t *testing.T) {
	type parsed struct {
		Kind, Namespace, Name string
		OK                    bool
	}
	tests := map[string]struct {
		rest string
		want parsed
	}{
		"cluster app":             {"clusterapps/acme", parsed{igv1.KindClusterInstagramApp, "", "acme", true}},
		"namespaced app":          {"apps/team-a/own", parsed{igv1.KindInstagramApp, "team-a", "own", true}},
		"namespace 'clusterapps'": {"apps/clusterapps/acme", parsed{igv1.KindInstagramApp, "clusterapps", "acme", true}},
		"dotted name":             {"apps/team-a/meta.app", parsed{igv1.KindInstagramApp, "team-a", "meta.app", true}},
		"no kind segment":         {"team-a/own", parsed{}},
		"cluster app with ns":     {"clusterapps/team-a/acme", parsed{}},
		"namespaced without ns":   {"apps/own", parsed{}},
		"trailing slash":          {"clusterapps/acme/", parsed{}},
		"upper case":              {"apps/Team/own", parsed{}},
		"dot in namespace":        {"apps/team.a/own", parsed{}},
		"empty name":              {"clusterapps/", parsed{}},
		"dot-dot":                 {"apps/../own", parsed{}},
		"empty":                   {"", parsed{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got parsed
			got.Kind, got.Namespace, got.Name, got.OK = ParseAppWebhookPath(tc.rest)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("ParseAppWebhookPath(%q) (-want +got):\n%s", tc.rest, diff)
			}
		})
	}
}

func TestPublishedNames(t *testing.T) {
	// Literals: both binaries must derive these byte for byte.
	if got, want := AppCredentialsSecretName(igv1.KindInstagramApp, "team-a", "own"), "igapp-7cfe74e90a417613831474e11f4138054b3de355"; got != want {
		t.Fatalf("AppCredentialsSecretName = %q, want %q", got, want)
	}
	if AppCredentialsSecretName(igv1.KindInstagramApp, "a", "b") == AppCredentialsSecretName(igv1.KindClusterInstagramApp, "a", "b") {
		t.Fatal("the kind must be part of the name")
	}
	if got := len(LoginSecretName("a-namespace-of-sixty-three-characters-which-is-the-most-allowed", "name")); got != len("iglogin-")+hashLen {
		t.Fatalf("login Secret name has %d characters", got)
	}
	if LoginSecretName("a-b", "c") == LoginSecretName("a", "b-c") {
		t.Fatal("namespace and name must not run into each other")
	}
}
