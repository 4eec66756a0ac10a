package webhookserver

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/names"
	"github.com/leadchat/instagram-operator/internal/oauthstate"
)

// CallbackPath is where Instagram sends the browser back after Business
// Login (the app's status.redirectURL).
const CallbackPath = igv1.CallbackPath

// Defaults of LoginOptions.
const (
	// DefaultLoginRatePerIP and DefaultLoginBurstPerIP allow a person a few
	// retries a minute; behind a proxy that hides client addresses they
	// apply to the proxy as a whole.
	DefaultLoginRatePerIP  = rate.Limit(1.0 / 3) // one every 3 seconds
	DefaultLoginBurstPerIP = 20
	// DefaultLoginRate and DefaultLoginBurst bound all callbacks together,
	// so a flood cannot turn the receiver into a code-exchange amplifier.
	DefaultLoginRate  = rate.Limit(5)
	DefaultLoginBurst = 50
	// DefaultMaxCallbackQuery bounds the query string: a state is at most
	// 2 KiB, a code a few hundred bytes.
	DefaultMaxCallbackQuery = 4096
	// DefaultExchangeTimeout bounds the calls to Instagram of one callback.
	DefaultExchangeTimeout = 15 * time.Second
	// DefaultOutcomeWait is how long the success page waits for the
	// manager: it exchanges the token, reads the account and subscribes it,
	// a few Instagram calls.
	DefaultOutcomeWait = 10 * time.Second
	DefaultOutcomePoll = 200 * time.Millisecond
	// maxTrackedClients bounds the per-client limiters kept in memory.
	maxTrackedClients = 10000
)

// InstagramClients hands out the Instagram API of one Meta app;
// *instagram.Clients implements it.
type InstagramClients interface {
	ForApp(appID string) instagram.API
}

// LoginOptions configure the OAuth callback of Business Login.
type LoginOptions struct {
	// Instagram exchanges codes and looks up accounts. Nil: the callback
	// answers 503 (Business Login not configured on this receiver).
	Instagram InstagramClients
	// RatePerIP and BurstPerIP limit callbacks per client address; Rate and
	// Burst all callbacks together. Over a limit the answer is 429.
	RatePerIP  rate.Limit
	BurstPerIP int
	Rate       rate.Limit
	Burst      int
	// MaxQueryBytes bounds the callback's query string (400 past it).
	MaxQueryBytes int
	// ExchangeTimeout bounds the calls to Instagram of one callback.
	ExchangeTimeout time.Duration
	// OutcomeWait is how long a completed login waits for the manager's
	// verdict (connected, duplicate account, permissions missing) before
	// the page says "checking"; negative does not wait. OutcomePoll is how
	// often it looks.
	OutcomeWait time.Duration
	OutcomePoll time.Duration
}

func (o LoginOptions) withDefaults() LoginOptions {
	if o.RatePerIP <= 0 {
		o.RatePerIP = DefaultLoginRatePerIP
	}
	if o.BurstPerIP <= 0 {
		o.BurstPerIP = DefaultLoginBurstPerIP
	}
	if o.Rate <= 0 {
		o.Rate = DefaultLoginRate
	}
	if o.Burst <= 0 {
		o.Burst = DefaultLoginBurst
	}
	if o.MaxQueryBytes <= 0 {
		o.MaxQueryBytes = DefaultMaxCallbackQuery
	}
	if o.OutcomeWait == 0 {
		o.OutcomeWait = DefaultOutcomeWait
	}
	if o.OutcomePoll <= 0 {
		o.OutcomePoll = DefaultOutcomePoll
	}
	if o.ExchangeTimeout <= 0 {
		o.ExchangeTimeout = DefaultExchangeTimeout
	}
	return o
}

// loginCallbacksTotal counts callbacks by outcome (the page shown).
var loginCallbacksTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "instagram_login_callbacks_total",
	Help: "Business Login callbacks answered, by outcome.",
}, []string{"outcome"})

func init() { metrics.Registry.MustRegister(loginCallbacksTotal) }

// loginHandler serves GET /instagram/callback: it checks the signed state
// against the channel it names, exchanges the code for a short-lived token
// and hands the token to the manager through the channel's login Secret.
// It never shows or logs a token, a code, a state or an app secret.
type loginHandler struct {
	s       *Server
	opts    LoginOptions
	limiter *clientLimiter
	log     logr.Logger
}

func (s *Server) loginHandler() http.Handler {
	o := s.opts.Login.withDefaults()
	return &loginHandler{
		s:       s,
		opts:    o,
		limiter: newClientLimiter(o.RatePerIP, o.BurstPerIP, o.Rate, o.Burst),
		log:     s.log.WithName("login"),
	}
}

