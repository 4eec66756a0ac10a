// Package kubectlplugin is the kubectl-instagram plugin: the commands a
// platform engineer runs against a cluster that runs the operator (status,
// login, refresh, send, tail, contacts). cmd/kubectl-instagram only calls
// Main; tests run the same commands in-process against a local control
// plane.
package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// Options are what the commands take from the world outside the cluster, so
// tests can replace them.
type Options struct {
	Out    io.Writer
	ErrOut io.Writer
	// Getenv reads an environment variable (NO_COLOR, TERM, DISPLAY).
	Getenv func(string) string
	// IsTerminal reports whether w is a terminal.
	IsTerminal func(w io.Writer) bool
	// OpenBrowser opens a URL in a browser; nil means xdg-open or open.
	OpenBrowser func(url string) error
	// Now is the clock (relative times in status, requestedAt values).
	Now func() time.Time
	// PollInterval is how often refresh and send look at the object again.
	PollInterval time.Duration
}

func (o *Options) defaults() {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.ErrOut == nil {
		o.ErrOut = os.Stderr
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.IsTerminal == nil {
		o.IsTerminal = fileIsTerminal
	}
	if o.OpenBrowser == nil {
		o.OpenBrowser = openBrowser
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollInterval == 0 {
		o.PollInterval = 500 * time.Millisecond
	}
}

func fileIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// browserCommand is the program that opens a URL on this machine, empty
// where there is none (a server over SSH, a container).
func browserCommand(getenv func(string) string) string {
	switch runtime.GOOS {
	case "darwin":
		return "open"
	case "linux", "freebsd", "openbsd", "netbsd":
		if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
			return ""
		}
		if path, err := exec.LookPath("xdg-open"); err == nil {
			return path
		}
	}
	return ""
}

func openBrowser(url string) error {
	name := browserCommand(os.Getenv)
	if name == "" {
		return errors.New("no browser opener (xdg-open or open) on this machine")
	}
	cmd := exec.Command(name, url)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// Main runs the plugin with args (without the program name) and returns the
// exit code. Every error is printed as one line.
func Main(ctx context.Context, args []string, opts Options) int {
	opts.defaults()
	cmd := NewCommand(opts)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(opts.ErrOut, "error: "+oneLine(err.Error()))
		return 1
	}
	return 0
}

// root holds the flags every command shares.
type root struct {
	opts       Options
	kubeconfig string
	overrides  clientcmd.ConfigOverrides
	color      string
	// namespace is the one the command runs in, known once connected.
	namespace string
}

// NewCommand builds the command tree.
func NewCommand(opts Options) *cobra.Command {
	opts.defaults()
	r := &root{opts: opts}
	cmd := &cobra.Command{
		Use:   "kubectl-instagram",
		Short: "Operate Instagram channels managed by the instagram-operator",
		Long: `kubectl instagram shows and drives the Instagram channels that the
instagram-operator manages: which apps and channels exist and whether they
work, login links for account owners, forced reconciles, test messages and
a live view of incoming messages.

It reads and writes the operator's custom resources with your kubeconfig
credentials, like kubectl; it never sees an access token.`,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl instagram",
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetOut(opts.Out)
	cmd.SetErr(opts.ErrOut)

	flags := cmd.PersistentFlags()
	flags.StringVar(&r.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
	// The flags kubectl itself takes (-n, --context, --as, --server, ...).
	clientcmd.BindOverrideFlags(&r.overrides, flags, clientcmd.RecommendedConfigOverrideFlags(""))
	flags.StringVar(&r.color, "color", "auto", "Colour output: auto (on a terminal unless NO_COLOR is set), always or never.")
	_ = cmd.RegisterFlagCompletionFunc("color", cobra.FixedCompletions([]string{"auto", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("namespace", r.completeNamespaces)

	cmd.AddCommand(
		r.newStatusCommand(),
		r.newLoginCommand(),
		r.newRefreshCommand(),
		r.newSendCommand(),
		r.newTailCommand(),
		r.newContactsCommand(),
	)
	return cmd
}

// colored says whether output to the plugin's stdout gets ANSI colours.
func (r *root) colored() bool {
	switch r.color {
	case "always":
		return true
	case "never":
		return false
	}
	if r.opts.Getenv("NO_COLOR") != "" || r.opts.Getenv("TERM") == "dumb" {
		return false
	}
	return r.opts.IsTerminal(r.opts.Out)
}

func (r *root) validateColor() error {
	switch r.color {
	case "auto", "always", "never":
		return nil
	}
	return fmt.Errorf("--color must be auto, always or never, not %q", r.color)
}

// session is one command's connection to the cluster.
type session struct {
	client    client.WithWatch
	config    *rest.Config
	namespace string
}

var scheme = k8sruntime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(igv1.AddToScheme(scheme))
}

func (r *root) connect() (*session, error) {
	if err := r.validateColor(); err != nil {
		return nil, err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = r.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &r.overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "kubectl-instagram"
	// refresh and send poll twice a second; kubectl's own defaults.
	cfg.QPS, cfg.Burst = 50, 300
	cfg.WarningHandler = rest.NewWarningWriter(r.opts.ErrOut, rest.WarningWriterOptions{Deduplicate: true})
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, explain(err)
	}
	r.namespace = ns
	return &session{client: c, config: cfg, namespace: ns}, nil
}

// errNotInstalled is what every command says on a cluster without the
// operator's CRDs.
var errNotInstalled = errors.New("the instagram-operator is not installed in this cluster: no " + igv1.GroupVersion.Group + " resources (install it with: kubectl apply -f dist/install.yaml)")

// explain turns API errors into the one line a person needs.
func explain(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case meta.IsNoMatchError(err), discovery.IsGroupDiscoveryFailedError(err), isMissingResource(err):
		return errNotInstalled
	case apierrors.IsForbidden(err):
		return fmt.Errorf("forbidden: %s", strings.TrimPrefix(apiMessage(err), "forbidden: "))
	case apierrors.IsUnauthorized(err):
		return errors.New("unauthorized: the API server refused your credentials (check your kubeconfig)")
	}
	return err
}

func apiMessage(err error) string {
	var statusErr apierrors.APIStatus
	if errors.As(err, &statusErr) {
		return statusErr.Status().Message
	}
	return err.Error()
}

// oneLine keeps an error to a single line, as every error of the plugin is.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// notFound says which object is missing, in the words of the plugin.
func notFound(kind, namespace, name string) error {
	if namespace == "" {
		return fmt.Errorf("%s %q not found", kind, name)
	}
	return fmt.Errorf("%s %q not found in namespace %q", kind, name, namespace)
}

// errTimeout is what poll returns when its own time is up.
var errTimeout = errors.New("timed out")

// poll calls cond every interval until it is done, fails, or timeout
// passes (errTimeout). cond's requests run without the deadline, so none
// is cut short and mistaken for an API error.
func poll(ctx context.Context, interval, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := wait.PollUntilContextCancel(pctx, interval, true, func(context.Context) (bool, error) { return cond(ctx) })
	if err != nil && ctx.Err() == nil && pctx.Err() != nil {
		return errTimeout
	}
	return err
}

// getChannel reads one channel and turns the usual failures into one line.
func (s *session) getChannel(ctx context.Context, name string) (*igv1.InstagramChannel, error) {
	ch := &igv1.InstagramChannel{}
	err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: name}, ch)
	if apierrors.IsNotFound(err) && !isMissingResource(err) {
		return nil, notFound("InstagramChannel", s.namespace, name)
	}
	if err != nil {
		return nil, explain(err)
	}
	return ch, nil
}

// isMissingResource tells "the resource type does not exist" (404 without
// an object name in the details, no CRD) from "the object does not exist".
func isMissingResource(err error) bool {
	var statusErr apierrors.APIStatus
	if !errors.As(err, &statusErr) {
		return false
	}
	st := statusErr.Status()
	return st.Code == 404 && (st.Details == nil || st.Details.Name == "")
}

// completeChannels offers the channel names of the namespace.
func (r *root) completeChannels(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	s, err := r.connect()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var list igv1.InstagramChannelList
	if err := s.client.List(cmd.Context(), &list, client.InNamespace(s.namespace)); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	names := make([]string, 0, len(list.Items))
	for _, ch := range list.Items {
		names = append(names, ch.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func (r *root) completeNamespaces(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	s, err := r.connect()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var list igv1.InstagramChannelList
	if err := s.client.List(cmd.Context(), &list); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	seen := map[string]bool{}
	var names []string
	for _, ch := range list.Items {
		if !seen[ch.Namespace] {
			seen[ch.Namespace] = true
			names = append(names, ch.Namespace)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
