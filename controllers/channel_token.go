package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
)

// Token lifecycle: adopt a handed-in token (exchange it, or take it as a
// long-lived one), refresh it when the policy says so, and record a token
// Instagram refuses. Sources are read in channel_token_source.go, the
// managed Secret in channel_token_secret.go; every decision is a pure check
// in token_policy.go.

// reconcileToken makes sure the channel holds a usable long-lived token in
// its managed Secret: it consumes a login, adopts a new or changed initial
// token, and refreshes the token when the policy says it is due.
func (r *InstagramChannelReconciler) reconcileToken(ctx context.Context, run *channelRun) (*halt, error) {
	ch := run.ch
	st := tokenStatus(ch)

	secret, h, err := r.readTokenSecret(ctx, run)
	if h != nil || err != nil {
		return h, err
	}
	if secret != nil && st.ExpiresAt != nil && string(secret.Data[igv1.TokenSecretKeyExpiresAt]) != formatTime(st.ExpiresAt.Time) {
		// The cache has not seen our last write yet: read what is stored.
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(secret), secret); err != nil {
			return nil, fmt.Errorf("get token Secret: %w", client.IgnoreNotFound(err))
		}
		// Still different: a write of the Secret failed after the status
		// was updated (or the Secret was restored). The Secret holds the
		// token that will be used, so its expiry is the truth.
		if t, err := time.Parse(time.RFC3339, string(secret.Data[igv1.TokenSecretKeyExpiresAt])); err == nil && !t.Equal(st.ExpiresAt.Time) {
			log.FromContext(ctx).Info("token Secret and status disagree on the expiry; following the Secret", "expiresAt", formatTime(t))
			setTime(&st.ExpiresAt, t)
			setTime(&st.RefreshedAt, t.Add(-LongLivedTokenLifetime))
			setTime(&st.NextRefreshAt, r.nextRefreshAt(ch, t, timeOf(st.RefreshedAt)).Truncate(time.Second))
		}
	}
	if secret != nil {
		run.tokenSecret = secret
		run.token = string(secret.Data[igv1.TokenSecretKeyAccessToken])
		if st.ExpiresAt == nil {
			// The status was lost (restored from a backup, a failed
			// patch): the Secret written with the token still knows.
			if t, err := time.Parse(time.RFC3339, string(secret.Data[igv1.TokenSecretKeyExpiresAt])); err == nil {
				setTime(&st.ExpiresAt, t)
				setTime(&st.RefreshedAt, t.Add(-LongLivedTokenLifetime))
			}
		}
	}

	// Gather what the source decisions look at, then act on them. A
	// login is decided on first: a completed one wins whatever the
	// initial Secret holds (even when that is missing).
	login, err := r.readLoginSecret(ctx, ch)
	if err != nil {
		return nil, err
	}
	gated := tokenGated(run)
	in := TokenSourceInput{
		HasLogin:          login != nil,
		LoginStateOffered: login != nil && checkLoginNonce(run, login.secret),
		LoginDenied:       login != nil && login.denial != "",
		HasManagedToken:   run.token != "",
		Gated:             gated,
	}
	switch DecideLogin(in) {
	case LoginAdopt:
		return r.adoptToken(ctx, run, *login)
	case LoginDiscard:
		log.FromContext(ctx).Info("discarding login Secret of a state no longer offered", "secret", login.secret.Name)
		if err := r.deleteLoginSecret(ctx, login.secret); err != nil {
			return nil, err
		}
	case LoginConsumeDenial:
		if err := r.consumeLoginDenial(ctx, run, *login); err != nil {
			return nil, err
		}
	}
	var initial *tokenSource
	if ch.Spec.InitialTokenSecretRef != nil {
		initial, h, err = r.readInitialToken(ctx, run)
		if h != nil || err != nil {
			return h, err
		}
	}
	in.HasInitial = initial != nil
	in.InitialChanged = initial != nil && initial.hash != st.InitialSecretHash
	if DecideTokenSource(in) == SourceInitial {
		return r.adoptToken(ctx, run, *initial)
	}

	// Nothing new came in: a duplicate channel makes no Instagram call.
	if h, err := r.checkOwnership(ctx, run); h != nil || err != nil {
		return h, err
	}

	if st.NextRefreshAt == nil || run.original.Status.ObservedGeneration != ch.Generation {
		// Deterministic, so recomputing after a spec change (refreshBefore)
		// keeps the same jitter.
		setTime(&st.NextRefreshAt, r.nextRefreshAt(ch, timeOf(st.ExpiresAt), timeOf(st.RefreshedAt)))
	}
	tin := TokenInput{
		Now:           run.now,
		HasToken:      run.token != "",
		Invalid:       gated,
		ExpiresAt:     timeOf(st.ExpiresAt),
		RefreshedAt:   timeOf(st.RefreshedAt),
		NextRefreshAt: timeOf(st.NextRefreshAt),
		Failures:      st.Failures,
		LastFailureAt: timeOf(st.LastFailureAt),
		MinRefreshAge: r.opts().TokenMinRefreshAge,
	}
	if c := meta.FindStatusCondition(run.original.Status.Conditions, igv1.ConditionAuthorized); gated && c != nil {
		tin.InvalidMessage = c.Message
	}
	d := DecideToken(tin)
	switch d.Action {
	case TokenActionStop:
		return r.tokenUnusable(ctx, run, d), nil
	case TokenActionBackoff:
		r.markAuthorized(run)
		return &halt{reason: d.Reason, message: d.Message, retryAt: d.NextCheckAt}, nil
	case TokenActionRefresh:
		return r.refreshToken(ctx, run)
	}
	r.markAuthorized(run)
	run.wake(d.NextCheckAt)
	return nil, nil
}

