package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

// AuthorizationRequest is what an Authorizer needs to start a Business
// Login for a channel. It carries no secret.
type AuthorizationRequest struct {
	// AppID and AppRedirectURL come from the channel's app (the redirect URL
	// as the app publishes it; spec.redirectURL overrides it).
	AppID          string
	AppRedirectURL string
	// API builds the authorize URL (no HTTP call).
	API instagram.API
}

// Authorizer lets a person connect a channel that has no usable token
// (none yet, rejected, or expired). It may set status.authorizationURL and
// status.authorization on ch and returns a short sentence for the Ready
// message ("open status.authorizationURL to log in"). The login's outcome
// comes back through the login Secret (LoginSecretName): the OAuth callback
// writes the short-lived token there, labelled for the channel, and the
// controller exchanges it, stores the long-lived token and deletes the
// login Secret.
type Authorizer interface {
	Authorize(ctx context.Context, ch *igv1.InstagramChannel, req AuthorizationRequest) (hint string, err error)
}

// authorizationStep asks the Authorizer, if any, to publish how to log in.
// A failure to do so never hides the reason the channel needs a login.
func (r *InstagramChannelReconciler) authorizationStep(ctx context.Context, run *channelRun) string {
	if r.Authorizer == nil || run.app == nil {
		return ""
	}
	hint, err := r.Authorizer.Authorize(ctx, run.ch, AuthorizationRequest{
		AppID:          run.app.appID,
		AppRedirectURL: run.app.redirectURL,
		API:            run.api,
	})
	if err != nil {
		log.FromContext(ctx).Error(err, "prepare authorization")
		return ""
	}
	return hint
}
