package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

func TestControlAPI(t *testing.T) {
	const secret = "sandbox-secret"
	var mu sync.Mutex
	var got []fake.Envelope
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Hub-Signature-256") != fake.SignatureHeader(secret, body) {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		var env fake.Envelope
		_ = json.Unmarshal(body, &env)
		mu.Lock()
		got = append(got, env)
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)

	f := fake.New(fake.Options{ReceiverURL: receiver.URL})
	t.Cleanup(f.Close)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	st := seed(f, srv.URL, receiver.URL, "1000000000000001", secret)
	(&control{fake: f, state: st}).routes(mux)
	mux.Handle("/", f)

	post := func(path string) (int, map[string]string) {
		resp, err := http.Post(srv.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	if status, _ := post("/_sandbox/dm?text=hi"); status != http.StatusConflict {
		t.Errorf("DM before subscription: %d", status)
	}
	f.Subscribe(st.AppID, st.Accounts[0].UserID, fake.FieldMessages, fake.FieldMessagingSeen, fake.FieldMessageReactions)
	status, dm := post("/_sandbox/dm?text=hi")
	if status != http.StatusOK || dm["mid"] == "" {
		t.Fatalf("DM: %d %v", status, dm)
	}
	if status, _ := post("/_sandbox/read"); status != http.StatusNotFound {
		t.Errorf("read with nothing sent: %d", status)
	}
	if status, _ := post("/_sandbox/reaction?mid=" + dm["mid"]); status != http.StatusOK {
		t.Errorf("reaction: %d", status)
	}
	if status, _ := post("/_sandbox/fail?endpoint=send&code=4"); status != http.StatusOK {
		t.Errorf("fail: %d", status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Entry[0].Messaging[0].Message.Text != "hi" || got[1].Entry[0].Messaging[0].Reaction == nil {
		t.Errorf("deliveries: %+v", got)
	}
}
