package webhookserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/names"
	"github.com/leadchat/instagram-operator/internal/sink"
)

// WebhookPath is where Meta delivers webhooks (the app's status.webhookURL).
const WebhookPath = igv1.WebhookPath

// Defaults of Options.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultReadTimeout     = 30 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultIngestTimeout   = 20 * time.Second
	DefaultShutdownTimeout = 25 * time.Second
	DefaultOrphanGrace     = 2 * time.Minute
	DefaultUnclaimedGrace  = 10 * time.Minute
	DefaultParallelism     = 8
	// DefaultMaxSharedPathSecrets is how many secrets a delivery on the
	// shared path WebhookPath is checked against: two apps, each while it
	// rotates its secret.
	DefaultMaxSharedPathSecrets = 4
)

// Options configure a Server.
type Options struct {
	// Client writes InstagramMessage objects straight to the API server.
	Client client.Client
	// Cache reads apps, channels and app Secrets (the manager's cache).
	Cache client.Reader
	// APIReader reads InstagramMessage objects from the API server.
	APIReader client.Reader
	// ClusterResourceNamespace holds the Secrets of ClusterInstagramApps.
	ClusterResourceNamespace string

	// BindAddress is the public listener, e.g. ":8443".
	BindAddress string
	// MaxBodyBytes bounds a delivery; larger ones get 413.
	MaxBodyBytes int64
	// ReadTimeout and WriteTimeout bound one request on the wire.
	ReadTimeout, WriteTimeout time.Duration
	// IngestTimeout bounds the API-server work of one delivery; it is below
	// WriteTimeout so a slow API server yields a 503, not a cut connection.
	IngestTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight deliveries may finish after
	// the stop signal.
	ShutdownTimeout time.Duration
	// OrphanGrace is how long a reaction or edit of an unknown message is
	// retried (503) before it is dropped.
	OrphanGrace time.Duration
	// UnclaimedGrace is how long after its time an entry for an account no
	// channel serves (yet) is answered 503 before it is dropped.
	UnclaimedGrace time.Duration
	// Parallelism bounds the conversations of one delivery written at once.
	Parallelism int
	// Login configures the Business Login callback (CallbackPath).
	Login LoginOptions
	// Sink bounds the delivery of events to channels' sinks.
	Sink sink.Options

	// MaxSharedPathSecrets bounds the app secrets a delivery on the shared
	// path (WebhookPath, without an app) is checked against, oldest apps
	// first; the other apps must use their own path (status.webhookURL).
	// Zero is DefaultMaxSharedPathSecrets; negative turns the shared path
	// off.
	MaxSharedPathSecrets int
	// TrustedProxies are the addresses of the proxies in front of the
	// receiver (an ingress) whose X-Forwarded-For is believed when limiting
	// per client. Empty: the peer address is the client.
	TrustedProxies []netip.Prefix
	// SignatureFailureRate and SignatureFailureBurst limit, per client, the
	// requests whose signature fails; over the limit the answer is 429
	// before the body is read.
	SignatureFailureRate  rate.Limit
	SignatureFailureBurst int

	// Clock decides about event ages; the real clock when nil.
	Clock clock.PassiveClock
	// Logger; never given tokens or bodies.
	Logger logr.Logger
}

// Server serves the receiver's routes. It is an http.Handler, and a
// manager.Runnable that listens on Options.BindAddress.
type Server struct {
	opts     Options
	dir      *directory
	ingest   *ingester
	handler  http.Handler
	log      logr.Logger
	clients  clientAddr
	failures *failureLimiter

	mu       sync.Mutex
	listener net.Addr
}

var (
	_ http.Handler                   = (*Server)(nil)
	_ manager.Runnable               = (*Server)(nil)
	_ manager.LeaderElectionRunnable = (*Server)(nil)
)