// tokenUnusable reports a token that cannot be used without a human.
func (r *InstagramChannelReconciler) tokenUnusable(ctx context.Context, run *channelRun, d TokenDecision) *halt {
	d = deniedDecision(run.ch, d)
	msg := d.Message
	hint, renewAt := r.authorizationStep(ctx, run)
	if hint != "" {
		msg += "; " + hint
	}
	if d.Reason == igv1.ReasonTokenInvalid {
		// Keep the condition as the failure recorded it, including its
		// generation: that is what keeps the gate closed.
		return &halt{reason: d.Reason, message: msg, stalled: true, retryAt: renewAt}
	}
	r.setCondition(run, igv1.ConditionAuthorized, metav1.ConditionFalse, d.Reason, d.Message)
	if d.Reason == igv1.ReasonTokenExpired {
		r.eventOnTransition(run, corev1.EventTypeWarning, igv1.EventReauthorizationRequired, "Refresh", d.Reason, "%s", d.Message)
	}
	return &halt{reason: d.Reason, message: msg, stalled: true, retryAt: renewAt}
}

// tokenGated is true when Instagram rejected the current token (190) and
// neither the token nor the spec changed since: no Instagram call then.
func tokenGated(run *channelRun) bool {
	c := meta.FindStatusCondition(run.original.Status.Conditions, igv1.ConditionAuthorized)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == igv1.ReasonTokenInvalid &&
		c.ObservedGeneration == run.ch.Generation
}

