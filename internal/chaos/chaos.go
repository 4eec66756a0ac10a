// Package chaos runs the failure drills behind the operator's delivery
// guarantees against the real binaries, a local control plane and the fake
// Instagram: the receiver killed -9 under signed load, the API server
// paused (SIGSTOP/SIGCONT) under load, and the manager killed -9 while sends
// are in flight. Each drill counts what the guarantees are about: deliveries
// acknowledged, stored, lost (acknowledged but not stored) and duplicated,
// and messages sent twice. `make chaos` runs it at full size (hack/chaos);
// test/chaos runs a small version in `make test`.
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/localenv"
)

// Config sizes the drills.
type Config struct {
	// Dir receives the binaries' logs.
	Dir string
	// Deliveries per load drill, each one signed customer message.
	Deliveries int
	// Concurrency of the load generator.
	Concurrency int
	// Pause is how long the API server is stopped.
	Pause time.Duration
	// Sends is the number of outgoing messages in the manager drill.
	Sends int
	// RetryFor bounds how long the generator, like Meta, retries one
	// delivery that was not answered 200.
	RetryFor time.Duration
}

// Result is one drill's figures.
type Result struct {
	Drill      string `json:"drill"`
	Attempts   int    `json:"attempts"`
	Acked      int    `json:"acked"`
	Stored     int    `json:"stored"`
	Lost       int    `json:"lost"`
	Duplicated int    `json:"duplicated"`
	// SentTwice counts outgoing messages Instagram received more than once;
	// SentOnce those it received exactly once.
	SentTwice int `json:"sentTwice"`
	SentOnce  int `json:"sentOnce"`
	// Outcomes counts the final phase/reason of the drill's outgoing
	// messages (e.g. "Sent", "Failed/DeliveryUnknown").
	Outcomes map[string]int `json:"outcomes,omitempty"`
	// MaxWait is the longest a delivery took from first attempt to 200.
	MaxWait string `json:"maxWait"`
	Note    string `json:"note,omitempty"`
}

// OK reports whether the drill kept every guarantee.
func (r Result) OK() bool { return r.Lost == 0 && r.Duplicated == 0 && r.SentTwice == 0 }

const (
	namespace = "chaos"
	customer  = "5512340000000001"
)

// Run brings up the environment, runs the three drills and tears it down.
func Run(ctx context.Context, cfg Config, logf func(format string, args ...any)) ([]Result, error) {
	env, err := localenv.Start(ctx, localenv.Options{Dir: cfg.Dir})
	if err != nil {
		return nil, err
	}
	defer env.Stop()
	app := localenv.App{ID: "1000000000000077", Secret: "chaos-secret-" + rand.String(8), VerifyToken: "chaos-verify", Name: "chaos"}
	if err := env.CreateApp(ctx, app); err != nil {
		return nil, err
	}
	account := fake.Account{UserID: "17841400000007701", Username: "chaos.shop", Name: "Chaos Shop", AccountType: "BUSINESS"}
	if _, err := env.CreateTokenChannel(ctx, app, namespace, "support", account, true); err != nil {
		return nil, err
	}
	if err := waitChannelReady(ctx, env); err != nil {
		return nil, err
	}
	d := &drills{cfg: cfg, env: env, app: app, account: account, logf: logf}
	var results []Result
	for _, drill := range []struct {
		name string
		run  func(context.Context) (Result, error)
	}{
		{"receiver killed -9 under load", d.receiverKill},
		{"API server paused under load", d.apiServerPause},
		{"manager killed -9 mid-send", d.managerKill},
	} {
		logf("drill: %s", drill.name)
		r, err := drill.run(ctx)
		r.Drill = drill.name
		if err != nil {
			return results, fmt.Errorf("%s: %w", drill.name, err)
		}
		logf("  %+v", r)
		results = append(results, r)
	}
	return results, nil
}

