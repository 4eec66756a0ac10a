package helm_test

import (
	"testing"
)

func TestRenderDefaults(t *testing.T) {
	r := mustRender(t, nil)
	for _, o := range r.objects {
		t.Log(key(o))
	}
	t.Log(r.notes)
}
