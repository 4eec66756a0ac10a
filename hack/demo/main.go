// Command demo tells the operator's story on one machine: a local control
// plane, the fake Instagram, the real manager and webhook receiver, the
// samples from config/samples, a customer DM, a reaction, a reply going
// Sent then Read. `make demo` runs it; KEEP=1 leaves everything running.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/kubectlplugin"
	"github.com/leadchat/instagram-operator/internal/localenv"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

const (
	namespace = "demo"
	// The samples name app 1234567890 and these Secrets.
	appID       = "1234567890"
	customerID  = "5512340000000001"
	businessID  = "17841400000000001"
	stepTimeout = 90 * time.Second
)

func main() {
	keep := flag.Bool("keep", os.Getenv("KEEP") == "1", "Stay up after the story until Ctrl-C.")
	dir := flag.String("dir", filepath.Join(testenv.RepoRoot(), "bin", "demo"), "Kubeconfig and logs go here.")
	flag.Parse()
	if err := run(*keep, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }
func info(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }

func run(keep bool, dir string) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	_ = os.RemoveAll(dir)

	step("Starting a local control plane, the fake Instagram, the manager and the webhook receiver")
	env, err := localenv.Start(ctx, localenv.Options{
		Dir:  dir,
		Fake: fake.Options{DeliverEcho: true},
	})
	if err != nil {
		return err
	}
	defer env.Stop()
	info("kube-apiserver:   %s", env.Config.Host)
	info("fake Instagram:   %s", env.FakeURL)
	info("webhook receiver: %s", env.PublicURL)
	info("logs:             %s/{manager,webhookserver}.log", dir)

	appSecret := "demo-app-secret"
	env.Fake.AddApp(appID, appSecret)
	env.Fake.SetRedirectURIs(appID, env.PublicURL+"/instagram/callback")
	env.Fake.AddAccount(fake.Account{UserID: businessID, ID: "9000000000000001", Username: "acme_shop", Name: "ACME Shop", AccountType: "BUSINESS"})
	env.Fake.AddCustomer(fake.Customer{IGSID: customerID, Name: "Ann", Username: "ann"})

	step("Creating the app Secrets and a bring-your-own token (what a platform team and an app team would do)")
	c := env.Client
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{"instagram.leadchat.io/enabled": "true"}}},
		appSecretObject(namespace, "instagram-app", appSecret),
		appSecretObject(localenv.SystemNamespace, "instagram-app-acme", appSecret),
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "support-seed", Namespace: namespace},
			StringData: map[string]string{igv1.TokenSecretKeyAccessToken: env.Fake.IssueShortLivedToken(appID, businessID)},
		},
	} {
		if err := c.Create(ctx, obj); err != nil {
			return err
		}
	}

	step("Applying the samples (apps and channels) from config/samples")
	samples := filepath.Join(testenv.RepoRoot(), "config", "samples")
	for _, f := range []string{"instagram_v1alpha1_clusterinstagramapp.yaml", "instagram_v1alpha1_instagramapp.yaml", "instagram_v1alpha1_instagramchannel.yaml", "instagram_v1alpha1_instagramchannel_login.yaml"} {
		out, err := env.Kubectl("apply", "-n", namespace, "-f", filepath.Join(samples, f))
		if err != nil {
			return fmt.Errorf("apply %s: %v: %s", f, err, out)
		}
		info("%s", strings.TrimSpace(out))
	}

	step("Waiting for the apps and the bring-your-own-token channel to be Ready")
	for _, target := range []string{"clusterinstagramapp/acme", "-n " + namespace + " instagramapp/team-app", "-n " + namespace + " instagramchannel/support"} {
		args := append([]string{"wait", "--for=condition=Ready", "--timeout=90s"}, strings.Fields(target)...)
		out, err := env.Kubectl(args...)
		if err != nil {
			return fmt.Errorf("wait for %s: %v: %s\nmanager log:\n%s", target, err, out, env.Manager.Tail(30))
		}
		info("%s", strings.TrimSpace(out))
	}
	support := &igv1.InstagramChannel{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "support"}, support); err != nil {
		return err
	}
	info("support is @%s; token expires %s, next refresh %s (Secret %s)",
		support.Status.Account.Username, support.Status.Token.ExpiresAt.Format(time.RFC3339),
		support.Status.Token.NextRefreshAt.Format(time.RFC3339), support.Status.Token.SecretName)
	info("webhook fields subscribed at Instagram: %s", strings.Join(env.Fake.Subscriptions(businessID), ", "))

	step("The second channel (sales) has no token: it waits for a person to log in")
	sales := &igv1.InstagramChannel{}
	err = poll(ctx, func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "sales"}, sales); err != nil {
			return false, err
		}
		ready := meta.FindStatusCondition(sales.Status.Conditions, igv1.ConditionReady)
		return ready != nil && ready.Reason == igv1.ReasonAwaitingAuthorization && sales.Status.AuthorizationURL != "", nil
	})
	if err != nil {
		ready := meta.FindStatusCondition(sales.Status.Conditions, igv1.ConditionReady)
		if ready == nil {
			return fmt.Errorf("sales has no Ready condition: %w", err)
		}
		info("sales: Ready=%s reason=%s: %s", ready.Status, ready.Reason, ready.Message)
	} else {
		info("sales: Ready=False, AwaitingAuthorization. A person opens:")
		info("%s", sales.Status.AuthorizationURL)
	}

	step("A customer sends a DM; Meta delivers it signed to the receiver")
	mid, err := env.Fake.DeliverMessage(ctx, fake.CustomerMessage{AccountUserID: businessID, CustomerID: customerID, Text: "Hi! Is the blue jacket in stock?"})
	if err != nil {
		return err
	}
	incoming, err := waitMessage(ctx, c, func(m *igv1.InstagramMessage) bool {
		return m.Status.MessageID == mid && m.Status.Phase == igv1.PhaseReceived
	})
	if err != nil {
		return fmt.Errorf("the DM was not recorded: %w\nreceiver log:\n%s", err, env.Receiver.Tail(30))
	}
	info("recorded as InstagramMessage %s: %q from %s", incoming.Name, incoming.Spec.Text, incoming.Spec.ContactID)

	step("The customer reacts to their own message with a heart")
	if err := env.Fake.DeliverReaction(ctx, fake.Reaction{MID: mid, Reaction: "love", Emoji: "\u2764\ufe0f"}); err != nil {
		return err
	}
	if _, err := waitMessage(ctx, c, func(m *igv1.InstagramMessage) bool {
		return m.Name == incoming.Name && len(m.Status.Reactions) == 1
	}); err != nil {
		return fmt.Errorf("the reaction was not recorded: %w", err)
	}
	info("reaction recorded on %s", incoming.Name)

	step("A workload replies: it applies the outgoing sample message")
	out, err := env.Kubectl("apply", "-n", namespace, "-f", filepath.Join(samples, "instagram_v1alpha1_instagrammessage.yaml"))
	if err != nil {
		return fmt.Errorf("apply reply: %v: %s", err, out)
	}
	reply, err := waitMessage(ctx, c, func(m *igv1.InstagramMessage) bool {
		return m.Name == "support-reply-1" && m.Status.Phase == igv1.PhaseSent
	})
	if err != nil {
		return fmt.Errorf("the reply was not sent: %w\nmanager log:\n%s", err, env.Manager.Tail(30))
	}
	info("support-reply-1 is Sent as %s", reply.Status.MessageID)

	step("The customer reads it; Meta delivers a read receipt")
	if err := env.Fake.DeliverRead(ctx, reply.Status.MessageID); err != nil {
		return err
	}
	if _, err := waitMessage(ctx, c, func(m *igv1.InstagramMessage) bool {
		return m.Name == "support-reply-1" && m.Status.Phase == igv1.PhaseRead
	}); err != nil {
		return fmt.Errorf("the read receipt was not applied: %w", err)
	}
	info("support-reply-1 is Read")

	step("kubectl get instagram -A")
	out, _ = env.Kubectl("get", "instagram", "-A")
	fmt.Print(out)
	step("kubectl get instagrammessages -n %s -o wide", namespace)
	out, _ = env.Kubectl("get", "instagrammessages", "-n", namespace, "-o", "wide")
	fmt.Print(out)

	step("kubectl instagram status -A (the plugin, bin/kubectl-instagram)")
	kubectlplugin.Main(ctx, []string{"--kubeconfig", env.Kubeconfig, "status", "-A"}, kubectlplugin.Options{})

	step("Summary")
	info("Instagram calls made by the operator: %d (sends: %d); webhook deliveries: %d", len(env.Fake.Calls()), len(env.Fake.Sent()), len(env.Fake.Deliveries()))
	info("app Ready, support Ready (@%s), sales awaiting login, DM + reaction recorded, reply Sent -> Read", support.Status.Account.Username)

	if keep {
		step("Everything stays up until Ctrl-C")
		info("export KUBECONFIG=%s", env.Kubeconfig)
		info("kubectl: %s", filepath.Join(testenv.AssetsDir(), "kubectl"))
		info("then: kubectl get instagram -A; kubectl describe igch -n %s support", namespace)
		info("or the plugin: bin/kubectl-instagram status -A; bin/kubectl-instagram tail -n %s support", namespace)
		<-ctx.Done()
	}
	step("Stopping")
	return nil
}

func appSecretObject(ns, name, secret string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		StringData: map[string]string{igv1.AppSecretKeyAppSecret: secret, igv1.AppSecretKeyVerifyToken: "demo-verify-token"},
	}
}

func poll(ctx context.Context, cond func() (bool, error)) error {
	deadline := time.Now().Add(stepTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if lastErr != nil {
		return lastErr
	}
	return errors.New("timed out")
}

func waitMessage(ctx context.Context, c client.Client, match func(*igv1.InstagramMessage) bool) (*igv1.InstagramMessage, error) {
	var found *igv1.InstagramMessage
	err := poll(ctx, func() (bool, error) {
		var list igv1.InstagramMessageList
		if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
			return false, err
		}
		for i := range list.Items {
			if match(&list.Items[i]) {
				found = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return found, err
}
