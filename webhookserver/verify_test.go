package webhookserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
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
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"object":"instagram","entry":[]}`)
	tests := map[string]struct {
		header  string
		wantApp int
		wantErr error
	}{
		"current secret":          {header: hubSignature("current", body), wantApp: 0},
		"previous secret":         {header: hubSignature("previous", body), wantApp: 0},
		"second app":              {header: hubSignature("own-secret", body), wantApp: 1},
		"upper-case hex":          {header: "sha256=" + strings.ToUpper(hubSignature("own-secret", body)[7:]), wantApp: 1},
		"missing":                 {header: "", wantErr: ErrSignatureMissing},
		"unknown secret":          {header: hubSignature("guess", body), wantErr: ErrSignatureMismatch},
		"empty secret never used": {header: hubSignature("", body), wantErr: ErrSignatureMismatch},
		"sha1":                    {header: "sha1=" + strings.Repeat("0", 40), wantErr: ErrSignatureMalformed},
		"no prefix":               {header: hubSignature("current", body)[7:], wantErr: ErrSignatureMalformed},
		"short":                   {header: hubSignature("current", body)[:70], wantErr: ErrSignatureMalformed},
		"long":                    {header: hubSignature("current", body) + "00", wantErr: ErrSignatureMalformed},
		"not hex":                 {header: "sha256=" + strings.Repeat("g", 64), wantErr: ErrSignatureMalformed},
		"other body":              {header: hubSignature("current", append([]byte(" "), body...)), wantErr: ErrSignatureMismatch},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			i, err := VerifySignature(tc.header, body, testApps)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && i != tc.wantApp {
				t.Fatalf("app = %d, want %d", i, tc.wantApp)
			}
			if tc.wantErr != nil && i != -1 {
				t.Fatalf("app = %d on error, want -1", i)
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
		i, err := VerifySignature(header, body, testApps)
		want := -1
		for j, app := range testApps {
			for _, s := range app.Secrets {
				if len(s) > 0 && want < 0 && strings.EqualFold(header, hubSignature(string(s), body)) {
					want = j
				}
			}
		}
		if i != want {
			t.Fatalf("VerifySignature = %d (%v), want %d", i, err, want)
		}
		if (err == nil) != (want >= 0) {
			t.Fatalf("err = %v with app %d", err, i)
		}
	})
}
