package sink

import (
	"os"
	"strings"
	"testing"
)

// TestCatalogueDocumented: every event type has its entry and example in
// docs/events.md.
func TestCatalogueDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{
		TypeMessageReceived, TypeMessageEcho, TypeMessageEdited, TypeMessageDeleted, TypeMessageRead,
		TypeReactionAdded, TypeReactionRemoved, TypePostback, TypeReferral, TypeOptin, TypeHandover,
		TypeComment, TypeLiveComment, TypeMention, TypeMessageSent, TypeMessageFailed,
	} {
		if !strings.Contains(string(doc), "### "+typ+"\n") || !strings.Contains(string(doc), "Ce-Type: "+typ+"\n") {
			t.Errorf("docs/events.md has no entry with an example for %s", typ)
		}
	}
}
