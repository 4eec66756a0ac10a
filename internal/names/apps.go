package names

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// Per-app webhook paths. Each app has its own callback URL, so a delivery is
// verified against that one app's secrets (current and previous) and a forged
// POST costs at most two HMACs, however many apps tenants create:
//
//	/webhooks/instagram/apps/<namespace>/<name>   InstagramApp
//	/webhooks/instagram/clusterapps/<name>        ClusterInstagramApp
//
// The kind is a fixed path segment, not a guess from the number of segments,
// so no namespace name ("clusterapps" is a valid one) can make two apps share
// a path. Object names are DNS subdomains and namespaces DNS labels: neither
// holds "/" or needs escaping.
const (
	AppPathSegment        = "apps"
	ClusterAppPathSegment = "clusterapps"
)

// AppWebhookPath is the webhook path of one app; namespace is ignored for a
// ClusterInstagramApp.
func AppWebhookPath(kind, namespace, name string) string {
	if kind == igv1.KindClusterInstagramApp {
		return igv1.WebhookPath + "/" + ClusterAppPathSegment + "/" + name
	}
	return igv1.WebhookPath + "/" + AppPathSegment + "/" + namespace + "/" + name
}

// ParseAppWebhookPath is the inverse of AppWebhookPath on the part of a path
// after igv1.WebhookPath+"/"; ok is false for anything AppWebhookPath cannot
// have produced, so a bad path never reaches a cache lookup.
func ParseAppWebhookPath(rest string) (kind, namespace, name string, ok bool) {
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == ClusterAppPathSegment:
		if len(validation.IsDNS1123Subdomain(parts[1])) != 0 {
			return "", "", "", false
		}
		return igv1.KindClusterInstagramApp, "", parts[1], true
	case len(parts) == 3 && parts[0] == AppPathSegment:
		if len(validation.IsDNS1123Label(parts[1])) != 0 || len(validation.IsDNS1123Subdomain(parts[2])) != 0 {
			return "", "", "", false
		}
		return igv1.KindInstagramApp, parts[1], parts[2], true
	}
	return "", "", "", false
}

// AppCredentialsSecretName is the Secret in the operator's namespace into
// which the manager publishes the credentials the receiver needs of one app
// (appSecret, previousAppSecret, verifyToken). The receiver may read Secrets
// of that namespace only, so it never needs access to a tenant's namespace.
// The name is a hash: a namespace and an app name together can be longer
// than an object name may be; annotations on the Secret name the app.
func AppCredentialsSecretName(kind, namespace, name string) string {
	return "igapp-" + hashHex(kind+"/"+namespace+"/"+name)
}

// LoginSecretName is the Secret in the operator's namespace through which
// the receiver hands a completed Business Login to the manager; annotations
// on it name the channel. Channel names cannot contain "/", so namespace and
// name cannot run into each other.
func LoginSecretName(namespace, channel string) string {
	return "iglogin-" + hashHex(namespace+"/"+channel)
}