// loginApp is what the callback needs of the channel's app. secrets are
// credentials: they never leave this struct except towards Instagram and
// oauthstate.
type loginApp struct {
	key         AppKey
	appID       string
	redirectURL string
	secrets     [][]byte
}

func (h *loginHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.callback(r)
	loginCallbacksTotal.WithLabelValues(p.outcome).Inc()
	renderPage(w, p)
}

// callback decides the page one callback gets. Each early return is one of
// the failures a person can meet; the order matters: nothing is trusted
// from the state before its signature is verified against the app of the
// channel it names.
func (h *loginHandler) callback(r *http.Request) page {
	now := h.s.opts.Clock.Now()
	log := h.log.WithValues("remote", r.RemoteAddr)
	if !h.limiter.allow(h.s.clients.of(r), now) {
		return rateLimitedPage()
	}
	if len(r.URL.RawQuery) > h.opts.MaxQueryBytes {
		log.Info("Login callback refused", "outcome", outcomeMalformed, "queryBytes", len(r.URL.RawQuery))
		return malformedPage()
	}
	if h.opts.Instagram == nil {
		return notConfiguredPage()
	}
	q := r.URL.Query()
	claimed, err := oauthstate.Peek(q.Get("state"))
	if err != nil {
		log.Info("Login callback refused", "outcome", outcomeMalformed)
		return malformedPage()
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.ExchangeTimeout)
	defer cancel()

	key := types.NamespacedName{Namespace: claimed.Namespace, Name: claimed.Name}
	ch := &igv1.InstagramChannel{}
	if err := h.s.dir.cache.Get(ctx, key, ch); err != nil {
		if apierrors.IsNotFound(err) {
			// Same answer as a forged state: an unverified state must not
			// tell which channels exist.
			log.Info("Login callback refused", "outcome", outcomeForged, "reason", "channel not found")
			return forgedPage()
		}
		log.Error(err, "Cannot read the channel of a login callback")
		return unavailablePage()
	}
	app, err := h.s.dir.loginApp(ctx, ch)
	if err != nil {
		log.Error(err, "Cannot read the app of a login callback", "channel", key.String())
		return unavailablePage()
	}
	if app == nil {
		log.Info("Login callback refused", "outcome", outcomeForged, "reason", "app credentials not found", "channel", key.String())
		return forgedPage()
	}
	log = log.WithValues("channel", key.String(), "app", app.key.String())

	st, err := oauthstate.Verify(q.Get("state"), now, app.secrets...)
	switch {
	case errors.Is(err, oauthstate.ErrExpired):
		log.Info("Login callback refused", "outcome", outcomeStateExpired)
		return stateExpiredPage(ch)
	case err != nil:
		log.Info("Login callback refused", "outcome", outcomeForged, "reason", err.Error())
		return forgedPage()
	}
	// The state is authentic: it names this channel. It must also carry
	// the nonce the channel offers now, or it was used or replaced. The
	// cache may lag the link the manager just published by a moment, so a
	// mismatch is confirmed with a live read before the person is refused.
	if !offersNonce(ch, st.Nonce) {
		live := &igv1.InstagramChannel{}
		if err := h.s.opts.APIReader.Get(ctx, key, live); err == nil {
			ch = live
		}
	}
	if !offersNonce(ch, st.Nonce) {
		log.Info("Login callback refused", "outcome", outcomeStateUsed)
		return stateUsedPage(ch)
	}

	// A login handed over for this nonce and not consumed yet: the page was
	// reloaded or the link replayed. Refused before the code is spent (a
	// live read: the receiver caches app Secrets only); the create below
	// refuses it too.
	pending := &corev1.Secret{}
	if err := h.s.opts.APIReader.Get(ctx, h.loginSecretKey(ch), pending); err == nil &&
		pending.Annotations[igv1.AnnotationNonce] == st.Nonce {
		log.Info("Login callback refused", "outcome", outcomeStateUsed, "reason", "login for this state already handed over")
		return stateUsedPage(ch)
	}

	if oauthErr := q.Get("error"); oauthErr != "" {
		return h.denied(ctx, log, ch, st, oauthErr, q.Get("error_description"))
	}
	code := strings.TrimSuffix(strings.TrimSpace(q.Get("code")), "#_")
	if code == "" {
		log.Info("Login callback refused", "outcome", outcomeMalformed, "reason", "no code")
		return malformedPage()
	}
	redirectURI := ch.Spec.RedirectURL
	if redirectURI == "" {
		redirectURI = app.redirectURL
	}
	api := h.opts.Instagram.ForApp(app.appID)
	tok, err := api.ExchangeCode(ctx, string(app.secrets[0]), redirectURI, code)
	if err != nil {
		p := exchangeFailedPage(ch, err, redirectURI)
		log.Info("Login callback: code exchange failed", "outcome", p.outcome, "error", err.Error())
		return p
	}

	data := map[string][]byte{
		igv1.TokenSecretKeyAccessToken: []byte(tok.AccessToken),
		igv1.TokenSecretKeyUserID:      []byte(tok.UserID),
		igv1.LoginSecretKeyScopes:      []byte(strings.Join(tok.Permissions, ",")),
	}
	if p, ok := h.writeLogin(ctx, log, ch, st, data); !ok {
		return p
	}
	// The account's name makes the page say who was connected; the token
	// is already handed over, so a failure here only makes the page vaguer.
	username := ""
	if acc, err := api.Me(ctx, tok.AccessToken); err == nil {
		username = acc.Username
	} else {
		log.Info("Login callback: account lookup failed", "error", err.Error())
	}
	account := accountName(username, tok.UserID)
	// Say what really happened, not what should: the manager may find the
	// account served by another channel, or permissions missing.
	done := h.awaitOutcome(r.Context(), key, st.Nonce)
	p := checkingPage(ch, account)
	if done != nil {
		p = outcomePage(done, account)
	}
	log.Info("Login completed", "outcome", p.outcome, "userID", tok.UserID, "username", username)
	return p
}

