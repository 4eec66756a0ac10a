package instagram_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/leadchat/instagram-operator/internal/instagram"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

func (e *env) issueWithScopes(t *testing.T, scopes ...string) string {
	t.Helper()
	tok := e.fake.IssueLongLivedTokenWithScopes(appID, userID, scopes...)
	e.addSecret(tok)
	return tok
}

func TestCommentCalls(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fake.Options{})
	tok := e.fake.IssueLongLivedToken(appID, userID)
	e.fake.AddComment(fake.Comment{ID: "1801", AccountUserID: userID, MediaID: "1790", FromID: customer, Text: "nice"})

	t.Run("without the comments scope", func(t *testing.T) {
		_, err := e.api.Comment(ctx, tok, "1801")
		if ie := e.checkErr(t, err); ie.Class != instagram.ClassPermissionDenied {
			t.Errorf("class %s", ie.Class)
		}
	})
	tok = e.issueWithScopes(t, fake.ScopeBasic, fake.ScopeManageMessages, fake.ScopeManageComments)

	if err := e.api.HideComment(ctx, tok, "1801", true); err != nil {
		t.Fatal(err)
	}
	c, err := e.api.Comment(ctx, tok, "1801")
	if err != nil || !c.Hidden || c.ID != "1801" {
		t.Fatalf("Comment = %+v, %v", c, err)
	}
	if _, err := e.api.ReplyToComment(ctx, tok, "1801", "thanks"); instagram.ClassOf(err) != instagram.ClassBadRequest {
		t.Errorf("public reply to a hidden comment: %v", err)
	}
	if err := e.api.HideComment(ctx, tok, "1801", false); err != nil {
		t.Fatal(err)
	}
	id, err := e.api.ReplyToComment(ctx, tok, "1801", "thanks")
	if err != nil || id == "" {
		t.Fatalf("ReplyToComment = %q, %v", id, err)
	}
	if st, _ := e.fake.CommentState("1801"); !cmp.Equal(st.Replies, []string{id}) {
		t.Errorf("replies %v", st.Replies)
	}

	res, err := e.api.SendMessage(ctx, tok, instagram.SendRequest{CommentID: "1801", Message: &instagram.MessageContent{Text: "Check your DMs"}})
	if err != nil {
		t.Fatal(err)
	}
	sent := e.fake.Sent()
	if len(sent) != 1 || sent[0].MID != res.MessageID || sent[0].Kind != "private_reply" || sent[0].RecipientID != customer {
		t.Fatalf("sent %+v", sent)
	}
	jsonEqual(t, `{"recipient":{"comment_id":"1801"},"message":{"text":"Check your DMs"}}`, sent[0].Body)
	_, err = e.api.SendMessage(ctx, tok, instagram.SendRequest{CommentID: "1801", Message: &instagram.MessageContent{Text: "again"}})
	if ie := e.checkErr(t, err); ie.Code != 10 {
		t.Errorf("second private reply: %v", err)
	}

	e.fake.AddComment(fake.Comment{ID: "1802", AccountUserID: userID, FromID: customer, At: e.clock.Now()})
	e.clock.Step(fake.PrivateReplyWindow + time.Minute)
	tok = e.issueWithScopes(t, fake.ScopeBasic, fake.ScopeManageMessages, fake.ScopeManageComments)
	_, err = e.api.SendMessage(ctx, tok, instagram.SendRequest{CommentID: "1802", Message: &instagram.MessageContent{Text: "late"}})
	if ie := e.checkErr(t, err); ie.Code != 10 {
		t.Errorf("late private reply: %v", err)
	}

	if err := e.api.DeleteComment(ctx, tok, "1801"); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.fake.CommentState("1801"); !st.Deleted {
		t.Error("not deleted")
	}
	if _, err := e.api.Comment(ctx, tok, "1801"); instagram.ClassOf(err) != instagram.ClassBadRequest {
		t.Errorf("deleted comment: %v", err)
	}
}

func TestMessengerProfileCalls(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fake.Options{})
	tok := e.token(t)
	want := instagram.MessengerProfile{
		IceBreakers: []instagram.IceBreakers{
			{Locale: "default", Questions: []instagram.IceBreaker{{Question: "Opening hours?", Payload: "HOURS"}}},
			{Locale: "de_DE", Questions: []instagram.IceBreaker{{Question: "Öffnungszeiten?", Payload: "HOURS"}}},
		},
		PersistentMenu: []instagram.PersistentMenu{{Locale: "default", Items: []instagram.MenuItem{
			{Type: "postback", Title: "Talk to us", Payload: "AGENT"}, {Type: "web_url", Title: "Shop", URL: "https://shop.example.com"},
		}}},
	}
	if err := e.api.SetMessengerProfile(ctx, tok, want); err != nil {
		t.Fatal(err)
	}
	p := e.fake.MessengerProfileOf(userID)
	jsonEqual(t, `[{"call_to_actions":[{"question":"Opening hours?","payload":"HOURS"}],"locale":"default"},
		{"call_to_actions":[{"question":"Öffnungszeiten?","payload":"HOURS"}],"locale":"de_DE"}]`, p.IceBreakers)
	jsonEqual(t, `[{"locale":"default","call_to_actions":[{"type":"postback","title":"Talk to us","payload":"AGENT"},
		{"type":"web_url","title":"Shop","url":"https://shop.example.com"}]}]`, p.PersistentMenu)
	got, err := e.api.MessengerProfile(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("profile (-want +got):\n%s", diff)
	}
	if err := e.api.SetMessengerProfile(ctx, tok, instagram.MessengerProfile{IceBreakers: []instagram.IceBreakers{
		{Locale: "de_DE", Questions: []instagram.IceBreaker{{Question: "?", Payload: "P"}}},
	}}); instagram.ClassOf(err) != instagram.ClassBadRequest {
		t.Errorf("ice breakers without the default locale: %v", err)
	}
	if err := e.api.DeleteMessengerProfile(ctx, tok, []string{instagram.ProfileFieldIceBreakers}); err != nil {
		t.Fatal(err)
	}
	got, err = e.api.MessengerProfile(ctx, tok)
	if err != nil || got.IceBreakers != nil || len(got.PersistentMenu) != 1 {
		t.Errorf("after delete: %+v, %v", got, err)
	}
}
