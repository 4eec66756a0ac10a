package instagram_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

// TestConversations reads a history through the real client and the fake:
// conversations newest first, messages newest first, details of the 20 most
// recent only.
func TestConversations(t *testing.T) {
	e := newEnv(t, fake.Options{})
	ctx := context.Background()
	tok := e.token(t)
	t0 := time.Date(2025, 11, 20, 9, 0, 0, 0, time.UTC)
	var history []fake.HistoryMessage
	for i := range 25 {
		history = append(history, fake.HistoryMessage{MID: fmt.Sprintf("mid.%02d", i), FromCustomer: i%2 == 0, Text: fmt.Sprintf("m%d", i), At: t0.Add(time.Duration(i) * time.Minute)})
	}
	e.fake.AddHistory(userID, "5550100", history...)
	e.fake.AddHistory(userID, "5550200", fake.HistoryMessage{MID: "mid.old", FromCustomer: true, Text: "older thread", At: t0.Add(-time.Hour)})

	convs, err := e.api.Conversations(ctx, tok, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(convs) != 2 || !convs[0].UpdatedTime.Equal(t0.Add(24*time.Minute)) || !convs[1].UpdatedTime.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("conversations: %+v", convs)
	}
	if one, err := e.api.Conversations(ctx, tok, 1); err != nil || len(one) != 1 || one[0].ID != convs[0].ID {
		t.Fatalf("limit 1: %+v, %v", one, err)
	}
	ids, err := e.api.ConversationMessages(ctx, tok, convs[0].ID, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 20 || ids[0] != "mid.24" || ids[19] != "mid.05" {
		t.Fatalf("message ids: %v", ids)
	}
	got, err := e.api.ConversationMessage(ctx, tok, "mid.24")
	if err != nil {
		t.Fatal(err)
	}
	want := &instagram.ConversationMessage{ID: "mid.24", CreatedTime: t0.Add(24 * time.Minute), FromID: "5550100", ToIDs: []string{userID}, Text: "m24"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("message (-want +got):\n%s", d)
	}
	got, err = e.api.ConversationMessage(ctx, tok, "mid.23")
	if err != nil || got.FromID != userID || got.ToIDs[0] != "5550100" {
		t.Fatalf("business message: %+v, %v", got, err)
	}
	// Older than the 20 most recent: Instagram refuses the details.
	_, err = e.api.ConversationMessage(ctx, tok, "mid.00")
	if instagram.ClassOf(err) != instagram.ClassBadRequest {
		t.Fatalf("old message: %v", err)
	}
}
