package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func (r *root) newSendCommand() *cobra.Command {
	var (
		timeout time.Duration
		waitFor bool
		tag     string
		replyTo string
	)
	cmd := &cobra.Command{
		Use:   "send CHANNEL CONTACT TEXT",
		Short: "Send a text message to a contact and follow it to Sent or Failed",
		Long: `Create an outgoing InstagramMessage from CHANNEL to CONTACT (the customer's
Instagram-scoped ID, the instagram.leadchat.io/contact label of their
messages) and follow it until the operator reports Sent, Read or Failed.

Instagram accepts a reply only within 24 hours of the customer's last
message (7 days with --tag=HUMAN_AGENT, which needs Meta's Human Agent
permission). Exits non-zero when the message fails.`,
		Example: `  kubectl instagram send support 5512340000000001 "Yes, it is in stock."
  kubectl instagram send support 5512340000000001 "Back tomorrow" --tag=HUMAN_AGENT
  kubectl instagram send support 5512340000000001 "Thanks!" --wait=false`,
		Args:              cobra.ExactArgs(3),
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
			msg := &igv1.InstagramMessage{
				ObjectMeta: metav1.ObjectMeta{
					Namespace:    ch.Namespace,
					GenerateName: ch.Name + "-out-",
					Labels: map[string]string{
						igv1.LabelChannel:   ch.Name,
						igv1.LabelContact:   args[1],
						igv1.LabelDirection: igv1.DirectionLabelOutgoing,
					},
				},
				Spec: igv1.InstagramMessageSpec{
					ChannelRef: igv1.ChannelReference{Name: ch.Name},
					Direction:  igv1.DirectionOutgoing,
					ContactID:  args[1],
					Text:       args[2],
					ReplyTo:    replyTo,
					Tag:        igv1.MessageTag(tag),
				},
			}
			if err := s.client.Create(ctx, msg); err != nil {
				return explain(err)
			}
			id := msg.Namespace + "/" + msg.Name
			if !waitFor {
				fmt.Fprintln(r.opts.Out, "instagrammessage/"+msg.Name+" created")
				return nil
			}
			fmt.Fprintf(r.opts.ErrOut, "Created InstagramMessage %s; waiting for the manager to send it...\n", id)
			key := client.ObjectKeyFromObject(msg)
			err = poll(ctx, r.opts.PollInterval, timeout, func(ctx context.Context) (bool, error) {
				if err := s.client.Get(ctx, key, msg); err != nil {
					return false, explain(err)
				}
				switch msg.Status.Phase {
				case igv1.PhaseSent, igv1.PhaseRead, igv1.PhaseFailed:
					return true, nil
				}
				return false, nil
			})
			if errors.Is(err, errTimeout) {
				phase := string(msg.Status.Phase)
				if phase == "" {
					phase = "no phase yet"
				}
				detail := ""
				if msg.Status.Reason != "" {
					detail = ": " + msg.Status.Reason + " " + msg.Status.Message
				}
				return fmt.Errorf("InstagramMessage %s is still %s after %s%s (is the manager running?)", id, phase, timeout, detail)
			}
			if err != nil {
				return err
			}
			p := printer{w: r.opts.Out, color: r.colored()}
			if msg.Status.Phase == igv1.PhaseFailed {
				p.println(id, ": ", p.paint("Failed", red), " (", msg.Status.Reason, ": ", msg.Status.Message, ")")
				return fmt.Errorf("InstagramMessage %s failed: %s", id, msg.Status.Reason)
			}
			p.println(id, ": ", p.paint(string(msg.Status.Phase), green), " (message ID ", msg.Status.MessageID, ")")
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "How long to wait for Sent or Failed.")
	cmd.Flags().BoolVar(&waitFor, "wait", true, "Wait until the message is Sent or Failed.")
	cmd.Flags().StringVar(&tag, "tag", "", "Message tag: HUMAN_AGENT replies up to 7 days after the customer's last message.")
	cmd.Flags().StringVar(&replyTo, "reply-to", "", "The message ID (mid) this one replies to.")
	_ = cmd.RegisterFlagCompletionFunc("tag", cobra.FixedCompletions([]string{string(igv1.TagHumanAgent)}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