// awaitOutcome waits up to OutcomeWait for the manager to consume the login
// handed over with nonce: the channel's authorization no longer carries it,
// and its Ready condition describes the current generation. It returns the
// channel as the manager left it, or nil when the wait ran out. It reads the
// receiver's cache, which the channel watch keeps current.
func (h *loginHandler) awaitOutcome(ctx context.Context, key types.NamespacedName, nonce string) *igv1.InstagramChannel {
	if h.opts.OutcomeWait <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.OutcomeWait)
	defer cancel()
	var done *igv1.InstagramChannel
	_ = wait.PollUntilContextCancel(ctx, h.opts.OutcomePoll, true, func(ctx context.Context) (bool, error) {
		ch := &igv1.InstagramChannel{}
		if err := h.s.dir.cache.Get(ctx, key, ch); err != nil {
			return false, nil
		}
		if a := ch.Status.Authorization; a != nil && a.Nonce == nonce {
			return false, nil
		}
		ready := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady)
		if ready == nil || ready.ObservedGeneration != ch.Generation || ready.Reason == igv1.ReasonAwaitingAuthorization || ready.Reason == igv1.ReasonProgressing {
			return false, nil
		}
		done = ch
		return true, nil
	})
	return done
}

// offersNonce tells whether the channel's current login offer is the one
// nonce was issued for.
func offersNonce(ch *igv1.InstagramChannel, nonce string) bool {
	a := ch.Status.Authorization
	return a != nil && a.Nonce != "" && subtle.ConstantTimeCompare([]byte(a.Nonce), []byte(nonce)) == 1
}

// denied hands a declined login to the manager, which rotates the nonce
// and publishes a new link.
func (h *loginHandler) denied(ctx context.Context, log logr.Logger, ch *igv1.InstagramChannel, st oauthstate.State, oauthErr, desc string) page {
	desc = truncate(desc, 256)
	data := map[string][]byte{
		igv1.LoginSecretKeyError:            []byte(truncate(oauthErr, 64)),
		igv1.LoginSecretKeyErrorDescription: []byte(desc),
	}
	if p, ok := h.writeLogin(ctx, log, ch, st, data); !ok {
		return p
	}
	log.Info("Login declined", "outcome", outcomeDenied, "error", oauthErr)
	return deniedPage(ch, desc)
}

// loginSecretKey is where a login for ch is handed over: the operator's
// namespace, the only one whose Secrets the receiver may touch.
func (h *loginHandler) loginSecretKey(ch *igv1.InstagramChannel) types.NamespacedName {
	return types.NamespacedName{Namespace: h.s.opts.ClusterResourceNamespace, Name: names.LoginSecretName(ch.Namespace, ch.Name)}
}

