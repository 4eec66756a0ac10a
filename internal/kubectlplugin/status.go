package kubectlplugin

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// tokenWarnWithin is when a token expiry turns red: the alert
// InstagramTokenExpiringSoon fires from the same bound.
const tokenWarnWithin = 7 * 24 * time.Hour

// StatusReport is what `status -o json|yaml` prints: apps, each with the
// channels that use it.
type StatusReport struct {
	Apps []AppReport `json:"apps"`
}

// AppReport is one app and the channels that use it.
type AppReport struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Found is false for an app that channels name but that does not
	// exist (or that you may not read).
	Found   bool   `json:"found"`
	Ready   string `json:"ready"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Stalled bool   `json:"stalled,omitempty"`
	// Deleting says why a deleted app still exists (its channels).
	Deleting   string          `json:"deleting,omitempty"`
	WebhookURL string          `json:"webhookURL,omitempty"`
	Channels   []ChannelReport `json:"channels"`
}

// ChannelReport is one channel at a glance.
type ChannelReport struct {
	Namespace        string         `json:"namespace"`
	Name             string         `json:"name"`
	Username         string         `json:"username,omitempty"`
	Ready            string         `json:"ready"`
	Reason           string         `json:"reason,omitempty"`
	Message          string         `json:"message,omitempty"`
	Stalled          bool           `json:"stalled,omitempty"`
	Suspended        bool           `json:"suspended,omitempty"`
	TokenExpiresAt   *metav1.Time   `json:"tokenExpiresAt,omitempty"`
	NextRefreshAt    *metav1.Time   `json:"nextRefreshAt,omitempty"`
	RefreshBefore    string         `json:"refreshBefore,omitempty"`
	Subscribed       string         `json:"subscribed"`
	SubscribedFields []string       `json:"subscribedFields,omitempty"`
	AuthorizationURL string         `json:"authorizationURL,omitempty"`
	LastMessage      *MessageReport `json:"lastMessage,omitempty"`
}

// MessageReport is the latest message of a channel.
type MessageReport struct {
	Name      string      `json:"name"`
	Direction string      `json:"direction"`
	At        metav1.Time `json:"at"`
}

func (r *root) newStatusCommand() *cobra.Command {
	var (
		all    bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show apps, their channels, token expiry, subscription and last message",
		Long: `Show every app and the channels that use it, at a glance: whether each
channel is Ready (or the reason it is not), when its token expires, whether
its webhooks are subscribed and when its last message came or went.

Colours mark what needs attention on a terminal; piped output, --color=never
and NO_COLOR are plain. -o json or -o yaml print the same facts for scripts.`,
		Example: `  kubectl instagram status
  kubectl instagram status -n shop
  kubectl instagram status -A -o json | jq '.apps[].channels[] | select(.ready != "True")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateOutput(output); err != nil {
				return err
			}
			s, err := r.connect()
			if err != nil {
				return err
			}
			report, err := s.status(cmd.Context(), all)
			if err != nil {
				return err
			}
			if output != "" {
				return writeStructured(r.opts.Out, output, report)
			}
			r.printStatus(report, all)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "Show channels of every namespace.")
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json or yaml.")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

type appKey struct{ kind, namespace, name string }