// adoptToken turns a token handed in from outside into the managed
// long-lived token: exchanged when it is short-lived, taken as it is when
// Instagram says it cannot be exchanged but it works.
func (r *InstagramChannelReconciler) adoptToken(ctx context.Context, run *channelRun, src tokenSource) (*halt, error) {
	logger := log.FromContext(ctx).WithValues("source", src.kind)
	st := tokenStatus(run.ch)
	var (
		token       string
		expiresAt   time.Time
		refreshedAt = run.now
		nextRefresh time.Time
		note        string
	)
	ll, err := run.api.ExchangeLongLived(ctx, run.app.appSecret, src.token)
	switch instagram.ClassOf(err) {
	case "":
		token, expiresAt = ll.AccessToken, run.now.Add(lifetime(ll.ExpiresIn))
		note = fmt.Sprintf("exchanged the %s token for a long-lived token valid until %s", src.kind, formatTime(expiresAt))
	default:
		switch DecideExchangeFallback(instagram.ClassOf(err), appSecretRejected(err)) {
		case FallbackAppCredentials:
			msg := fmt.Sprintf("Instagram refused the app secret of %s %q: %v", run.app.kind, run.app.name, err)
			return &halt{reason: igv1.ReasonAppCredentialsInvalid, message: msg, stalled: true}, nil
		case FallbackBackoff:
			return r.exchangeFailed(run, err), nil
		}
		// Instagram refuses to exchange a token that is already
		// long-lived. Whether it works as it is, /me tells.
		logger.V(1).Info("token not exchangeable, checking it as a long-lived token", "error", err.Error())
		acc, meErr := run.api.Me(ctx, src.token)
		if meErr != nil {
			if instagram.ClassOf(meErr) == instagram.ClassTokenInvalid {
				return r.sourceRejected(ctx, run, src, meErr)
			}
			return r.exchangeFailed(run, meErr), nil
		}
		setAccount(run.ch, acc, run.now)
		run.accountFresh = true
		token = src.token
		switch {
		case !src.expiresAt.IsZero():
			expiresAt = src.expiresAt
			refreshedAt = earliest(run.now, expiresAt.Add(-LongLivedTokenLifetime))
			note = fmt.Sprintf("adopted the %s token as long-lived, valid until %s (from the Secret's expiresAt)", src.kind, formatTime(expiresAt))
		default:
			// Refreshing tells the expiry, if the token is old enough.
			if rl, rErr := run.api.RefreshToken(ctx, token); rErr == nil {
				token, expiresAt = rl.AccessToken, run.now.Add(lifetime(rl.ExpiresIn))
				note = fmt.Sprintf("adopted the %s token as long-lived and refreshed it, valid until %s", src.kind, formatTime(expiresAt))
			} else {
				// Unknown expiry: no date is assumed. The status, the
				// Authorized condition (ExpiryUnknown) and the metrics say
				// it is unknown, and the policy refreshes as soon as
				// Instagram allows, on every reconcile until it works.
				nextRefresh = ExpiryLearnAt(refreshedAt, r.opts().TokenMinRefreshAge)
				note = fmt.Sprintf("adopted the %s token as long-lived; Instagram did not tell its expiry, refreshing at %s to learn it", src.kind, formatTime(nextRefresh))
				logger.V(1).Info("refresh of adopted token refused", "error", rErr.Error())
			}
		}
	}

	if nextRefresh.IsZero() {
		nextRefresh = r.nextRefreshAt(run.ch, expiresAt, refreshedAt)
	}
	previous, previousToken, previousChanged := st.DeepCopy(), run.token, run.tokenChanged
	run.token = token
	run.tokenChanged = true
	setTime(&st.ExpiresAt, expiresAt.Truncate(time.Second))
	setTime(&st.RefreshedAt, refreshedAt)
	setTime(&st.NextRefreshAt, nextRefresh.Truncate(time.Second))
	st.Failures = 0
	st.LastFailureAt = nil
	if src.kind == sourceInitial {
		st.InitialSecretHash = src.hash
	}
	// What the login granted; unknown for a token brought by the user.
	st.Scopes = src.scopes
	if h, err := r.ensureTokenSecret(ctx, run); h != nil || err != nil {
		// Not stored: the status keeps describing what the Secret holds,
		// and the source (initial or login Secret) is adopted again.
		*st, run.token, run.tokenChanged = *previous, previousToken, previousChanged
		return h, err
	}
	if src.kind == sourceLogin {
		if err := r.deleteLoginSecret(ctx, src.secret); err != nil {
			return nil, err
		}
	}
	r.markAuthorized(run)
	// The login is done: its nonce goes with it, so its state can never
	// complete another login.
	run.ch.Status.AuthorizationURL = ""
	run.ch.Status.Authorization = nil
	r.event(run.ch, corev1.EventTypeNormal, igv1.EventTokenExchanged, "Adopt", "%s", note)
	logger.Info("token adopted", "expiresAt", formatTime(expiresAt))
	run.wake(timeOf(st.NextRefreshAt))
	return nil, nil
}

