package localenv

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/names"
)

// App is a Meta app known to both the fake Instagram and the cluster.
type App struct {
	ID, Secret, VerifyToken string
	// Namespace is empty for a ClusterInstagramApp.
	Namespace, Name string
}

// Ref is the appRef a channel uses for this app.
func (a App) Ref() igv1.AppReference {
	if a.Namespace == "" {
		return igv1.AppReference{Kind: igv1.KindClusterInstagramApp, Name: a.Name}
	}
	return igv1.AppReference{Kind: igv1.KindInstagramApp, Name: a.Name}
}

// CreateApp registers the app in the fake and creates its Secret and its
// InstagramApp (namespace set) or ClusterInstagramApp (namespace empty).
func (e *Env) CreateApp(ctx context.Context, app App) error {
	e.Fake.AddApp(app.ID, app.Secret)
	e.Fake.SetRedirectURIs(app.ID, e.PublicURL+"/instagram/callback")
	// The callback URL the app's status.webhookURL shows, as a person
	// pastes it into the Meta dashboard: the app's own path, whose
	// deliveries are checked against its secrets only.
	kind := igv1.KindClusterInstagramApp
	if app.Namespace != "" {
		kind = igv1.KindInstagramApp
	}
	e.Fake.SetCallbackURL(app.ID, e.PublicURL+names.AppWebhookPath(kind, app.Namespace, app.Name))
	secretNS := app.Namespace
	if secretNS == "" {
		secretNS = SystemNamespace
	}
	if err := e.ensureNamespace(ctx, secretNS); err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: app.Name + "-app", Namespace: secretNS},
		StringData: map[string]string{
			igv1.AppSecretKeyAppSecret:   app.Secret,
			igv1.AppSecretKeyVerifyToken: app.VerifyToken,
		},
	}
	if err := e.Client.Create(ctx, secret); err != nil {
		return fmt.Errorf("create app Secret: %w", err)
	}
	spec := igv1.AppSpec{AppID: app.ID, SecretRef: igv1.LocalObjectReference{Name: secret.Name}}
	var obj client.Object
	if app.Namespace == "" {
		obj = &igv1.ClusterInstagramApp{ObjectMeta: metav1.ObjectMeta{Name: app.Name}, Spec: spec}
	} else {
		obj = &igv1.InstagramApp{ObjectMeta: metav1.ObjectMeta{Name: app.Name, Namespace: app.Namespace}, Spec: spec}
	}
	return e.Client.Create(ctx, obj)
}

// CreateTokenChannel creates a channel that brings its own token: a seed
// Secret with a token the fake issued for the account, and the channel.
func (e *Env) CreateTokenChannel(ctx context.Context, app App, namespace, name string, account fake.Account, longLived bool) (*igv1.InstagramChannel, error) {
	if err := e.ensureNamespace(ctx, namespace); err != nil {
		return nil, err
	}
	e.Fake.AddAccount(account)
	token := e.Fake.IssueShortLivedToken(app.ID, account.UserID)
	if longLived {
		token = e.Fake.IssueLongLivedToken(app.ID, account.UserID)
	}
	seed := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-seed", Namespace: namespace},
		StringData: map[string]string{igv1.TokenSecretKeyAccessToken: token},
	}
	if err := e.Client.Create(ctx, seed); err != nil {
		return nil, fmt.Errorf("create seed Secret: %w", err)
	}
	ch := &igv1.InstagramChannel{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: igv1.InstagramChannelSpec{
			AppRef:                app.Ref(),
			InitialTokenSecretRef: &igv1.SecretKeySelector{Name: seed.Name},
		},
	}
	return ch, e.Client.Create(ctx, ch)
}

// CreateLoginChannel creates a channel without a token: it waits for a
// person to log in through Business Login.
func (e *Env) CreateLoginChannel(ctx context.Context, app App, namespace, name string) (*igv1.InstagramChannel, error) {
	if err := e.ensureNamespace(ctx, namespace); err != nil {
		return nil, err
	}
	ch := &igv1.InstagramChannel{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       igv1.InstagramChannelSpec{AppRef: app.Ref()},
	}
	return ch, e.Client.Create(ctx, ch)
}

func (e *Env) ensureNamespace(ctx context.Context, name string) error {
	err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