// writeLogin creates the login Secret of ch in the operator's namespace.
// Create, never update: a Secret already there for the same nonce means
// this state was used. No owner reference (it cannot cross namespaces): the
// manager deletes the Secret when it consumes it, or when the channel goes.
func (h *loginHandler) writeLogin(ctx context.Context, log logr.Logger, ch *igv1.InstagramChannel, st oauthstate.State, data map[string][]byte) (page, bool) {
	key := h.loginSecretKey(ch)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace,
			Name:      key.Name,
			Labels:    map[string]string{igv1.LabelWatch: "true"},
			Annotations: map[string]string{
				igv1.AnnotationNonce:            st.Nonce,
				igv1.AnnotationChannelNamespace: ch.Namespace,
				igv1.AnnotationChannelName:      ch.Name,
				igv1.AnnotationChannelUID:       string(ch.UID),
			},
		},
		Type: igv1.LoginSecretType,
		Data: data,
	}
	err := h.s.opts.Client.Create(ctx, secret)
	if err == nil {
		return page{}, true
	}
	if apierrors.IsAlreadyExists(err) {
		existing := &corev1.Secret{}
		if gerr := h.s.opts.APIReader.Get(ctx, client.ObjectKeyFromObject(secret), existing); gerr == nil &&
			existing.Annotations[igv1.AnnotationNonce] != st.Nonce {
			log.Info("Login callback refused", "outcome", outcomePending)
			return pendingPage(ch), false
		}
		log.Info("Login callback refused", "outcome", outcomeStateUsed, "reason", "login Secret for this state exists")
		return stateUsedPage(ch), false
	}
	log.Error(err, "Cannot write the login Secret")
	return unavailablePage(), false
}

// loginApp reads the app a channel uses from the cache, and its credentials
// from what the manager published; nil when the app or its credentials are
// missing.
func (d *directory) loginApp(ctx context.Context, ch *igv1.InstagramChannel) (*loginApp, error) {
	key := appOf(ch)
	var (
		spec   igv1.AppSpec
		status igv1.AppStatus
	)
	switch key.Kind {
	case igv1.KindClusterInstagramApp:
		a := &igv1.ClusterInstagramApp{}
		if err := d.cache.Get(ctx, types.NamespacedName{Name: key.Name}, a); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		spec, status = a.Spec, a.Status
	default:
		a := &igv1.InstagramApp{}
		if err := d.cache.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, a); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		spec, status = a.Spec, a.Status
	}
	if spec.AppID == "" {
		return nil, nil
	}
	creds, err := d.appCredentials(ctx, key)
	if err != nil || creds == nil || len(creds.Secrets) == 0 {
		return nil, err
	}
	// The current secret (first) exchanges the code; during a rotation a
	// state signed with the previous one is still accepted.
	return &loginApp{key: key, appID: spec.AppID, redirectURL: status.RedirectURL, secrets: creds.Secrets}, nil
}

// clientLimiter limits callbacks per client address and overall.
type clientLimiter struct {
	mu        sync.Mutex
	perClient map[string]*rate.Limiter
	limit     rate.Limit
	burst     int
	global    *rate.Limiter
}

func newClientLimiter(perIP rate.Limit, perIPBurst int, global rate.Limit, globalBurst int) *clientLimiter {
	return &clientLimiter{
		perClient: map[string]*rate.Limiter{},
		limit:     perIP,
		burst:     perIPBurst,
		global:    rate.NewLimiter(global, globalBurst),
	}
}

// allow takes one token from the client's bucket, then from the global
// one, so a client over its own limit does not use up everyone's.
func (l *clientLimiter) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.perClient[ip]
	if !ok {
		if len(l.perClient) >= maxTrackedClients {
			// Forgetting everyone bounds memory; the global bucket still
			// holds while the map refills.
			clear(l.perClient)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.perClient[ip] = lim
	}
	return lim.AllowN(now, 1) && l.global.AllowN(now, 1)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// exchangeOutcome classifies a failed code exchange for the page and the
// outcome label.
func exchangeOutcome(err error) string {
	var ie *instagram.Error
	msg := ""
	if errors.As(err, &ie) {
		msg = strings.ToLower(ie.Message)
	}
	switch class := instagram.ClassOf(err); {
	case strings.Contains(msg, "redirect_uri"):
		return outcomeRedirectMismatch
	case strings.Contains(msg, "developer role"):
		return outcomeDeveloperRole
	case strings.Contains(msg, "code") && (strings.Contains(msg, "expired") || strings.Contains(msg, "already used") || strings.Contains(msg, "not found")):
		return outcomeCodeInvalid
	case class == instagram.ClassPermissionDenied:
		return outcomePermission
	case class == instagram.ClassOAuthCodeInvalid && strings.Contains(msg, "client secret"):
		return outcomeAppSecret
	}
	return outcomeInstagramError
}