// appSecretRejected tells a refused client_secret (Graph code 101) from the
// other refusals of the exchange, which the instagram package classifies
// alike as BadRequest: without it a short-lived token would be taken for a
// long-lived one.
func appSecretRejected(err error) bool {
	var ie *instagram.Error
	return errors.As(err, &ie) && ie.Code == graphCodeClientSecret
}

// graphCodeClientSecret is Graph's "Error validating client secret".
const graphCodeClientSecret = 101

// sourceRejected handles a handed-in token that Instagram rejects (190):
// the same Secret content is not tried again, a login Secret is consumed.
func (r *InstagramChannelReconciler) sourceRejected(ctx context.Context, run *channelRun, src tokenSource, err error) (*halt, error) {
	st := tokenStatus(run.ch)
	if src.kind == sourceInitial {
		st.InitialSecretHash = src.hash
	}
	if src.kind == sourceLogin {
		if err := r.deleteLoginSecret(ctx, src.secret); err != nil {
			return nil, err
		}
	}
	return r.markTokenInvalid(ctx, run, err), nil
}

// exchangeFailed counts a failed adoption and backs off.
func (r *InstagramChannelReconciler) exchangeFailed(run *channelRun, err error) *halt {
	st := tokenStatus(run.ch)
	st.Failures++
	setTime(&st.LastFailureAt, run.now)
	msg := fmt.Sprintf("token exchange failed: %v", err)
	switch instagram.ClassOf(err) {
	case instagram.ClassPermissionDenied:
		return &halt{reason: igv1.ReasonPermissionDenied, message: msg, stalled: true}
	case instagram.ClassRateLimited:
		return &halt{reason: igv1.ReasonRateLimited, message: msg, retryAt: run.now.Add(max(instagram.RetryAfterOf(err), Backoff(st.Failures)))}
	case instagram.ClassOAuthCodeInvalid:
		return &halt{reason: igv1.ReasonTokenExchangeFailed, message: msg, stalled: true}
	}
	return &halt{reason: igv1.ReasonTokenExchangeFailed, message: msg, retryAt: run.now.Add(Backoff(st.Failures))}
}

// refreshToken renews the long-lived token.
func (r *InstagramChannelReconciler) refreshToken(ctx context.Context, run *channelRun) (*halt, error) {
	st := tokenStatus(run.ch)
	ll, err := run.api.RefreshToken(ctx, run.token)
	if err != nil {
		return r.refreshFailed(ctx, run, err), nil
	}
	tokenRefreshTotal.WithLabelValues("success").Inc()
	expiresAt := run.now.Add(lifetime(ll.ExpiresIn))
	previous, previousToken := st.DeepCopy(), run.token
	run.token = ll.AccessToken
	setTime(&st.ExpiresAt, expiresAt)
	setTime(&st.RefreshedAt, run.now)
	setTime(&st.NextRefreshAt, r.nextRefreshAt(run.ch, expiresAt, run.now))
	st.Failures = 0
	st.LastFailureAt = nil
	if h, err := r.ensureTokenSecret(ctx, run); h != nil || err != nil {
		// The new token is lost with this reconcile; the status must keep
		// describing the token the Secret still holds, or the next refresh
		// (and the expiry alert) would go by a token nobody has.
		*st, run.token = *previous, previousToken
		return h, err
	}
	r.markAuthorized(run)
	r.event(run.ch, corev1.EventTypeNormal, igv1.EventTokenRefreshed, "Refresh", "token refreshed, valid until %s, next refresh at %s",
		formatTime(expiresAt), formatTime(st.NextRefreshAt.Time))
	log.FromContext(ctx).Info("token refreshed", "expiresAt", formatTime(expiresAt))
	run.wake(st.NextRefreshAt.Time)
	return nil, nil
}

