package kubectlplugin

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

// contactKind is the kind the receiver writes one object of per (channel,
// customer). It may not be installed: the plugin finds it by discovery and
// reads it without compiled-in types, so it works with whichever version
// the cluster serves.
const contactKind = "InstagramContact"

var errNoContacts = errors.New("contacts are not installed in this cluster: the API serves no " + contactKind + " kind in " + igv1.GroupVersion.Group)

func (r *root) newContactsCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "contacts CHANNEL",
		Short: "List the contacts (customers) of a channel",
		Long: `List the InstagramContact objects of a channel: one per customer who wrote
to the account, with their Instagram-scoped ID (what send takes), profile
and last message.

Needs an operator version that stores contacts; on a cluster without the
InstagramContact kind the command says so and exits non-zero.`,
		Example: `  kubectl instagram contacts support -n shop
  kubectl instagram contacts support -o json | jq -r '.items[].metadata.name'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: r.completeChannels,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(output); err != nil {
				return err
			}
			s, err := r.connect()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			gvr, err := s.contactResource()
			if err != nil {
				return err
			}
			ch, err := s.getChannel(ctx, args[0])
			if err != nil {
				return err
			}
			contacts, err := s.contacts(ctx, gvr, ch.Name)
			if err != nil {
				return err
			}
			if output != "" {
				list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{}}}
				list.Items = contacts
				return writeStructured(r.opts.Out, output, list.UnstructuredContent())
			}
			r.printContacts(ch.Namespace+"/"+ch.Name, contacts)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json or yaml.")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// contactResource finds the InstagramContact resource in the group's
// preferred version.
func (s *session) contactResource() (schema.GroupVersionResource, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(s.config)
	if err != nil {
		return schema.GroupVersionResource{}, err
	}
	groups, err := dc.ServerGroups()
	if err != nil {
		return schema.GroupVersionResource{}, explain(err)
	}
	for _, g := range groups.Groups {
		if g.Name != igv1.GroupVersion.Group {
			continue
		}
		versions := []string{g.PreferredVersion.Version}
		for _, v := range g.Versions {
			if v.Version != g.PreferredVersion.Version {
				versions = append(versions, v.Version)
			}
		}
		for _, v := range versions {
			gv := schema.GroupVersion{Group: g.Name, Version: v}
			resources, err := dc.ServerResourcesForGroupVersion(gv.String())
			if err != nil {
				return schema.GroupVersionResource{}, explain(err)
			}
			for _, res := range resources.APIResources {
				if res.Kind == contactKind {
					return gv.WithResource(res.Name), nil
				}
			}
		}
		return schema.GroupVersionResource{}, errNoContacts
	}
	return schema.GroupVersionResource{}, errNotInstalled
}

// contacts lists the channel's contacts: labelled with the channel, or
// naming it in spec.channelRef.
func (s *session) contacts(ctx context.Context, gvr schema.GroupVersionResource, channel string) ([]unstructured.Unstructured, error) {
	dyn, err := dynamic.NewForConfig(s.config)
	if err != nil {
		return nil, err
	}
	list, err := dyn.Resource(gvr).Namespace(s.namespace).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, errNoContacts
	}
	if err != nil {
		return nil, explain(err)
	}
	var out []unstructured.Unstructured
	for _, item := range list.Items {
		ref, _, _ := unstructured.NestedString(item.Object, "spec", "channelRef", "name")
		if item.GetLabels()[igv1.LabelChannel] == channel || ref == channel {
			out = append(out, item)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, nil
}

func (r *root) printContacts(channel string, contacts []unstructured.Unstructured) {
	p := printer{w: r.opts.Out, color: r.colored()}
	if len(contacts) == 0 {
		p.println("No contacts for InstagramChannel ", channel, " yet.")
		return
	}
	now := r.opts.Now()
	rows := make([][]cell, 0, len(contacts))
	for _, item := range contacts {
		username := firstString(item.Object, []string{"status", "profile", "username"}, []string{"status", "username"}, []string{"spec", "username"})
		if username != "" {
			username = "@" + username
		}
		last := "-"
		if at := firstString(item.Object, []string{"status", "lastMessageAt"}, []string{"status", "lastIncomingAt"}); at != "" {
			if t, err := time.Parse(time.RFC3339, at); err == nil {
				last = relative(t, now)
			}
		}
		rows = append(rows, []cell{
			c(item.GetName()),
			styled(contactID(item), cyan),
			c(orDash(username)),
			c(orDash(firstString(item.Object, []string{"status", "profile", "name"}, []string{"status", "name"}))),
			c(last),
		})
	}
	p.table("", []string{"NAME", "CONTACT", "USERNAME", "DISPLAY NAME", "LAST MESSAGE"}, rows)
}

// contactID is the customer's Instagram-scoped ID, where the contact kind
// keeps it.
func contactID(item unstructured.Unstructured) string {
	if id := item.GetLabels()[igv1.LabelContact]; id != "" {
		return id
	}
	return orDash(firstString(item.Object, []string{"spec", "contactID"}, []string{"spec", "id"}, []string{"spec", "igsid"}))
}

func firstString(obj map[string]any, paths ...[]string) string {
	for _, path := range paths {
		if v, ok, _ := unstructured.NestedString(obj, path...); ok && v != "" {
			return v
		}
	}
	return ""
}
