package argocd

import (
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// TestKstatus runs kstatus over the same objects as the health checks, so
// the conditions the operator writes also satisfy tools that wait with
// kstatus (kubectl wait --for=condition, Flux health checks, kpt, cli-utils
// appliers).
func TestKstatus(t *testing.T) {
	tests := map[string]struct {
		file string
		// deleting sets metadata.deletionTimestamp (the object waits for
		// its finalizer).
		deleting bool
		want     status.Status
	}{
		// kstatus cannot tell an object nobody has reconciled yet from one
		// that needs no reconciling: with neither status.observedGeneration
		// nor conditions it answers Current (documented in
		// status.Compute). The first reconcile writes both, right away.
		"channel new":                    {file: "InstagramChannel/testdata/new.yaml", want: status.CurrentStatus},
		"channel spec not yet observed":  {file: "InstagramChannel/testdata/old_generation.yaml", want: status.InProgressStatus},
		"channel waiting for its app":    {file: "InstagramChannel/testdata/app_not_found.yaml", want: status.InProgressStatus},
		"channel refresh failing":        {file: "InstagramChannel/testdata/refresh_failing.yaml", want: status.InProgressStatus},
		"channel ready":                  {file: "InstagramChannel/testdata/ready.yaml", want: status.CurrentStatus},
		"channel awaiting authorization": {file: "InstagramChannel/testdata/awaiting_authorization.yaml", want: status.FailedStatus},
		"channel token invalid":          {file: "InstagramChannel/testdata/token_invalid.yaml", want: status.FailedStatus},
		"channel duplicate account":      {file: "InstagramChannel/testdata/duplicate_account.yaml", want: status.FailedStatus},
		// Ready=False without Reconciling or Stalled: kstatus falls back
		// to Ready and reports it as not done.
		"channel suspended": {file: "InstagramChannel/testdata/suspended.yaml", want: status.InProgressStatus},
		"channel deleting":  {file: "InstagramChannel/testdata/ready.yaml", deleting: true, want: status.TerminatingStatus},

		"app new":                   {file: "InstagramApp/testdata/new.yaml", want: status.CurrentStatus},
		"app spec not yet observed": {file: "InstagramApp/testdata/old_generation.yaml", want: status.InProgressStatus},
		"app reconciling":           {file: "InstagramApp/testdata/reconciling.yaml", want: status.InProgressStatus},
		"app ready":                 {file: "InstagramApp/testdata/ready.yaml", want: status.CurrentStatus},
		"app secret missing":        {file: "InstagramApp/testdata/secret_missing.yaml", want: status.FailedStatus},
		"app secret key missing":    {file: "InstagramApp/testdata/secret_key_missing.yaml", want: status.FailedStatus},
		"app deleting":              {file: "InstagramApp/testdata/ready.yaml", deleting: true, want: status.TerminatingStatus},

		"cluster app new":                   {file: "ClusterInstagramApp/testdata/new.yaml", want: status.CurrentStatus},
		"cluster app spec not yet observed": {file: "ClusterInstagramApp/testdata/old_generation.yaml", want: status.InProgressStatus},
		"cluster app reconciling":           {file: "ClusterInstagramApp/testdata/reconciling.yaml", want: status.InProgressStatus},
		"cluster app ready":                 {file: "ClusterInstagramApp/testdata/ready.yaml", want: status.CurrentStatus},
		"cluster app secret missing":        {file: "ClusterInstagramApp/testdata/secret_missing.yaml", want: status.FailedStatus},
		"cluster app deleting":              {file: "ClusterInstagramApp/testdata/ready.yaml", deleting: true, want: status.TerminatingStatus},

		"message new":      {file: "InstagramMessage/testdata/new.yaml", want: status.CurrentStatus},
		"message pending":  {file: "InstagramMessage/testdata/pending.yaml", want: status.InProgressStatus},
		"message sending":  {file: "InstagramMessage/testdata/sending.yaml", want: status.InProgressStatus},
		"message sent":     {file: "InstagramMessage/testdata/sent.yaml", want: status.CurrentStatus},
		"message read":     {file: "InstagramMessage/testdata/read.yaml", want: status.CurrentStatus},
		"message failed":   {file: "InstagramMessage/testdata/failed.yaml", want: status.FailedStatus},
		"message received": {file: "InstagramMessage/testdata/received.yaml", want: status.CurrentStatus},
		"message deleted":  {file: "InstagramMessage/testdata/deleted.yaml", want: status.CurrentStatus},
		"message deleting": {file: "InstagramMessage/testdata/sent.yaml", deleting: true, want: status.TerminatingStatus},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			u := readUnstructured(t, filepath.Join(customizationsDir, tc.file))
			if tc.deleting {
				now := metav1.Now()
				u.SetDeletionTimestamp(&now)
			}
			res, err := status.Compute(u)
			if err != nil {
				t.Fatalf("kstatus: %v", err)
			}
			if res.Status != tc.want {
				t.Errorf("kstatus = %s (%s), want %s", res.Status, res.Message, tc.want)
			}
		})
	}
}

// readUnstructured decodes like the API machinery does, with int64
// numbers, which kstatus requires for generations.
func readUnstructured(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return u
}
