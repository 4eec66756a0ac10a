// Command manager runs the instagram-operator controllers: apps, channels
// (tokens, account, webhook subscription) and outgoing messages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/controllers"
	"github.com/leadchat/instagram-operator/internal/cmdutil"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

type flags struct {
	graphAPIURL, instagramAPIURL, oauthURL, graphVersion string
	publicURL, clusterResourceNamespace                  string
	metricsAddr, probeAddr                               string
	tokenMinRefreshAge, resyncInterval, maxPendingAge    time.Duration
	retentionInterval, instagramTimeout                  time.Duration
	rateLimit, profileRateLimit                          float64
	rateBurst                                            int
	accountTextRate, accountMediaRate, privateReplyRate  float64
	leaderElect, printVersion                            bool
}

func parseFlags() (flags, zap.Options) {
	var f flags
	flag.StringVar(&f.graphAPIURL, "graph-api-url", "https://graph.instagram.com", "Base URL of the Instagram Graph API.")
	flag.StringVar(&f.instagramAPIURL, "instagram-api-url", "https://api.instagram.com", "Base URL of the OAuth code exchange.")
	flag.StringVar(&f.oauthURL, "instagram-oauth-url", "https://www.instagram.com", "Base URL of the Instagram authorize page.")
	flag.StringVar(&f.graphVersion, "graph-api-version", "v24.0", "Graph API version used in versioned paths.")
	flag.StringVar(&f.publicURL, "public-url", "", "External base URL of the webhook receiver, e.g. https://hooks.example.com.")
	flag.DurationVar(&f.tokenMinRefreshAge, "token-min-refresh-age", 24*time.Hour, "Minimum token age before Instagram allows a refresh.")
	flag.StringVar(&f.clusterResourceNamespace, "cluster-resource-namespace", "", "Namespace holding the Secrets of ClusterInstagramApps (default: the pod's namespace).")
	flag.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "Address of the metrics endpoint; 0 disables it.")
	flag.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.BoolVar(&f.leaderElect, "leader-elect", false, "Elect a leader so only one manager replica acts.")
	flag.DurationVar(&f.resyncInterval, "resync-interval", controllers.DefaultResyncInterval, "How often a healthy channel re-checks its webhook subscription (jittered).")
	flag.DurationVar(&f.maxPendingAge, "message-max-pending-age", 24*time.Hour, "How long an outgoing message waits for its channel before it fails as Expired.")
	flag.DurationVar(&f.retentionInterval, "retention-interval", controllers.DefaultRetentionInterval, "How often old messages are swept.")
	flag.Float64Var(&f.rateLimit, "instagram-rate-limit", 20, "Instagram calls per second per app (token bucket); negative disables.")
	flag.IntVar(&f.rateBurst, "instagram-rate-burst", 40, "Burst of the per-app token bucket.")
	flag.BoolVar(&f.printVersion, "version", false, "Print the version and exit.")
	flag.DurationVar(&f.instagramTimeout, "instagram-timeout", instagram.DefaultTimeout, "Longest an Instagram call may take, reading the answer included; with the outcome-write timeout (30s) it sizes the send lease.")
	flag.Float64Var(&f.profileRateLimit, "profile-rate-limit", controllers.DefaultProfileRatePerSecond, "Profile lookups of contacts per second per Instagram account.")
	flag.Float64Var(&f.accountTextRate, "instagram-account-text-rate-limit", instagram.DefaultAccountTextPerSecond,
		"Sends per second per Instagram account of text, links, reactions, stickers, templates, images and sender actions (Instagram's figure); negative disables.")
	flag.Float64Var(&f.accountMediaRate, "instagram-account-media-rate-limit", instagram.DefaultAccountMediaPerSecond,
		"Sends per second per Instagram account of audio and video (Instagram's figure); negative disables.")
	flag.Float64Var(&f.privateReplyRate, "instagram-account-private-reply-rate-limit", instagram.DefaultAccountPrivateRepliesPerHour,
		"Private replies to comments per hour per Instagram account (Instagram's figure); negative disables.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	return f, opts
}