// refreshFailed records a failed refresh: counted, backed off, announced.
func (r *InstagramChannelReconciler) refreshFailed(ctx context.Context, run *channelRun, err error) *halt {
	st := tokenStatus(run.ch)
	class := instagram.ClassOf(err)
	tokenRefreshTotal.WithLabelValues(string(class)).Inc()
	if class == instagram.ClassTokenInvalid {
		return r.markTokenInvalid(ctx, run, err)
	}
	st.Failures++
	setTime(&st.LastFailureAt, run.now)
	retryAt := run.now.Add(Backoff(st.Failures))
	r.markAuthorized(run)
	reason := igv1.ReasonRefreshFailing
	switch class {
	case instagram.ClassPermissionDenied:
		msg := fmt.Sprintf("token refresh refused: %v", err)
		r.event(run.ch, corev1.EventTypeWarning, igv1.EventRefreshFailed, "Refresh", "%s", msg)
		return &halt{reason: igv1.ReasonPermissionDenied, message: msg, stalled: true}
	case instagram.ClassRateLimited:
		reason = igv1.ReasonRateLimited
		retryAt = run.now.Add(max(instagram.RetryAfterOf(err), Backoff(st.Failures)))
	}
	msg := fmt.Sprintf("token refresh failed %d time(s): %v; next attempt at %s; token valid until %s",
		st.Failures, err, formatTime(retryAt), formatTime(timeOf(st.ExpiresAt)))
	r.event(run.ch, corev1.EventTypeWarning, igv1.EventRefreshFailed, "Refresh", "%s", msg)
	log.FromContext(ctx).Info("token refresh failed", "failures", st.Failures, "error", err.Error())
	return &halt{reason: reason, message: msg, retryAt: retryAt}
}

// markTokenInvalid stops every Instagram call for the current token until
// a new token or a spec change arrives.
func (r *InstagramChannelReconciler) markTokenInvalid(ctx context.Context, run *channelRun, err error) *halt {
	msg := fmt.Sprintf("Instagram rejected the token: %v", err)
	r.setCondition(run, igv1.ConditionAuthorized, metav1.ConditionFalse, igv1.ReasonTokenInvalid, msg)
	r.eventOnTransition(run, corev1.EventTypeWarning, igv1.EventReauthorizationRequired, "Authorize", igv1.ReasonTokenInvalid,
		"%s; log in again or provide a new token", msg)
	log.FromContext(ctx).Info("token rejected by Instagram", "error", err.Error())
	full := msg + "; log in again or provide a new token"
	hint, renewAt := r.authorizationStep(ctx, run)
	if hint != "" {
		full += "; " + hint
	}
	return &halt{reason: igv1.ReasonTokenInvalid, message: full, stalled: true, retryAt: renewAt}
}

// markAuthorized records a usable token. One whose expiry Instagram has
// not told is Authorized with reason ExpiryUnknown: never a silent guess.
func (r *InstagramChannelReconciler) markAuthorized(run *channelRun) {
	st := tokenStatus(run.ch)
	if st.ExpiresAt == nil {
		r.setCondition(run, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonExpiryUnknown,
			"token works but Instagram has not told its expiry; refreshing at "+formatTime(timeOf(st.NextRefreshAt))+" to learn it")
		return
	}
	r.setCondition(run, igv1.ConditionAuthorized, metav1.ConditionTrue, igv1.ReasonSucceeded,
		"token valid until "+formatTime(timeOf(st.ExpiresAt)))
}

// nextRefreshAt applies the refresh policy to one channel; the jitter seed
// is the channel's UID and the token's expiry, so it only changes with them.
func (r *InstagramChannelReconciler) nextRefreshAt(ch *igv1.InstagramChannel, expiresAt, refreshedAt time.Time) time.Time {
	refreshBefore := 480 * time.Hour
	if ch.Spec.RefreshBefore != nil {
		refreshBefore = ch.Spec.RefreshBefore.Duration
	}
	seed := fmt.Sprintf("%s/%d", ch.UID, expiresAt.Unix())
	return NextRefreshAt(expiresAt, refreshedAt, refreshBefore, r.opts().TokenMinRefreshAge, seed)
}

func tokenStatus(ch *igv1.InstagramChannel) *igv1.TokenStatus {
	if ch.Status.Token == nil {
		ch.Status.Token = &igv1.TokenStatus{}
	}
	ch.Status.Token.SecretName = ch.TokenSecretName()
	return ch.Status.Token
}

// lifetime is what Instagram reported, or the documented 60 days.
func lifetime(d time.Duration) time.Duration {
	if d <= 0 {
		return LongLivedTokenLifetime
	}
	return d.Truncate(time.Second)
}