// New builds a Server; zero Options fields get their defaults.
func New(o Options) *Server {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.IngestTimeout <= 0 {
		o.IngestTimeout = DefaultIngestTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.OrphanGrace <= 0 {
		o.OrphanGrace = DefaultOrphanGrace
	}
	if o.UnclaimedGrace <= 0 {
		o.UnclaimedGrace = DefaultUnclaimedGrace
	}
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.MaxSharedPathSecrets == 0 {
		o.MaxSharedPathSecrets = DefaultMaxSharedPathSecrets
	}
	if o.SignatureFailureRate <= 0 {
		o.SignatureFailureRate = DefaultSignatureFailureRate
	}
	if o.SignatureFailureBurst <= 0 {
		o.SignatureFailureBurst = DefaultSignatureFailureBurst
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	s := &Server{
		opts:     o,
		log:      o.Logger,
		clients:  clientAddr{trusted: o.TrustedProxies},
		failures: newFailureLimiter(o.SignatureFailureRate, o.SignatureFailureBurst),
	}
	s.dir = &directory{cache: o.Cache, clusterNamespace: o.ClusterResourceNamespace, maxSharedSecrets: max(o.MaxSharedPathSecrets, 0)}
	s.ingest = &ingester{
		dir:            s.dir,
		c:              o.Client,
		live:           o.APIReader,
		clock:          o.Clock,
		log:            o.Logger,
		grace:          o.OrphanGrace,
		unclaimedGrace: o.UnclaimedGrace,
		parallel:       o.Parallelism,
		sink:           sink.NewSender(o.Sink),
	}
	s.handler = instrument(s.routes())
	return s
}

// routes is the one place the receiver's routes are declared.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	// The shared path of the first installs, and one path per app.
	mux.HandleFunc("GET "+WebhookPath, s.handleVerify)
	mux.HandleFunc("POST "+WebhookPath, s.handleDelivery)
	mux.HandleFunc("GET "+WebhookPath+"/{app...}", s.handleVerify)
	mux.HandleFunc("POST "+WebhookPath+"/{app...}", s.handleDelivery)
	mux.Handle("GET "+CallbackPath, s.loginHandler())
	return mux
}

// ServeHTTP serves the receiver's routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// NeedLeaderElection is false: every replica receives webhooks.
func (s *Server) NeedLeaderElection() bool { return false }

// Start listens on Options.BindAddress and serves until ctx ends, then lets
// in-flight deliveries finish (up to ShutdownTimeout). The manager starts it
// only after its cache has synced.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.BindAddress)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.opts.BindAddress, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Start on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: min(s.opts.ReadTimeout, 10*time.Second),
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	s.mu.Lock()
	s.listener = ln.Addr()
	s.mu.Unlock()
	s.log.Info("Serving webhooks", "address", ln.Addr().String(), "path", WebhookPath+"/{apps/<namespace>/<name>,clusterapps/<name>}")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve webhooks: %w", err)
	case <-ctx.Done():
	}
	// Request contexts do not derive from ctx, so deliveries under way keep
	// their API-server calls alive while Shutdown waits for them.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	s.log.Info("Shutting down, finishing deliveries in flight")
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down webhook server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve webhooks: %w", err)
	}
	return nil
}

// Addr is the address the server listens on, nil before it listens.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listener
}

// ReadyCheck is a healthz.Checker: ready once the server listens, which the
// manager allows only after the cache has synced.
func (s *Server) ReadyCheck(*http.Request) error {
	if s.Addr() == nil {
		return errors.New("webhook server not listening yet")
	}
	return nil
}

// SetupWithManager registers the cache index the receiver routes by and adds
// the server to the manager.
func (s *Server) SetupWithManager(ctx context.Context, mgr manager.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &igv1.InstagramChannel{}, ChannelUserIDIndex, IndexChannelUserID); err != nil {
		return fmt.Errorf("index channels by account: %w", err)
	}
	return mgr.Add(s)
}

// CacheOptions restricts the cache to what the receiver needs: the app
// credentials the manager publishes into namespace (the operator's, see
// names.AppCredentialsSecretName), never a channel's token Secret nor any
// Secret of another namespace. RBAC agrees: the receiver may read Secrets
// of that namespace only, so the only internet-facing part can reach no
// access token.
func CacheOptions(namespace string) cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Namespaces: map[string]cache.Config{namespace: {}},
				Label:      labels.SelectorFromSet(labels.Set{igv1.LabelAppCredentials: "true"}),
				Field:      fields.OneTermEqualSelector("type", igv1.AppCredentialsSecretType),
			},
		},
	}
}

