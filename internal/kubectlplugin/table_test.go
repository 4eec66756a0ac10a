package kubectlplugin

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRelative(t *testing.T) {
	now := time.Date(2026, time.December, 2, 1, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		at   time.Time
		want string
	}{
		"seconds ago":  {now.Add(-42 * time.Second), "42s ago"},
		"minutes ago":  {now.Add(-3*time.Minute - 10*time.Second), "3m ago"},
		"hours ahead":  {now.Add(47 * time.Hour), "in 47h"},
		"days ahead":   {now.Add(59*24*time.Hour + time.Hour), "in 59d"},
		"two days ago": {now.Add(-48 * time.Hour), "2d ago"},
		"exactly now":  {now, "in 0s"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := relative(tc.at, now); got != tc.want {
				t.Errorf("relative = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTableAlignsColouredCells checks that colour codes do not count
// towards column widths: the coloured table is the plain one with codes
// around the cells.
func TestTableAlignsColouredCells(t *testing.T) {
	rows := [][]cell{
		{c("support"), styled("Ready", green), c("in 59d")},
		{c("sales-eu"), styled("AwaitingAuthorization", yellow), c("-")},
	}
	var plainOut, colourOut bytes.Buffer
	printer{w: &plainOut}.table("  ", []string{"CHANNEL", "READY", "TOKEN"}, rows)
	printer{w: &colourOut, color: true}.table("  ", []string{"CHANNEL", "READY", "TOKEN"}, rows)
	want := "" +
		"  CHANNEL    READY                   TOKEN\n" +
		"  support    Ready                   in 59d\n" +
		"  sales-eu   AwaitingAuthorization   -\n"
	if diff := cmp.Diff(want, plainOut.String()); diff != "" {
		t.Errorf("plain table (-want +got):\n%s", diff)
	}
	stripped := ansiCodes.ReplaceAllString(colourOut.String(), "")
	if diff := cmp.Diff(want, stripped); diff != "" {
		t.Errorf("coloured table without its codes (-want +got):\n%s", diff)
	}
	if stripped == colourOut.String() {
		t.Error("the coloured table has no colour codes")
	}
}

var ansiCodes = regexp.MustCompile("\x1b\\[[0-9;]*m")
