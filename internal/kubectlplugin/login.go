package kubectlplugin

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func (r *root) newLoginCommand() *cobra.Command {
	var open string
	cmd := &cobra.Command{
		Use:   "login CHANNEL",
		Short: "Print a channel's login link (and open it in a browser)",
		Long: `Print the Business Login link of a channel that awaits authorization
(status.authorizationURL). Send it to the owner of the Instagram account, or
open it yourself when you are the owner: on a terminal with a browser
(xdg-open or open) it opens by default.

The link is published only while the channel has no usable token; a
connected channel has none, and this command says so and exits non-zero.
Piped, only the link is printed.`,
		Example: `  kubectl instagram login support -n shop
  kubectl instagram login support --open=never | wl-copy`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: r.completeChannels,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch open {
			case "auto", "always", "never":
			default:
				return fmt.Errorf("--open must be auto, always or never, not %q", open)
			}
			s, err := r.connect()
			if err != nil {
				return err
			}
			ch, err := s.getChannel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			link := ch.Status.AuthorizationURL
			if link == "" {
				return noLinkError(ch)
			}
			terminal := r.opts.IsTerminal(r.opts.Out)
			if !terminal {
				fmt.Fprintln(r.opts.Out, link)
			} else {
				p := printer{w: r.opts.Out, color: r.colored()}
				p.println("Login link for InstagramChannel ", ch.Namespace, "/", ch.Name, " (for the owner of the Instagram account):")
				p.println(p.paint(link, cyan))
			}
			if open == "always" || (open == "auto" && terminal && browserCommand(r.opts.Getenv) != "") {
				if err := r.opts.OpenBrowser(link); err != nil {
					fmt.Fprintln(r.opts.ErrOut, "could not open a browser: "+oneLine(err.Error()))
				} else {
					fmt.Fprintln(r.opts.ErrOut, "Opened in your browser.")
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&open, "open", "auto", "Open the link in a browser: auto (on a terminal where xdg-open or open exists), always or never.")
	_ = cmd.RegisterFlagCompletionFunc("open", cobra.FixedCompletions([]string{"auto", "always", "never"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// noLinkError explains why a channel publishes no login link.
func noLinkError(ch *igv1.InstagramChannel) error {
	id := ch.Namespace + "/" + ch.Name
	ready := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady)
	switch {
	case meta.IsStatusConditionTrue(ch.Status.Conditions, igv1.ConditionAuthorized):
		account := ""
		if ch.Status.Account != nil && ch.Status.Account.Username != "" {
			account = " as @" + ch.Status.Account.Username
		}
		return fmt.Errorf("InstagramChannel %s is already connected%s: it publishes no login link", id, account)
	case ch.Spec.InitialTokenSecretRef != nil:
		return fmt.Errorf("InstagramChannel %s takes its token from Secret %s (spec.initialTokenSecretRef), not from a login", id, ch.Spec.InitialTokenSecretRef.Name)
	case ready != nil:
		return fmt.Errorf("InstagramChannel %s has no login link yet: %s: %s", id, ready.Reason, ready.Message)
	}
	return fmt.Errorf("InstagramChannel %s has no login link yet: the operator has not reconciled it (is the manager running?)", id)
}
