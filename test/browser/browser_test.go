// Package browser checks the Business Login pages a person sees, in a real
// headless Chromium against the real bin/manager and bin/webhookserver
// (started by internal/localenv with the fake Instagram).
//
// Chromium is driven from its command line, without a Go dependency:
// --dump-dom loads a URL, follows every redirect and prints the final DOM;
// --screenshot renders a page to PNG. A "click" on the fake Instagram's
// approve or cancel link is done by reading the link's href from the dumped
// authorize page and loading it, which is what the browser does on a click
// (a plain link, no script); no real pointer event is sent.
//
// Chromium comes from Debian's chromium package (/usr/bin/chromium). When it
// is missing the test installs it with apt-get (only as root), and skips
// with a message where it cannot. `go test -short` skips the test.
//
// Screenshots land in a temporary directory; with UPDATE_SCREENSHOTS=1
// they replace docs/images/login-*.png, which docs/meta-app-setup.md shows.
package browser

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
	"github.com/leadchat/instagram-operator/internal/localenv"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

const chromiumPath = "/usr/bin/chromium"

func TestBusinessLoginPages(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test needs Chromium, a control plane and the binaries")
	}
	for _, bin := range []string{"manager", "webhookserver"} {
		if _, err := os.Stat(filepath.Join(testenv.RepoRoot(), "bin", bin)); err != nil {
			t.Fatalf("bin/%s is missing: run make build", bin)
		}
	}
	b := &browser{t: t, path: ensureChromium(t), profile: t.TempDir()}
	shots := t.TempDir()
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join(testenv.RepoRoot(), "docs", "images")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := localenv.Start(ctx, localenv.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start environment: %v", err)
	}
	defer env.Stop()

	app := localenv.App{ID: "1000000000000099", Secret: "browser-app-secret", VerifyToken: "browser-verify", Name: "acme"}
	account := fake.Account{UserID: "17841400000000042", ID: "2600042", Username: "corner.shop", Name: "Corner Shop", AccountType: "BUSINESS"}
	if err := env.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	env.Fake.AddAccount(account)
	if _, err := env.CreateLoginChannel(ctx, app, "shop", "support"); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKey{Namespace: "shop", Name: "support"}

	// 1. The person opens the link and clicks Cancel.
	link := waitForLink(t, env, key, igv1.ReasonAwaitingAuthorization, "")
	authorizePage := b.dumpDOM(link)
	if !strings.Contains(authorizePage, "Log in as @corner.shop") {
		t.Fatalf("fake authorize page does not offer the account:\n%s", authorizePage)
	}
	denied := b.dumpDOM(resolveHref(t, env.FakeURL, authorizePage, "deny"))
	expectText(t, "denied page", denied,
		"Not connected", "You chose not to connect your Instagram account.", "Details for the administrator",
		"shop/support", "Permissions error",
		"kubectl -n shop get instagramchannel support -o jsonpath=")
	b.screenshot(denied, filepath.Join(shots, "login-denied.png"), desktopWidth, desktopHeight, false)

	// 2. The channel publishes a new link; its code reaches the receiver
	// only after it was used (a reload, a slow redirect).
	link = waitForLink(t, env, key, igv1.ReasonAuthorizationDenied, link)
	loc, err := env.Fake.AuthorizeRedirect(link, account.UserID)
	if err != nil {
		t.Fatal(err)
	}
	spendCode(t, env.FakeURL, app, env.PublicURL+"/instagram/callback", loc)
	reused := b.dumpDOM(loc)
	expectText(t, "reused-code page", reused,
		"This login expired or was already completed", "Matching code was not found or was already used",
		"kubectl -n shop get instagramchannel support")
	b.screenshot(reused, filepath.Join(shots, "login-error-code-used.png"), desktopWidth, desktopHeight, true)
	b.screenshot(reused, filepath.Join(shots, "login-error-code-used-phone.png"), phoneWidth, phoneHeight, true)
	// Below 480 px labels stack above their values; wider, they sit beside
	// them. Prose never breaks inside a word at either width.
	for _, c := range []struct {
		width int
		want  string
	}{{phoneWidth, "stacked"}, {desktopWidth, "inline"}} {
		facts, broken := b.layout(reused, c.width)
		for i, f := range facts {
			if f != c.want {
				t.Errorf("at %d px, fact %d of the reused-code page is %s, want %s", c.width, i, f, c.want)
			}
		}
		if broken != "0" {
			t.Errorf("at %d px, %s words of the reused-code page break across lines", c.width, broken)
		}
	}

	// 3. The person opens the link again and clicks approve.
	authorizePage = b.dumpDOM(link)
	// The page waits for the manager's verdict: the real manager connects
	// the account within the wait, so the page says so, and only then.
	connected := b.dumpDOM(resolveHref(t, env.FakeURL, authorizePage, "approve"))
	expectText(t, "success page", connected,
		"Connected. You can close this tab.", "Your Instagram account @corner.shop is connected.",
		"shop/support", "kubectl -n shop get instagramchannel support")
	b.screenshot(connected, filepath.Join(shots, "login-connected.png"), desktopWidth, desktopHeight, false)
	b.screenshot(connected, filepath.Join(shots, "login-connected-phone.png"), phoneWidth, phoneHeight, false)
	if facts, broken := b.layout(connected, phoneWidth); broken != "0" || len(facts) == 0 {
		t.Errorf("success page at %d px: facts %v, %s words broken", phoneWidth, facts, broken)
	}

	for _, page := range []string{denied, reused, connected} {
		if strings.Contains(page, app.Secret) || strings.Contains(page, "state=") {
			t.Fatalf("a page shows a secret or the state:\n%s", page)
		}
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		ch := &igv1.InstagramChannel{}
		if err := env.Client.Get(ctx, key, ch); err == nil && meta.IsStatusConditionTrue(ch.Status.Conditions, igv1.ConditionReady) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel not Ready after the login; manager log:\n%s", env.Manager.Tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ensureChromium returns Chromium's path, installing Debian's package when
// it is missing and that is possible.
func ensureChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	aptGet, err := exec.LookPath("apt-get")
	if err != nil || os.Geteuid() != 0 {
		t.Skipf("Chromium is not installed at %s and cannot be installed here (needs root and apt-get): apt-get install chromium", chromiumPath)
	}
	install := func() error {
		out, err := exec.Command(aptGet, "install", "-y", "--no-install-recommends", "chromium").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, lastLines(string(out), 5))
		}
		return nil
	}
	t.Logf("installing chromium with apt-get")
	if err := install(); err != nil {
		t.Logf("apt-get install failed (%v); running apt-get update", err)
		if out, err := exec.Command(aptGet, "update").CombinedOutput(); err != nil {
			t.Skipf("Chromium cannot be installed: apt-get update: %v: %s", err, lastLines(string(out), 5))
		}
		if err := install(); err != nil {
			t.Skipf("Chromium cannot be installed: %v", err)
		}
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("apt-get installed chromium but %s is missing", chromiumPath)
	}
	return chromiumPath
}

