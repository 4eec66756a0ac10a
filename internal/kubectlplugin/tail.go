package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func (r *root) newTailCommand() *cobra.Command {
	var (
		all       bool
		follow    bool
		tail      int
		direction string
	)
	cmd := &cobra.Command{
		Use:   "tail [CHANNEL]",
		Short: "Follow incoming messages live, like kubectl logs -f",
		Long: `Print the most recent messages of a channel (or of every channel of the
namespace, or with -A of the cluster), then follow new ones as the webhook
receiver stores them, until interrupted.

Each line shows when the message was stored, the channel, the contact's
Instagram-scoped ID and the text (attachments as [type]).`,
		Example: `  kubectl instagram tail support -n shop
  kubectl instagram tail -A --tail=0
  kubectl instagram tail support --direction=all --follow=false`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: r.completeChannels,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch direction {
			case "incoming", "outgoing", "all":
			default:
				return fmt.Errorf("--direction must be incoming, outgoing or all, not %q", direction)
			}
			s, err := r.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			channel := ""
			if len(args) == 1 {
				if all {
					return errors.New("name a channel or use --all-namespaces, not both")
				}
				ch, err := s.getChannel(ctx, args[0])
				if err != nil {
					return err
				}
				channel = ch.Name
			}
			t := &tailer{root: r, s: s, all: all, channel: channel, direction: direction, printed: map[types.UID]bool{}}
			return t.run(ctx, tail, follow)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "Follow channels of every namespace.")
	cmd.Flags().BoolVarP(&follow, "follow", "f", true, "Keep following new messages.")
	cmd.Flags().IntVar(&tail, "tail", 10, "How many recent messages to print first (-1: all).")
	cmd.Flags().StringVar(&direction, "direction", "incoming", "Which messages: incoming, outgoing or all.")
	_ = cmd.RegisterFlagCompletionFunc("direction", cobra.FixedCompletions([]string{"incoming", "outgoing", "all"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

type tailer struct {
	*root
	s         *session
	all       bool
	channel   string
	direction string
	// printed remembers what was shown, so a watch that starts again after
	// a relist prints nothing twice.
	printed map[types.UID]bool
}

func (t *tailer) listOptions() []client.ListOption {
	var opts []client.ListOption
	if !t.all {
		opts = append(opts, client.InNamespace(t.s.namespace))
	}
	if t.direction != "all" {
		opts = append(opts, client.MatchingLabels{igv1.LabelDirection: t.direction})
	}
	return opts
}

// matches filters by channel here: an outgoing message a user created may
// not carry the channel label yet.
func (t *tailer) matches(m *igv1.InstagramMessage) bool {
	return t.channel == "" || m.Spec.ChannelRef.Name == t.channel
}

func (t *tailer) run(ctx context.Context, tail int, follow bool) error {
	rv, err := t.printRecent(ctx, tail)
	if err != nil || !follow {
		return err
	}
	for {
		rv, err = t.follow(ctx, rv)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if rv == "" {
			// The resource version is too old: start over from a fresh
			// list, printing only what was not printed yet.
			if rv, err = t.printRecent(ctx, -1); err != nil {
				return err
			}
		}
	}
}

// printRecent prints the last n matching messages (all when n < 0) and
// returns the list's resource version to watch from.
func (t *tailer) printRecent(ctx context.Context, n int) (string, error) {
	var list igv1.InstagramMessageList
	if err := t.s.client.List(ctx, &list, t.listOptions()...); err != nil {
		return "", explain(err)
	}
	var msgs []*igv1.InstagramMessage
	for i := range list.Items {
		if m := &list.Items[i]; t.matches(m) && !t.printed[m.UID] {
			msgs = append(msgs, m)
		}
	}
	sort.SliceStable(msgs, func(i, j int) bool { return messageTime(msgs[i]).Time.Before(messageTime(msgs[j]).Time) })
	if n >= 0 && len(msgs) > n {
		// Older ones count as shown, so a relist does not print them.
		for _, m := range msgs[:len(msgs)-n] {
			t.printed[m.UID] = true
		}
		msgs = msgs[len(msgs)-n:]
	}
	for _, m := range msgs {
		t.print(m)
	}
	return list.ResourceVersion, nil
}

// follow watches from rv and prints new messages. It returns the last
// resource version seen when the watch ends, or "" when rv has expired.
func (t *tailer) follow(ctx context.Context, rv string) (string, error) {
	opts := append(t.listOptions(), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
	w, err := t.s.client.Watch(ctx, &igv1.InstagramMessageList{}, opts...)
	if err != nil {
		return "", explain(err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return rv, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, nil
			}
			switch ev.Type {
			case watch.Error:
				if status, ok := ev.Object.(*metav1.Status); ok && status.Code == 410 {
					return "", nil
				}
				return rv, explain(apierrors.FromObject(ev.Object))
			case watch.Added, watch.Modified, watch.Bookmark:
				m, ok := ev.Object.(*igv1.InstagramMessage)
				if !ok {
					continue
				}
				rv = m.ResourceVersion
				if ev.Type == watch.Added && t.matches(m) && !t.printed[m.UID] {
					t.print(m)
				}
			}
		}
	}
}

func messageTime(m *igv1.InstagramMessage) metav1.Time {
	if m.Status.Timestamp != nil {
		return *m.Status.Timestamp
	}
	return m.CreationTimestamp
}

func (t *tailer) print(m *igv1.InstagramMessage) {
	t.printed[m.UID] = true
	p := printer{w: t.opts.Out, color: t.colored()}
	channel := m.Spec.ChannelRef.Name
	if t.all {
		channel = m.Namespace + "/" + channel
	}
	arrow := "<"
	if m.Spec.Direction == igv1.DirectionOutgoing {
		arrow = ">"
	}
	text := m.Spec.Text
	for _, a := range m.Spec.Attachments {
		text = strings.TrimSpace(text + " [" + a.Type + "]")
	}
	if text == "" && m.Status.Phase == igv1.PhaseDeleted {
		text = "(unsent)"
	}
	p.println(
		p.paint(messageTime(m).UTC().Format("2006-01-02T15:04:05Z"), faint), " ",
		p.paint(channel, bold), " ",
		p.paint(m.Spec.ContactID, cyan), " ", arrow, " ",
		oneLine(text),
	)
}
