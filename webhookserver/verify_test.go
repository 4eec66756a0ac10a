package webhookserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// hubSignature is Meta's X-Hub-Signature-256 value, computed independently
// of VerifySignature.
func hubSignature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

var testApps = []AppCredentials{
	{App: AppKey{Kind: "ClusterInstagramApp", Name: "acme"}, Secrets: [][]byte{[]byte("current"), []byte("previous")}, VerifyToken: []byte("acme-token")},
	{App: AppKey{Kind: "InstagramApp", Namespace: "team", Name: "own"}, Secrets: [][]byte{[]byte("own-secret")}},
	{App: AppKey{Kind: "InstagramApp", Namespace: "team", Name: "empty"}, Secrets: [][]byte{{}}, VerifyToken: []byte("own-token")},
	// The same Meta app as acme, registered again by a team.
	{App: AppKey{Kind: "InstagramApp", Namespace: "team", Name: "acme-again"}, Secrets: [][]byte{[]byte("current")}},
}

var (
	acme      = testApps[0].App
	own       = testApps[1].App
	acmeAgain = testApps[3].App
)

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"object":"instagram","entry":[]}`)
	tests := map[string]struct {
		header   string
		wantApps []AppKey
		wantErr  error
	}{
		"current secret, both apps of it": {header: hubSignature("current", body), wantApps: []AppKey{acme, acmeAgain}},
		"previous secret":                 {header: hubSignature("previous", body), wantApps: []AppKey{acme}},
		"second app":                      {header: hubSignature("own-secret", body), wantApps: []AppKey{own}},
		"upper-case hex":                  {header: "sha256=" + strings.ToUpper(hubSignature("own-secret", body)[7:]), wantApps: []AppKey{own}},
		"missing":                         {header: "", wantErr: ErrSignatureMissing},
		"unknown secret":                  {header: hubSignature("guess", body), wantErr: ErrSignatureMismatch},
		"empty secret never used":         {header: hubSignature("", body), wantErr: ErrSignatureMismatch},
		"sha1":                            {header: "sha1=" + strings.Repeat("0", 40), wantErr: ErrSignatureMalformed},
		"no prefix":                       {header: hubSignature("current", body)[7:], wantErr: ErrSignatureMalformed},
		"short":                           {header: hubSignature("current", body)[:70], wantErr: ErrSignatureMalformed},
		"long":                            {header: hubSignature("current", body) + "00", wantErr: ErrSignatureMalformed},
		"not hex":                         {header: "sha256=" + strings.Repeat("g", 64), wantErr: ErrSignatureMalformed},
		"other body":                      {header: hubSignature("current", append([]byte(" "), body...)), wantErr: ErrSignatureMismatch},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := VerifySignature(tc.header, body, testApps)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantApps, got); diff != "" {
				t.Fatalf("signers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMatchVerifyToken(t *testing.T) {
	tests := map[string]struct {
		token string
		want  bool
	}{
		"first app":         {"acme-token", true},
		"other app":         {"own-token", true},
		"empty":             {"", false},
		"prefix":            {"acme-toke", false},
		"longer":            {"acme-token2", false},
		"wrong":             {"nope", false},
		"app without token": {"\x00", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := MatchVerifyToken(tc.token, testApps); got != tc.want {
				t.Fatalf("MatchVerifyToken(%q) = %v, want %v", tc.token, got, tc.want)
			}
		})
	}
}

// FuzzVerifySignature holds VerifySignature to: no panic on any header or
// body, and acceptance exactly when the header is the HMAC of the body under
// one of the secrets.
func FuzzVerifySignature(f *testing.F) {
	f.Add("sha256=", []byte(`{}`))
	f.Add(hubSignature("current", []byte(`{"object":"instagram"}`)), []byte(`{"object":"instagram"}`))
	f.Add(hubSignature("own-secret", []byte("x")), []byte("x"))
	f.Add("sha256="+strings.Repeat("zz", 32), []byte(""))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		got, err := VerifySignature(header, body, testApps)
		var want []AppKey
		for _, app := range testApps {
			for _, s := range app.Secrets {
				if len(s) > 0 && strings.EqualFold(header, hubSignature(string(s), body)) {
					want = append(want, app.App)
					break
				}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("VerifySignature (%v) (-want +got):\n%s", err, diff)
		}
		if (err == nil) != (len(want) > 0) {
			t.Fatalf("err = %v with signers %v", err, got)
		}
	})
}
