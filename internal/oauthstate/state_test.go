package oauthstate

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("app-secret")
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	good := State{Namespace: "shop", Name: "support", Nonce: "n1", ExpiresAt: now.Add(TTL).Unix()}
	token, err := Sign(secret, good)
	if err != nil {
		t.Fatal(err)
	}
	payload, mac, _ := strings.Cut(token, ".")
	other, _ := Sign(secret, State{Namespace: "shop", Name: "sales", Nonce: "n1", ExpiresAt: good.ExpiresAt})
	otherPayload, _, _ := strings.Cut(other, ".")

	cases := map[string]struct {
		token   string
		now     time.Time
		secrets [][]byte
		want    error
	}{
		"valid":                      {token: token, now: now, secrets: [][]byte{secret}},
		"valid with previous secret": {token: token, now: now, secrets: [][]byte{[]byte("new-secret"), secret}},
		"expired":                    {token: token, now: now.Add(TTL + time.Second), secrets: [][]byte{secret}, want: ErrExpired},
		"wrong secret":               {token: token, now: now, secrets: [][]byte{[]byte("other")}, want: ErrSignature},
		"no secret":                  {token: token, now: now, secrets: [][]byte{nil}, want: ErrSignature},
		"moved to another channel":   {token: otherPayload + "." + mac, now: now, secrets: [][]byte{secret}, want: ErrSignature},
		"signature stripped":         {token: payload, now: now, secrets: [][]byte{secret}, want: ErrMalformed},
		"garbage":                    {token: "!!!.???", now: now, secrets: [][]byte{secret}, want: ErrMalformed},
		"empty":                      {token: "", now: now, secrets: [][]byte{secret}, want: ErrMalformed},
		"too long":                   {token: strings.Repeat("a", maxLen+1), now: now, secrets: [][]byte{secret}, want: ErrMalformed},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Verify(tc.token, tc.now, tc.secrets...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify() error = %v, want %v", err, tc.want)
			}
			if tc.want == nil && got != good {
				t.Fatalf("Verify() = %+v, want %+v", got, good)
			}
		})
	}
}

func TestNonceIsRandom(t *testing.T) {
	a, _ := NewNonce()
	b, _ := NewNonce()
	if a == b || len(a) < 20 {
		t.Fatalf("nonces %q and %q are not random enough", a, b)
	}
}

func FuzzVerify(f *testing.F) {
	secret := []byte("s")
	tok, _ := Sign(secret, State{Namespace: "a", Name: "b", Nonce: "c", ExpiresAt: 10})
	f.Add(tok)
	f.Add("x.y")
	f.Fuzz(func(t *testing.T, token string) {
		s, err := Verify(token, time.Unix(0, 0), secret)
		if err == nil && (s.Namespace == "" || s.Name == "") {
			t.Fatalf("accepted an empty state from %q", token)
		}
	})
}
