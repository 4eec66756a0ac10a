package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func (r *root) newRefreshCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "refresh CHANNEL",
		Short: "Make the operator reconcile a channel now and show the result",
		Long: `Ask the operator to reconcile a channel now: the command sets the
annotation instagram.leadchat.io/requestedAt to the current time and waits
until the manager echoes it in status.lastHandledReconcileAt. That
reconcile re-reads the app and the token Secret, re-checks the account and
checks the webhook subscription against Instagram (repairing drift). The
token itself is refreshed when it is due (status.token.nextRefreshAt), not
earlier.

Exits non-zero when the channel is not Ready afterwards, or when the
manager does not answer within --timeout.`,
		Example: `  kubectl instagram refresh support -n shop
  kubectl instagram refresh support --timeout=5m`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: r.completeChannels,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := r.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ch, err := s.getChannel(ctx, args[0])
			if err != nil {
				return err
			}
			requested := r.opts.Now().UTC().Format(time.RFC3339Nano)
			patch := client.MergeFrom(ch.DeepCopy())
			if ch.Annotations == nil {
				ch.Annotations = map[string]string{}
			}
			ch.Annotations[igv1.AnnotationRequestedAt] = requested
			if err := s.client.Patch(ctx, ch, patch); err != nil {
				return explain(err)
			}
			fmt.Fprintf(r.opts.ErrOut, "Requested a reconcile of %s/%s at %s; waiting for the manager...\n", ch.Namespace, ch.Name, requested)

			err = poll(ctx, r.opts.PollInterval, timeout, func(ctx context.Context) (bool, error) {
				got, err := s.getChannel(ctx, args[0])
				if err != nil {
					return false, err
				}
				ch = got
				return ch.Status.LastHandledReconcileAt == requested, nil
			})
			if errors.Is(err, errTimeout) {
				return fmt.Errorf("the manager did not handle the request within %s (is it running? kubectl -n instagram-operator-system get pods)", timeout)
			}
			if err != nil {
				return err
			}
			return r.printChannelResult(ch)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "How long to wait for the manager.")
	return cmd
}

// printChannelResult prints a channel's Ready condition and token, and
// returns an error when it is not Ready.
func (r *root) printChannelResult(ch *igv1.InstagramChannel) error {
	p := printer{w: r.opts.Out, color: r.colored()}
	rep := channelReport(ch, nil)
	id := ch.Namespace + "/" + ch.Name
	line := []string{id, ": ", p.paint(readyWord(rep.Ready, rep.Reason), readyStyle(rep.Ready, rep.Reason, rep.Stalled))}
	if rep.Message != "" {
		line = append(line, " (", rep.Message, ")")
	}
	p.println(line...)
	if rep.TokenExpiresAt != nil {
		tc := tokenCell(rep, r.opts.Now())
		next := ""
		if rep.NextRefreshAt != nil {
			next = ", next refresh " + relative(rep.NextRefreshAt.Time, r.opts.Now())
		}
		p.println("  token expires ", p.paint(tc.text, tc.style), next)
	}
	if rep.Subscribed == "True" {
		p.println("  webhooks subscribed (", strings.Join(rep.SubscribedFields, ", "), ")")
	}
	if rep.Ready != "True" {
		return fmt.Errorf("InstagramChannel %s is not Ready: %s", id, readyWord(rep.Ready, rep.Reason))
	}
	return nil
}
