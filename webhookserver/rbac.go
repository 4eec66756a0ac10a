package webhookserver

// The receiver's ServiceAccount may only read apps, channels and the Secrets
// they reference, and write InstagramMessage objects. The Secret rules are
// cluster-wide because InstagramApp Secrets live in tenant namespaces; the
// receiver's cache still selects only Secrets labelled
// instagram.leadchat.io/watch=true.
//
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagramapps;clusterinstagramapps;instagramchannels,verbs=get;list;watch
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagrammessages,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=instagram.leadchat.io,resources=instagrammessages/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