// status gathers the report: channels of the namespace (or all), the apps
// they name, and in the namespace's (or every) app, also those no channel
// uses yet.
func (s *session) status(ctx context.Context, all bool) (*StatusReport, error) {
	var scope []client.ListOption
	if !all {
		scope = append(scope, client.InNamespace(s.namespace))
	}
	var channels igv1.InstagramChannelList
	if err := s.client.List(ctx, &channels, scope...); err != nil {
		return nil, explain(err)
	}
	var apps igv1.InstagramAppList
	if err := s.client.List(ctx, &apps, scope...); err != nil {
		return nil, explain(err)
	}
	// A namespace's team may not read cluster-scoped apps: then those are
	// shown as unknown, and the channels still are.
	var clusterApps igv1.ClusterInstagramAppList
	if err := s.client.List(ctx, &clusterApps); err != nil && !apierrors.IsForbidden(err) {
		return nil, explain(err)
	}
	last, err := s.lastMessages(ctx, scope)
	if err != nil {
		return nil, err
	}

	reports := map[appKey]*AppReport{}
	var order []appKey
	add := func(k appKey, rep *AppReport) {
		if _, ok := reports[k]; !ok {
			reports[k] = rep
			order = append(order, k)
		}
	}
	for i := range apps.Items {
		a := &apps.Items[i]
		add(appKey{igv1.KindInstagramApp, a.Namespace, a.Name}, appReport(igv1.KindInstagramApp, a.Namespace, a.Name, a.Status))
	}
	clusterByName := map[string]*igv1.ClusterInstagramApp{}
	for i := range clusterApps.Items {
		a := &clusterApps.Items[i]
		clusterByName[a.Name] = a
		if all {
			add(appKey{igv1.KindClusterInstagramApp, "", a.Name}, appReport(igv1.KindClusterInstagramApp, "", a.Name, a.Status))
		}
	}
	for i := range channels.Items {
		ch := &channels.Items[i]
		k := appKey{kind: ch.Spec.AppRef.Kind, name: ch.Spec.AppRef.Name}
		if k.kind == "" {
			k.kind = igv1.KindInstagramApp
		}
		if k.kind == igv1.KindInstagramApp {
			k.namespace = ch.Namespace
		}
		if _, ok := reports[k]; !ok {
			if a, ok := clusterByName[k.name]; ok && k.kind == igv1.KindClusterInstagramApp {
				add(k, appReport(k.kind, "", k.name, a.Status))
			} else {
				add(k, &AppReport{Kind: k.kind, Namespace: k.namespace, Name: k.name, Ready: "Unknown", Reason: "NotFound", Message: "no such app, or you may not read it"})
			}
		}
		rep := reports[k]
		rep.Channels = append(rep.Channels, channelReport(ch, last[client.ObjectKeyFromObject(ch)]))
	}

	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.kind != b.kind {
			return a.kind == igv1.KindClusterInstagramApp
		}
		if a.namespace != b.namespace {
			return a.namespace < b.namespace
		}
		return a.name < b.name
	})
	out := &StatusReport{Apps: []AppReport{}}
	for _, k := range order {
		rep := reports[k]
		if rep.Channels == nil {
			rep.Channels = []ChannelReport{}
		}
		sort.Slice(rep.Channels, func(i, j int) bool {
			a, b := rep.Channels[i], rep.Channels[j]
			if a.Namespace != b.Namespace {
				return a.Namespace < b.Namespace
			}
			return a.Name < b.Name
		})
		out.Apps = append(out.Apps, *rep)
	}
	return out, nil
}

func appReport(kind, namespace, name string, st igv1.AppStatus) *AppReport {
	rep := &AppReport{Kind: kind, Namespace: namespace, Name: name, Found: true, Ready: "Unknown", WebhookURL: st.WebhookURL}
	if ready := meta.FindStatusCondition(st.Conditions, igv1.ConditionReady); ready != nil {
		rep.Ready, rep.Reason, rep.Message = string(ready.Status), ready.Reason, ready.Message
	}
	rep.Stalled = meta.IsStatusConditionTrue(st.Conditions, igv1.ConditionStalled)
	if c := meta.FindStatusCondition(st.Conditions, igv1.ConditionReconciling); c != nil && c.Status == metav1.ConditionTrue && c.Reason == igv1.ReasonInUse {
		rep.Deleting = c.Message
	}
	return rep
}

func channelReport(ch *igv1.InstagramChannel, last *MessageReport) ChannelReport {
	rep := ChannelReport{
		Namespace:        ch.Namespace,
		Name:             ch.Name,
		Ready:            "Unknown",
		Suspended:        ch.Spec.Suspend,
		Subscribed:       "Unknown",
		SubscribedFields: ch.Status.SubscribedFields,
		AuthorizationURL: ch.Status.AuthorizationURL,
		LastMessage:      last,
	}
	if ch.Spec.RefreshBefore != nil {
		rep.RefreshBefore = ch.Spec.RefreshBefore.Duration.String()
	}
	if ch.Status.Account != nil {
		rep.Username = ch.Status.Account.Username
	}
	if ch.Status.Token != nil {
		rep.TokenExpiresAt = ch.Status.Token.ExpiresAt
		rep.NextRefreshAt = ch.Status.Token.NextRefreshAt
	}
	// A status written for an older generation says nothing yet about the
	// current spec.
	if ready := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady); ready != nil {
		rep.Ready, rep.Reason, rep.Message = string(ready.Status), ready.Reason, ready.Message
		if ready.ObservedGeneration != ch.Generation {
			rep.Ready, rep.Reason, rep.Message = "Unknown", "Progressing", "the operator has not yet looked at the latest spec"
		}
	}
	rep.Stalled = meta.IsStatusConditionTrue(ch.Status.Conditions, igv1.ConditionStalled)
	if sub := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionWebhookSubscribed); sub != nil {
		rep.Subscribed = string(sub.Status)
	}
	return rep
}