// ClientOptions keep InstagramMessage out of the cache: there can be very
// many, and the receiver reads only a few, which must be fresh.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&igv1.InstagramMessage{}}}}
}

// errUnknownPath: a webhook path that names no app AppWebhookPath can make.
var errUnknownPath = errors.New("not a webhook path")

// candidates are the apps a request on r's path may come from: the one app
// its path names, or, on the shared path, a bounded number of them
// (skipped: how many were left out). Nil apps with a nil error: nobody.
func (s *Server) candidates(ctx context.Context, r *http.Request) (apps []AppCredentials, skipped int, err error) {
	rest := r.PathValue("app")
	if rest == "" {
		if s.opts.MaxSharedPathSecrets < 0 {
			return nil, 0, nil
		}
		return s.dir.sharedCredentials(ctx)
	}
	kind, namespace, name, ok := names.ParseAppWebhookPath(rest)
	if !ok {
		return nil, 0, errUnknownPath
	}
	c, err := s.dir.appCredentials(ctx, AppKey{Kind: kind, Namespace: namespace, Name: name})
	if err != nil || c == nil {
		return nil, 0, err
	}
	return []AppCredentials{*c}, 0, nil
}

// handleVerify answers Meta's subscription handshake: on an app's path with
// that app's verify token, on the shared path with the verify token of an
// app the shared path still serves.
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	challenge := q.Get("hub.challenge")
	if q.Get("hub.mode") != "subscribe" || challenge == "" || len(challenge) > 256 {
		rejectedTotal.WithLabelValues(causeVerifyToken).Inc()
		respond(w, http.StatusForbidden, "forbidden")
		return
	}
	// The same apps as a delivery on this path is checked against: a
	// handshake that succeeds promises deliveries that verify.
	apps, _, err := s.candidates(r.Context(), r)
	if errors.Is(err, errUnknownPath) {
		respond(w, http.StatusNotFound, "not found")
		return
	}
	if err != nil {
		s.log.Error(err, "Cannot read app credentials")
		rejectedTotal.WithLabelValues(causeUnavailable).Inc()
		respond(w, http.StatusServiceUnavailable, "unavailable")
		return
	}
	if !MatchVerifyToken(q.Get("hub.verify_token"), apps) {
		rejectedTotal.WithLabelValues(causeVerifyToken).Inc()
		s.log.Info("Handshake refused: verify token matches no app", "remote", r.RemoteAddr, "path", r.URL.Path)
		respond(w, http.StatusForbidden, "forbidden")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// The challenge is echoed as is: Meta compares it byte for byte.
	_, _ = io.WriteString(w, challenge)
}

// handleDelivery verifies, parses and records one delivery.
func (s *Server) handleDelivery(w http.ResponseWriter, r *http.Request) {
	code, msg := s.deliver(r, w)
	respond(w, code, msg)
}