type browser struct {
	t       *testing.T
	path    string
	profile string
}

func (b *browser) run(args ...string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
		"--user-data-dir=" + b.profile,
	}
	cmd := exec.CommandContext(ctx, b.path, append(base, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.t.Fatalf("chromium %v: %v\n%s", args, err, lastLines(stderr.String(), 10))
	}
	return string(out)
}

// dumpDOM loads url, following redirects, and returns the final DOM.
func (b *browser) dumpDOM(u string) string {
	b.t.Helper()
	return b.run("--dump-dom", u)
}

// Viewport sizes: a phone (below the 480 px breakpoint) and a laptop.
const (
	phoneWidth, phoneHeight     = 390, 844
	desktopWidth, desktopHeight = 1000, 700
)

// screenshot renders a page's DOM (self-contained: inline CSS, no assets)
// to a PNG at the given window size, with the administrator's details
// folded (as the owner sees it) or opened.
func (b *browser) screenshot(dom, png string, width, height int, openDetails bool) {
	b.t.Helper()
	if openDetails {
		dom = strings.Replace(dom, "<details>", "<details open>", 1)
	}
	src := filepath.Join(b.t.TempDir(), "page.html")
	if err := os.WriteFile(src, []byte(dom), 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.run("--screenshot="+png, fmt.Sprintf("--window-size=%d,%d", width, height), "file://"+src)
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		b.t.Fatalf("no screenshot at %s: %v", png, err)
	}
}