func run() error {
	f, zapOpts := parseFlags()
	build := version.Get()
	if f.printVersion {
		fmt.Println(build.String("manager"))
		return nil
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if f.clusterResourceNamespace == "" {
		f.clusterResourceNamespace = cmdutil.PodNamespace()
	}
	if f.publicURL != "" && !strings.HasPrefix(f.publicURL, "https://") && !strings.HasPrefix(f.publicURL, "http://") {
		return errors.New("--public-url must be an absolute http(s) URL")
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(igv1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress: f.probeAddr,
		LeaderElection:         f.leaderElect,
		// Long enough for a send in flight and its outcome write (the send
		// lease), shorter than the pod's termination grace period (60 s).
		GracefulShutdownTimeout: ptr.To(controllers.SendShutdownGrace(f.instagramTimeout)),
		LeaderElectionID:        "instagram-operator.leadchat.io",
		// Only Secrets the operator manages or references, only outgoing
		// messages still to be sent, no managedFields.
		Cache: controllers.CacheOptions(),
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}

	// The fingerprint key is read once, before the cache exists: the
	// manager caches only watched Secrets, and this one is not.
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	hashKey, err := controllers.LoadOrCreateHashKey(ctx, direct, f.clusterResourceNamespace)
	if err != nil {
		return err
	}

	for _, cluster := range []bool{false, true} {
		if err := (&controllers.AppReconciler{
			Client:                   mgr.GetClient(),
			APIReader:                mgr.GetAPIReader(),
			Cluster:                  cluster,
			ClusterResourceNamespace: f.clusterResourceNamespace,
			PublicURL:                f.publicURL,
			Recorder:                 mgr.GetEventRecorder("instagramapp-controller"),
		}).SetupWithManager(mgr); err != nil {
			return fmt.Errorf("set up app controller: %w", err)
		}
	}

	ig := instagram.NewClients(instagram.Config{
		GraphURL:      f.graphAPIURL,
		APIURL:        f.instagramAPIURL,
		OAuthURL:      f.oauthURL,
		GraphVersion:  f.graphVersion,
		RatePerSecond: f.rateLimit,
		Burst:         f.rateBurst,
		Timeout:       f.instagramTimeout,
		AccountLimits: instagram.AccountLimits{
			TextPerSecond: f.accountTextRate, MediaPerSecond: f.accountMediaRate, PrivateRepliesPerHour: f.privateReplyRate,
		},
		Registerer: metrics.Registry,
	})
	if err := (&controllers.InstagramChannelReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("instagramchannel-controller"),
		Clock:     clock.RealClock{},
		Instagram: ig,
		// Business Login: channels without a usable token publish
		// status.authorizationURL; the receiver's callback completes it.
		Authorizer: &controllers.BusinessLogin{Clock: clock.RealClock{}},
		Options: controllers.ChannelOptions{
			HashKey:                  hashKey,
			TokenMinRefreshAge:       f.tokenMinRefreshAge,
			ClusterResourceNamespace: f.clusterResourceNamespace,
			ResyncInterval:           f.resyncInterval,
			PublicURL:                f.publicURL,
		},
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up channel controller: %w", err)
	}
	outcomes := &controllers.OutcomeEmitter{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder("instagram-sink"),
		Clock:    clock.RealClock{},
	}
	if err := mgr.Add(outcomes); err != nil {
		return fmt.Errorf("set up outcome emitter: %w", err)
	}
	if err := (&controllers.InstagramMessageReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("instagrammessage-controller"),
		Clock:     clock.RealClock{},
		Instagram: ig,
		Options: controllers.MessageOptions{
			MaxPendingAge: f.maxPendingAge,
			// The client's timeout sizes the send lease.
			SendTimeout: f.instagramTimeout,
		},
		Outcomes: outcomes,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up message controller: %w", err)
	}
	if err := (&controllers.InstagramContactReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Clock:     clock.RealClock{},
		Instagram: ig,
		Options:   controllers.ContactOptions{ProfileRatePerSecond: f.profileRateLimit},
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up contact controller: %w", err)
	}
	if err := (&controllers.BackfillReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Clock:     clock.RealClock{},
		Instagram: ig,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up backfill: %w", err)
	}
	if err := (&controllers.InstagramCommentReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("instagramcomment-controller"),
		Clock:     clock.RealClock{},
		Instagram: ig,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up comment controller: %w", err)
	}
	if err := mgr.Add(&controllers.RetentionRunner{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Interval:  f.retentionInterval,
	}); err != nil {
		return fmt.Errorf("set up retention: %w", err)
	}
	if err := mgr.Add(&controllers.LabelMigration{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()}); err != nil {
		return fmt.Errorf("set up label migration: %w", err)
	}
	metrics.Registry.MustRegister(controllers.NewChannelCollector(mgr.GetClient()), controllers.NewContactCollector(mgr.GetClient()), build.Collector())

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("starting manager", "version", build.Version, "revision", build.Revision, "clusterResourceNamespace", f.clusterResourceNamespace, "graphAPIVersion", f.graphVersion)
	return mgr.Start(ctx)
}