// respond writes a short plain-text answer; Meta reads only the status code.
func respond(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

func (s *Server) deliver(r *http.Request, w http.ResponseWriter) (int, string) {
	client := s.clients.of(r)
	log := s.log.WithValues("remote", r.RemoteAddr, "client", client, "path", r.URL.Path)
	if err := CheckSignatureHeader(r.Header.Get(SignatureHeader)); err != nil {
		rejectedTotal.WithLabelValues(causeSignature).Inc()
		log.Info("Delivery refused", "cause", causeSignature, "reason", err.Error())
		return http.StatusUnauthorized, "invalid signature"
	}
	// A client whose signatures keep failing is turned away before its body
	// is read or any HMAC computed. Meta's deliveries never fail, so they
	// never spend from this budget.
	if !s.failures.allow(client, s.opts.Clock.Now()) {
		rejectedTotal.WithLabelValues(causeRateLimited).Inc()
		return http.StatusTooManyRequests, "too many invalid signatures"
	}
	if r.ContentLength > s.opts.MaxBodyBytes {
		rejectedTotal.WithLabelValues(causeTooLarge).Inc()
		return http.StatusRequestEntityTooLarge, "too large"
	}

	ctx, cancel := context.WithTimeout(r.Context(), s.opts.IngestTimeout)
	defer cancel()
	// Looked up before the body is read: a path that names no known app is
	// refused without reading a byte.
	apps, skipped, err := s.candidates(ctx, r)
	if errors.Is(err, errUnknownPath) {
		s.failures.fail(client, s.opts.Clock.Now())
		rejectedTotal.WithLabelValues(causeUnknownApp).Inc()
		return http.StatusNotFound, "not found"
	}
	if err != nil {
		log.Error(err, "Cannot read app credentials")
		rejectedTotal.WithLabelValues(causeUnavailable).Inc()
		return http.StatusServiceUnavailable, "unavailable"
	}
	if len(apps) == 0 {
		// On an app's path: that app has no credentials (it is gone, or
		// the dashboard names the wrong one). On the shared path: there is
		// no app to match, so the signature matches none.
		cause := causeSignature
		if r.PathValue("app") != "" {
			cause = causeUnknownApp
		}
		s.failures.fail(client, s.opts.Clock.Now())
		rejectedTotal.WithLabelValues(cause).Inc()
		log.Info("Delivery refused", "cause", cause)
		return http.StatusUnauthorized, "invalid signature"
	}

	body, err := readBody(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes), r.ContentLength)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			rejectedTotal.WithLabelValues(causeTooLarge).Inc()
			return http.StatusRequestEntityTooLarge, "too large"
		}
		rejectedTotal.WithLabelValues(causeMalformed).Inc()
		return http.StatusBadRequest, "cannot read body"
	}
	signers, secret, err := verifySignature(r.Header.Get(SignatureHeader), body, apps)
	if err != nil {
		s.failures.fail(client, s.opts.Clock.Now())
		rejectedTotal.WithLabelValues(causeSignature).Inc()
		if skipped > 0 {
			log = log.WithValues("appsNotTried", skipped, "hint", "apps past --shared-path-max-secrets must use their own path (status.webhookURL)")
		}
		log.Info("Delivery refused", "cause", causeSignature, "reason", err.Error(), "bytes", len(body))
		return http.StatusUnauthorized, "invalid signature"
	}
	if r.PathValue("app") != "" {
		// The other app objects of the same Meta app signed it too.
		all, err := s.dir.credentials(ctx)
		if err != nil {
			log.Error(err, "Cannot read app credentials")
			rejectedTotal.WithLabelValues(causeUnavailable).Inc()
			return http.StatusServiceUnavailable, "unavailable"
		}
		signers = append(signers, coSigners(all, secret, signers[0])...)
	}
	log = log.WithValues("app", signers[0].String())

	d, err := ParseDelivery(body)
	if err != nil {
		rejectedTotal.WithLabelValues(causeMalformed).Inc()
		log.Info("Delivery refused", "cause", causeMalformed)
		return http.StatusBadRequest, "malformed JSON"
	}
	if d.Object != objectInstagram {
		rejectedTotal.WithLabelValues(causeWrongObject).Inc()
		log.Info("Delivery refused", "cause", causeWrongObject)
		return http.StatusBadRequest, "object is not instagram"
	}
	if err := s.ingest.ingest(ctx, signers, d); err != nil {
		if !errors.Is(err, errRetry) {
			log.Error(err, "Delivery not recorded, Meta will retry", "entries", len(d.Entry))
		}
		return http.StatusServiceUnavailable, "retry later"
	}
	log.V(1).Info("Delivery recorded", "entries", len(d.Entry))
	return http.StatusOK, "ok"
}

// readBody reads the whole body into a buffer sized from Content-Length when
// the client sent one.
func readBody(r io.Reader, length int64) ([]byte, error) {
	var buf bytes.Buffer
	if length > 0 {
		buf.Grow(int(length) + 1)
	}
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// instrument records instagram_webhook_request_duration_seconds.
func instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		requestDuration.WithLabelValues(methodLabel(r.Method), strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
	})
}

// methodLabel keeps the label's values bounded whatever method a client
// invents.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodHead:
		return m
	}
	return "other"
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
