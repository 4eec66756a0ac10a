package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/leadchat/instagram-operator/internal/localenv"
	"github.com/leadchat/instagram-operator/internal/testenv"
)

// make build stamps the release of the VERSION file into both binaries.
var _ = Describe("Release stamp", func() {
	var version string
	BeforeEach(func() {
		data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "VERSION"))
		Expect(err).NotTo(HaveOccurred())
		version = strings.TrimSpace(string(data))
	})

	It("both binaries print it with --version", func() {
		for _, name := range []string{"manager", "webhookserver"} {
			out, err := exec.Command(filepath.Join(testenv.RepoRoot(), "bin", name), "--version").Output()
			Expect(err).NotTo(HaveOccurred(), name)
			Expect(string(out)).To(MatchRegexp(`^%s %s \(revision [0-9a-f]+, go[0-9.]+\)\n$`, name, regexp.QuoteMeta(version)))
		}
	})

	It("both binaries export it as instagram_operator_build_info", func() {
		for name, p := range map[string]*localenv.Process{"manager": env.Manager, "webhookserver": env.Receiver} {
			text, err := p.Scrape()
			Expect(err).NotTo(HaveOccurred(), name)
			Expect(text).To(MatchRegexp(`(?m)^instagram_operator_build_info\{goversion="go[0-9.]+",revision="[0-9a-f]+",version="%s"\} 1$`, regexp.QuoteMeta(version)), name)
		}
	})
})
