// Command webhookserver runs the internet-facing Instagram webhook receiver.
// It runs a controller-runtime manager only for its cache (apps, channels and
// the app credentials published in the operator's namespace): no controllers, no leader election, so every
// replica serves.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/cmdutil"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/sink"
	"github.com/leadchat/instagram-operator/internal/version"
	"github.com/leadchat/instagram-operator/webhookserver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "webhookserver:", err)
		os.Exit(1)
	}
}

type flags struct {
	graphAPIURL, instagramAPIURL, graphVersion string
	publicURL, clusterResourceNamespace        string
	metricsAddr, probeAddr, bindAddr           string
	maxBodyBytes                               int64
	sharedPathMaxSecrets                       int
	trustedProxies                             string
	printVersion                               bool
	sinkMaxInFlight                            int
}

func parseFlags() (flags, zap.Options) {
	var f flags
	// The Instagram endpoints and the public URL serve the OAuth callback
	// route of this binary.
	flag.StringVar(&f.graphAPIURL, "graph-api-url", "https://graph.instagram.com", "Base URL of the Instagram Graph API.")
	flag.StringVar(&f.instagramAPIURL, "instagram-api-url", "https://api.instagram.com", "Base URL of the OAuth code exchange.")
	flag.StringVar(&f.graphVersion, "graph-api-version", "v24.0", "Graph API version used in versioned paths.")
	flag.StringVar(&f.publicURL, "public-url", "", "External base URL of this receiver, e.g. https://hooks.example.com.")
	flag.StringVar(&f.clusterResourceNamespace, "cluster-resource-namespace", "", "Namespace holding the Secrets of ClusterInstagramApps (default: the pod's namespace).")
	flag.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "Address of the metrics endpoint; 0 disables it.")
	flag.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.StringVar(&f.bindAddr, "bind-address", ":8443", "Public listener for Meta's webhook deliveries.")
	flag.Int64Var(&f.maxBodyBytes, "max-body-bytes", webhookserver.DefaultMaxBodyBytes, "Largest webhook body accepted; larger ones get 413.")
	flag.IntVar(&f.sharedPathMaxSecrets, "shared-path-max-secrets", webhookserver.DefaultMaxSharedPathSecrets,
		"App secrets a delivery on the shared path /webhooks/instagram is checked against (oldest apps first); 0 turns the shared path off. Apps past it must use their own path (status.webhookURL).")
	flag.StringVar(&f.trustedProxies, "trusted-proxies", "",
		"Comma-separated addresses or CIDRs of the proxies in front of the receiver whose X-Forwarded-For names the client (per-client limits). Empty: the peer address is the client.")
	flag.BoolVar(&f.printVersion, "version", false, "Print the version and exit.")
	flag.IntVar(&f.sinkMaxInFlight, "sink-max-in-flight", sink.DefaultMaxInFlight, "Most CloudEvents in flight to one event sink at once.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	return f, opts
}

func run() error {
	f, zapOpts := parseFlags()
	build := version.Get()
	if f.printVersion {
		fmt.Println(build.String("webhookserver"))
		return nil
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	if f.clusterResourceNamespace == "" {
		f.clusterResourceNamespace = cmdutil.PodNamespace()
	}
	if f.publicURL != "" && !strings.HasPrefix(f.publicURL, "https://") && !strings.HasPrefix(f.publicURL, "http://") {
		return errors.New("--public-url must be an absolute http(s) URL")
	}
	if f.maxBodyBytes <= 0 {
		return errors.New("--max-body-bytes must be positive")
	}
	if f.sharedPathMaxSecrets < 0 {
		return errors.New("--shared-path-max-secrets must not be negative")
	}
	trusted, err := webhookserver.ParseTrustedProxies(f.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	sharedSecrets := f.sharedPathMaxSecrets
	if sharedSecrets == 0 {
		sharedSecrets = -1 // off
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(igv1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress: f.probeAddr,
		Cache:                  webhookserver.CacheOptions(f.clusterResourceNamespace),
		Client:                 webhookserver.ClientOptions(),
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}

	metrics.Registry.MustRegister(build.Collector())

	ctx := ctrl.SetupSignalHandler()
	srv := webhookserver.New(webhookserver.Options{
		Client:                   mgr.GetClient(),
		Cache:                    mgr.GetCache(),
		APIReader:                mgr.GetAPIReader(),
		ClusterResourceNamespace: f.clusterResourceNamespace,
		BindAddress:              f.bindAddr,
		MaxBodyBytes:             f.maxBodyBytes,
		MaxSharedPathSecrets:     sharedSecrets,
		TrustedProxies:           trusted,
		Sink:                     sink.Options{MaxInFlight: f.sinkMaxInFlight},
		Logger:                   ctrl.Log.WithName("webhookserver"),
		// The Business Login callback exchanges codes and names the
		// connected account.
		Login: webhookserver.LoginOptions{Instagram: instagram.NewClients(instagram.Config{
			GraphURL:     f.graphAPIURL,
			APIURL:       f.instagramAPIURL,
			GraphVersion: f.graphVersion,
			Registerer:   metrics.Registry,
		})},
	})
	if err := srv.SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", srv.ReadyCheck); err != nil {
		return err
	}
	log.Info("Starting webhook receiver", "version", build.Version, "revision", build.Revision, "bindAddress", f.bindAddr, "clusterResourceNamespace", f.clusterResourceNamespace,
		"sharedPathMaxSecrets", f.sharedPathMaxSecrets, "trustedProxies", f.trustedProxies, "graphAPIURL", f.graphAPIURL, "instagramAPIURL", f.instagramAPIURL, "graphAPIVersion", f.graphVersion, "publicURL", f.publicURL)
	return mgr.Start(ctx)
}