// layoutProbe measures, in the rendered page, whether each fact's label
// sits above its value ("stacked") or beside it ("inline"), and how many
// words of prose break across lines. The page itself runs no script (its
// CSP forbids it): the probe loads it into an iframe of the wanted width
// (headless Chromium's window is never narrower than 500 px) and measures
// from outside.
const layoutProbe = `<script>
f.addEventListener('load', () => {
  const doc = f.contentDocument;
  doc.querySelectorAll('details').forEach(d => d.open = true);
  const facts = [...doc.querySelectorAll('.fact')].map(x => {
    const t = x.querySelector('dt').getBoundingClientRect(), d = x.querySelector('dd').getBoundingClientRect();
    return t.bottom <= d.top + 1 ? 'stacked' : 'inline';
  });
  let broken = 0;
  const walk = doc.createTreeWalker(doc.querySelector('main'), NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    if (n.parentElement.closest('code, pre')) continue;
    const re = /\S+/g; let m;
    while ((m = re.exec(n.data))) {
      const r = doc.createRange(); r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
      if (r.getClientRects().length > 1) broken++;
    }
  }
  document.body.setAttribute('data-probe', facts.join(',') + ';broken=' + broken);
});
</script>`

// layout returns the probe's findings for dom at a viewport width: the
// facts' arrangement and how many words of prose broke across lines.
func (b *browser) layout(dom string, width int) (facts []string, broken string) {
	b.t.Helper()
	probe := fmt.Sprintf(`<!DOCTYPE html><html><body style="margin:0"><iframe id="f" style="width:%dpx;height:%dpx;border:0" srcdoc="%s"></iframe>%s</body></html>`,
		width, phoneHeight, html.EscapeString(dom), layoutProbe)
	src := filepath.Join(b.t.TempDir(), "probe.html")
	if err := os.WriteFile(src, []byte(probe), 0o644); err != nil {
		b.t.Fatal(err)
	}
	out := b.run("--dump-dom", "--virtual-time-budget=3000", fmt.Sprintf("--window-size=%d,%d", desktopWidth+100, phoneHeight+100), "file://"+src)
	m := regexp.MustCompile(`data-probe="([^";]*);broken=(\d+)"`).FindStringSubmatch(out)
	if m == nil {
		b.t.Fatalf("the layout probe did not run:\n%s", lastLines(out, 5))
	}
	return strings.Split(m[1], ","), m[2]
}

// resolveHref finds the link with the given class on the fake authorize
// page and resolves it against the fake's base URL.
func resolveHref(t *testing.T, base, dom, class string) string {
	t.Helper()
	m := regexp.MustCompile(`<a class="` + class + `" href="([^"]+)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no %s link on the authorize page:\n%s", class, dom)
	}
	ref, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return b.ResolveReference(ref).String()
}

// spendCode exchanges the code of a callback URL, as a first visit would.
func spendCode(t *testing.T, fakeURL string, app localenv.App, redirectURI, callback string) {
	t.Helper()
	u, err := url.Parse(callback)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(fakeURL+"/oauth/access_token", url.Values{
		"client_id": {app.ID}, "client_secret": {app.Secret}, "grant_type": {"authorization_code"},
		"redirect_uri": {redirectURI}, "code": {u.Query().Get("code")},
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("spending the code: %s", resp.Status)
	}
}

// waitForLink waits until the channel publishes a link other than previous
// with the given Ready reason.
func waitForLink(t *testing.T, env *localenv.Env, key client.ObjectKey, reason, previous string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ch := &igv1.InstagramChannel{}
		err := env.Client.Get(context.Background(), key, ch)
		if err == nil {
			ready := meta.FindStatusCondition(ch.Status.Conditions, igv1.ConditionReady)
			if ready != nil && ready.Reason == reason && ch.Status.AuthorizationURL != "" && ch.Status.AuthorizationURL != previous {
				return ch.Status.AuthorizationURL
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new authorization URL with reason %s (last read error: %v); manager log:\n%s", reason, err, env.Manager.Tail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// expectText checks the visible text of a page (tags stripped).
func expectText(t *testing.T, what, dom string, want ...string) {
	t.Helper()
	text := html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(dom, " "))
	text = strings.Join(strings.Fields(text), " ")
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s does not say %q; it says:\n%s", what, w, text)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
