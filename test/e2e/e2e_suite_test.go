// Package e2e runs the real bin/manager and bin/webhookserver against a
// local control plane and the fake Instagram, the way a cluster would run
// them: every step goes through the binaries' flags, HTTP and the API server.
package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/leadchat/instagram-operator/internal/localenv"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

var (
	env       *localenv.Env
	k8sClient client.Client
)

func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end suite needs a control plane and the binaries")
	}
	for _, bin := range []string{"manager", "webhookserver"} {
		if _, err := os.Stat(filepath.Join(testenv.RepoRoot(), "bin", bin)); err != nil {
			t.Fatalf("bin/%s is missing: run make build (make test does)", bin)
		}
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "E2E Suite")
}

var _ = BeforeSuite(func() {
	var err error
	env, err = localenv.Start(context.Background(), localenv.Options{
		Dir: GinkgoT().TempDir(),
		// Short resyncs so drift repair shows within the test.
		// A short Instagram timeout keeps the send lease (timeout + 30 s
		// outcome write + 15 s skew margin) within the tests' patience.
		ManagerArgs:  []string{"--resync-interval=5s", "--zap-log-level=debug", "--instagram-timeout=5s"},
		ReceiverArgs: []string{"--zap-log-level=debug"},
	})
	Expect(err).NotTo(HaveOccurred())
	k8sClient = env.Client
})

var _ = AfterSuite(func() {
	if env == nil {
		return
	}
	By("both binaries exit cleanly on SIGTERM")
	Expect(env.Manager.Stop()).To(BeTrue(), "manager log:\n%s", env.Manager.Tail(30))
	Expect(env.Receiver.Stop()).To(BeTrue(), "receiver log:\n%s", env.Receiver.Tail(30))
	env.Stop()
})

// dumpOnFailure prints the binaries' logs when a spec failed.
var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() && env != nil {
		GinkgoWriter.Printf("manager log:\n%s\nreceiver log:\n%s\n", env.Manager.Tail(60), env.Receiver.Tail(60))
	}
})
