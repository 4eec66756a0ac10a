package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestResolve(t *testing.T) {
	goVersion := runtime.Version()
	cases := map[string]struct {
		version, revision string
		buildInfo         *debug.BuildInfo
		want              Info
	}{
		"stamped by the linker wins": {
			version: "v1.2.3", revision: "abc123",
			buildInfo: &debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "fff"}}},
			want:      Info{Version: "v1.2.3", Revision: "abc123", GoVersion: goVersion},
		},
		"go install module@version": {
			buildInfo: &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "fff"}}},
			want:      Info{Version: "v0.4.0", Revision: "fff", GoVersion: goVersion},
		},
		"plain go build in a checkout": {
			buildInfo: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			want:      Info{Version: "devel", Revision: "unknown", GoVersion: goVersion},
		},
		"no build information": {
			want: Info{Version: "devel", Revision: "unknown", GoVersion: goVersion},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := resolve(tc.version, tc.revision, func() (*debug.BuildInfo, bool) { return tc.buildInfo, tc.buildInfo != nil })
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("resolve (-want +got):\n%s", diff)
			}
		})
	}
}

func TestString(t *testing.T) {
	got := Info{Version: "v0.1.0", Revision: "81c54cd", GoVersion: "go1.26.8"}.String("manager")
	if want := "manager v0.1.0 (revision 81c54cd, go1.26.8)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Info{Version: "v0.1.0", Revision: "81c54cd", GoVersion: "go1.26.8"}.Collector())
	want := `
# HELP instagram_operator_build_info Build information of the instagram-operator binary; always 1.
# TYPE instagram_operator_build_info gauge
instagram_operator_build_info{goversion="go1.26.8",revision="81c54cd",version="v0.1.0"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), MetricName); err != nil {
		t.Error(err)
	}
}