// lastMessages finds the newest message of every channel from object
// metadata only, page by page, so a long history costs little.
func (s *session) lastMessages(ctx context.Context, scope []client.ListOption) (map[client.ObjectKey]*MessageReport, error) {
	out := map[client.ObjectKey]*MessageReport{}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(igv1.GroupVersion.WithKind("InstagramMessageList"))
	opts := append([]client.ListOption{client.HasLabels{igv1.LabelChannel}, client.Limit(500)}, scope...)
	for {
		if err := s.client.List(ctx, list, opts...); err != nil {
			return nil, explain(err)
		}
		for i := range list.Items {
			m := &list.Items[i]
			key := client.ObjectKey{Namespace: m.Namespace, Name: m.Labels[igv1.LabelChannel]}
			if cur, ok := out[key]; ok && !cur.At.Before(&m.CreationTimestamp) {
				continue
			}
			out[key] = &MessageReport{Name: m.Name, Direction: m.Labels[igv1.LabelDirection], At: m.CreationTimestamp}
		}
		if list.Continue == "" {
			return out, nil
		}
		opts = append(opts, client.Continue(list.Continue))
	}
}

func (r *root) printStatus(report *StatusReport, all bool) {
	p := printer{w: r.opts.Out, color: r.colored()}
	now := r.opts.Now()
	if len(report.Apps) == 0 {
		where := "namespace " + "\"" + r.namespace + "\""
		if all {
			where = "the cluster"
		}
		p.println("No Instagram apps or channels in ", where, ".")
		return
	}
	for i, app := range report.Apps {
		if i > 0 {
			p.println()
		}
		name := app.Name
		if app.Namespace != "" {
			name = app.Namespace + "/" + app.Name
		}
		head := []string{p.paint(app.Kind+" "+name, bold), "  ", p.paint(readyWord(app.Ready, app.Reason), readyStyle(app.Ready, app.Reason, app.Stalled))}
		if app.Ready != "True" && app.Message != "" {
			head = append(head, ": ", app.Message)
		}
		if app.Deleting != "" {
			head = append(head, "  ", p.paint("being deleted: "+app.Deleting, yellow))
		}
		p.println(head...)
		if app.WebhookURL != "" {
			p.println("  webhook ", app.WebhookURL)
		}
		if len(app.Channels) == 0 {
			p.println("  ", p.paint("no channels", faint))
			continue
		}
		rows := make([][]cell, 0, len(app.Channels))
		var hints []string
		for _, ch := range app.Channels {
			name := ch.Name
			if all || ch.Namespace != r.namespace {
				name = ch.Namespace + "/" + ch.Name
			}
			account := "-"
			if ch.Username != "" {
				account = "@" + ch.Username
			}
			rows = append(rows, []cell{
				c(name),
				c(account),
				styled(readyWord(ch.Ready, ch.Reason), readyStyle(ch.Ready, ch.Reason, ch.Stalled)),
				tokenCell(ch, now),
				subscribedCell(ch),
				lastMessageCell(ch.LastMessage, now),
			})
			if ch.AuthorizationURL != "" {
				hints = append(hints, fmt.Sprintf("%s awaits a login: kubectl instagram login %s -n %s", name, ch.Name, ch.Namespace))
			}
		}
		p.table("  ", []string{"CHANNEL", "ACCOUNT", "READY", "TOKEN EXPIRES", "SUBSCRIBED", "LAST MESSAGE"}, rows)
		for _, h := range hints {
			p.println("  ", p.paint(h, faint))
		}
	}
}

func readyWord(status, reason string) string {
	if status == "True" {
		return "Ready"
	}
	if reason == "" {
		return "Unknown"
	}
	return reason
}

// readyStyle colours a Ready condition: green when Ready, red when only a
// person can help (Stalled), yellow while the operator or a login is
// still under way. A channel awaiting its login is stalled by definition,
// yet that is the expected first state, not an alarm.
func readyStyle(status, reason string, stalled bool) style {
	switch {
	case status == "True":
		return green
	case reason == igv1.ReasonAwaitingAuthorization:
		return yellow
	case stalled:
		return red
	default:
		return yellow
	}
}

func tokenCell(ch ChannelReport, now time.Time) cell {
	if ch.TokenExpiresAt == nil {
		return c("-")
	}
	at := ch.TokenExpiresAt.Time
	text := relative(at, now) + " (" + at.UTC().Format("2006-01-02") + ")"
	left := at.Sub(now)
	refreshBefore, _ := time.ParseDuration(ch.RefreshBefore)
	switch {
	case left < tokenWarnWithin:
		return styled(text, red)
	case refreshBefore > 0 && left < refreshBefore:
		// Past the point where the refresh was due.
		return styled(text, yellow)
	}
	return styled(text, green)
}

func subscribedCell(ch ChannelReport) cell {
	switch ch.Subscribed {
	case "True":
		// The list is in -o json; a table cell keeps to the count.
		return styled(fmt.Sprintf("yes (%d fields)", len(ch.SubscribedFields)), green)
	case "False":
		return styled("no", yellow)
	}
	return c("-")
}

func lastMessageCell(m *MessageReport, now time.Time) cell {
	if m == nil {
		return c("-")
	}
	return c(relative(m.At.Time, now) + " " + m.Direction)
}