type drills struct {
	cfg     Config
	env     *localenv.Env
	app     localenv.App
	account fake.Account
	logf    func(string, ...any)
	seq     atomic.Int64
}

func waitChannelReady(ctx context.Context, env *localenv.Env) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var ch igv1.InstagramChannel
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "support"}, &ch); err == nil {
			for _, c := range ch.Status.Conditions {
				if c.Type == igv1.ConditionReady && c.Status == metav1.ConditionTrue && ch.Status.Account != nil {
					return nil
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("channel not Ready within 2m")
}

// load posts cfg.Deliveries signed deliveries, each retried until it is
// answered 200 or RetryFor passes, and calls disrupt once a third of them
// are under way. It then counts what was stored.
func (d *drills) load(ctx context.Context, prefix string, disrupt func() error) (Result, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	mids := make([]string, d.cfg.Deliveries)
	acked := make([]bool, d.cfg.Deliveries)
	var attempts atomic.Int64
	var maxWait atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range d.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				start := time.Now()
				for time.Since(start) < d.cfg.RetryFor && ctx.Err() == nil {
					attempts.Add(1)
					status, err := d.post(ctx, hc, mids[i], i)
					if err == nil && status == http.StatusOK {
						acked[i] = true
						if w := int64(time.Since(start)); w > maxWait.Load() {
							maxWait.Store(w)
						}
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
	}
	var disruptErr error
	var disrupted sync.WaitGroup
	for i := range mids {
		mids[i] = fmt.Sprintf("%s-%d-%d", prefix, d.seq.Add(1), i)
		if i == len(mids)/3 {
			disrupted.Add(1)
			go func() {
				defer disrupted.Done()
				disruptErr = disrupt()
			}()
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	disrupted.Wait()
	if disruptErr != nil {
		return Result{}, disruptErr
	}
	r := Result{Attempts: int(attempts.Load()), MaxWait: time.Duration(maxWait.Load()).Round(time.Millisecond).String()}
	stored := map[string]int{}
	var list igv1.InstagramMessageList
	if err := d.env.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return r, err
	}
	for _, m := range list.Items {
		if strings.HasPrefix(m.Status.MessageID, prefix+"-") {
			stored[m.Status.MessageID]++
		}
	}
	for i, mid := range mids {
		if acked[i] {
			r.Acked++
		}
		if n := stored[mid]; n > 0 {
			r.Stored++
			if n > 1 {
				r.Duplicated += n - 1
			}
		} else if acked[i] {
			r.Lost++
		}
	}
	return r, nil
}

func (d *drills) post(ctx context.Context, hc *http.Client, mid string, i int) (int, error) {
	now := time.Now()
	body, err := json.Marshal(fake.NewEnvelope(d.account.UserID, now, fake.Messaging{
		Sender: fake.Party{ID: customerID(i)}, Recipient: fake.Party{ID: d.account.UserID}, Timestamp: now.UnixMilli(),
		Message: &fake.Message{MID: mid, Text: "chaos " + strconv.Itoa(i)},
	}))
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.env.PublicURL+"/webhooks/instagram", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", fake.SignatureHeader(d.app.Secret, body))
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func customerID(i int) string { return fmt.Sprintf("55123400%08d", 1000+i%50) }

func (d *drills) receiverKill(ctx context.Context) (Result, error) {
	r, err := d.load(ctx, "kill", func() error {
		time.Sleep(500 * time.Millisecond)
		d.env.Receiver.Kill()
		time.Sleep(time.Second)
		return d.env.Receiver.Start(ctx)
	})
	r.Note = "receiver killed with SIGKILL a third into the load, restarted 1s later"
	return r, err
}

func (d *drills) apiServerPause(ctx context.Context) (Result, error) {
	pid, err := apiServerPID()
	if err != nil {
		return Result{}, err
	}
	r, err := d.load(ctx, "pause", func() error {
		time.Sleep(500 * time.Millisecond)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return err
		}
		time.Sleep(d.cfg.Pause)
		return syscall.Kill(pid, syscall.SIGCONT)
	})
	r.Note = fmt.Sprintf("kube-apiserver stopped (SIGSTOP) for %s a third into the load", d.cfg.Pause)
	return r, err
}

// managerKill makes every send take a second at the fake, creates the
// messages, kills the manager once some are Sending, restarts it and waits
// for every message to finish.
func (d *drills) managerKill(ctx context.Context) (Result, error) {
	if _, err := d.env.Fake.DeliverMessage(ctx, fake.CustomerMessage{AccountUserID: d.account.UserID, CustomerID: customer, Text: "open the window"}); err != nil {
		return Result{}, err
	}
	d.env.Fake.FailNext(fake.EndpointSend, d.cfg.Sends, fake.Fault{Delay: time.Second})
	texts := map[string]bool{}
	for i := range d.cfg.Sends {
		text := fmt.Sprintf("chaos reply %d %s", i, rand.String(5))
		texts[text] = true
		m := &igv1.InstagramMessage{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("reply-%d", i), Namespace: namespace},
			Spec: igv1.InstagramMessageSpec{ChannelRef: igv1.ChannelReference{Name: "support"}, Direction: igv1.DirectionOutgoing,
				ContactID: customer, Text: text},
		}
		if err := d.env.Client.Create(ctx, m); err != nil {
			return Result{}, err
		}
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if phases(ctx, d.env)[string(igv1.PhaseSending)] > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.env.Manager.Kill()
	time.Sleep(500 * time.Millisecond)
	if err := d.env.Manager.Start(ctx); err != nil {
		return Result{}, err
	}
	var outcomes map[string]int
	deadline = time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		outcomes = phases(ctx, d.env)
		if outcomes[string(igv1.PhasePending)]+outcomes[string(igv1.PhaseSending)]+outcomes[""] == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r := Result{Attempts: d.cfg.Sends, Outcomes: outcomes, Note: "every send takes 1s at the fake; manager killed with SIGKILL once one is Sending"}
	sent := map[string]int{}
	for _, s := range d.env.Fake.Sent() {
		if texts[s.Text] {
			sent[s.Text]++
		}
	}
	for _, n := range sent {
		if n > 1 {
			r.SentTwice++
		} else {
			r.SentOnce++
		}
	}
	if n := outcomes[string(igv1.PhasePending)] + outcomes[string(igv1.PhaseSending)]; n > 0 {
		return r, fmt.Errorf("%d messages did not finish within 5m", n)
	}
	return r, nil
}

// phases counts the drill's outgoing messages by phase (and reason when
// failed).
func phases(ctx context.Context, env *localenv.Env) map[string]int {
	var list igv1.InstagramMessageList
	out := map[string]int{}
	if err := env.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return out
	}
	for _, m := range list.Items {
		if m.Spec.Direction != igv1.DirectionOutgoing || m.Spec.Echo {
			continue
		}
		k := string(m.Status.Phase)
		if m.Status.Phase == igv1.PhaseFailed {
			k += "/" + m.Status.Reason
		}
		out[k]++
	}
	return out
}

// apiServerPID finds the kube-apiserver this process started (envtest runs
// it as a child).
func apiServerPID() (int, error) {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < 0 || s[open+1:close] != "kube-apiserver" {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(self) {
			return pid, nil
		}
	}
	return 0, errors.New("no kube-apiserver child of this process")
}

// Markdown renders results as a table.
func Markdown(results []Result) string {
	var b strings.Builder
	b.WriteString("| drill | deliveries acked | stored | lost | duplicated | longest wait for 200 | sent once | sent twice | outcomes |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s | %d | %d | %v |\n", r.Drill, r.Acked, r.Stored, r.Lost, r.Duplicated, r.MaxWait, r.SentOnce, r.SentTwice, r.Outcomes)
	}
	return b.String()
}
