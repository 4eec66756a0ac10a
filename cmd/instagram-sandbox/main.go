// Command instagram-sandbox runs the fake Instagram on one port for `make
// demo` and manual trials: it seeds an app, two professional accounts and a
// customer, issues a long-lived token for the first account, prints how to
// point the operator at it, and serves a control API under /_sandbox/ to
// play the customer (DM, reaction, read receipt), each delivered signed to
// the webhook receiver.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

// state is what the sandbox seeded; --state-file holds it for scripts.
type state struct {
	GraphAPIURL       string            `json:"graphAPIURL"`
	InstagramAPIURL   string            `json:"instagramAPIURL"`
	InstagramOAuthURL string            `json:"instagramOAuthURL"`
	ReceiverURL       string            `json:"receiverURL"`
	AppID             string            `json:"appID"`
	AppSecret         string            `json:"appSecret"`
	Accounts          []accountState    `json:"accounts"`
	Customers         []fake.Customer   `json:"customers"`
	Operator          map[string]string `json:"operatorFlags"`
}

type accountState struct {
	UserID         string    `json:"userID"`
	Username       string    `json:"username"`
	Token          string    `json:"token,omitempty"`
	TokenExpiresAt time.Time `json:"tokenExpiresAt,omitzero"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "instagram-sandbox:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		listen        = flag.String("listen", "127.0.0.1:9090", "address of the fake Instagram and of the /_sandbox/ control API")
		receiverURL   = flag.String("receiver-url", "http://127.0.0.1:8443/webhooks/instagram", "webhook callback URL the sandbox app delivers to")
		appID         = flag.String("app-id", "1000000000000001", "Meta app ID of the sample app")
		appSecret     = flag.String("app-secret", "", "app secret of the sample app (random when empty)")
		stateFile     = flag.String("state-file", "", "write the seeded app, accounts and token to this JSON file")
		deliverEcho   = flag.Bool("deliver-echo", true, "deliver the echo of every send to the receiver")
		autoReadAfter = flag.Duration("auto-read-after", 0, "deliver a read receipt this long after every send (0 disables)")
		enforceWindow = flag.Bool("enforce-window", false, "refuse sends outside the 24-hour messaging window")
		wrapExchange  = flag.Bool("wrap-code-exchange", false, `answer the code exchange in the {"data":[...]} shape`)
	)
	flag.Parse()

	log := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil))
	secret := *appSecret
	if secret == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		secret = hex.EncodeToString(b)
	}

	f := fake.New(fake.Options{
		ReceiverURL:            *receiverURL,
		DeliverEcho:            *deliverEcho,
		AutoReadAfter:          *autoReadAfter,
		EnforceMessagingWindow: *enforceWindow,
		WrapCodeExchange:       *wrapExchange,
		// Picture URLs expire as Instagram's CDN links do.
		ProfilePicTTL: 72 * time.Hour,
		Logger:        log.WithName("fake"),
	})
	defer f.Close()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	st := seed(f, base, *receiverURL, *appID, secret)
	if *stateFile != "" {
		if err := writeState(*stateFile, st); err != nil {
			return err
		}
	}
	printInstructions(st, *stateFile)

	mux := http.NewServeMux()
	(&control{fake: f, state: st}).routes(mux)
	mux.Handle("/", f)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("Fake Instagram listening", "address", base, "receiver", *receiverURL)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("Shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// seed adds the sample app, accounts and customer, and a long-lived token
// for the first account.
func seed(f *fake.Server, base, receiverURL, appID, secret string) *state {
	f.AddApp(appID, secret)
	accounts := []fake.Account{
		{UserID: "17841400000000001", ID: "9000000000000001", Username: "sandbox_shop", Name: "Sandbox Shop", AccountType: "BUSINESS"},
		{UserID: "17841400000000002", ID: "9000000000000002", Username: "sandbox_support", Name: "Sandbox Support", AccountType: "MEDIA_CREATOR"},
	}
	customers := []fake.Customer{
		{IGSID: "5550001", Name: "Ann Customer", Username: "ann.customer", ProfilePic: "https://scontent.cdninstagram.com/v/ann.jpg", FollowerCount: 120, IsUserFollowBusiness: true},
		{IGSID: "5550002", Name: "Bob Private", Username: "bob.private", NoConsent: true},
	}
	st := &state{
		GraphAPIURL: base, InstagramAPIURL: base, InstagramOAuthURL: base, ReceiverURL: receiverURL,
		AppID: appID, AppSecret: secret, Customers: customers,
		Operator: map[string]string{
			"--graph-api-url":       base,
			"--instagram-api-url":   base,
			"--instagram-oauth-url": base,
		},
	}
	for i, a := range accounts {
		f.AddAccount(a)
		as := accountState{UserID: a.UserID, Username: a.Username}
		if i == 0 {
			as.Token = f.IssueLongLivedToken(appID, a.UserID)
			if info, ok := f.Token(as.Token); ok {
				as.TokenExpiresAt = info.ExpiresAt
			}
		}
		st.Accounts = append(st.Accounts, as)
	}
	for _, c := range customers {
		f.AddCustomer(c)
	}
	return st
}

func writeState(path string, st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// The file holds a (sandbox) token and the app secret.
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// printInstructions tells the person running the sandbox how to wire the
// operator to it. The token is a sandbox token: printing it is the point.
func printInstructions(st *state, stateFile string) {
	acc := st.Accounts[0]
	fmt.Printf(`Fake Instagram sandbox
  operator flags:   --graph-api-url=%[1]s --instagram-api-url=%[1]s --instagram-oauth-url=%[1]s
  app:              id %[2]s, secret %[3]s
  account:          @%[4]s user_id %[5]s
  long-lived token: %[6]s (expires %[7]s)
  webhooks go to:   %[8]s
  play the customer:
    curl -X POST '%[1]s/_sandbox/dm?to=%[5]s&from=%[9]s&text=Hello'
    curl -X POST '%[1]s/_sandbox/reaction?mid=<mid>&reaction=love'
    curl -X POST '%[1]s/_sandbox/read?mid=<mid>'   (default: the last message sent)
  inspect: GET %[1]s/_sandbox/{state,sent,calls,deliveries}
`, st.GraphAPIURL, st.AppID, st.AppSecret, acc.Username, acc.UserID, acc.Token,
		acc.TokenExpiresAt.Format(time.RFC3339), st.ReceiverURL, st.Customers[0].IGSID)
	if stateFile != "" {
		fmt.Printf("  state written to %s\n", stateFile)
	}
}
