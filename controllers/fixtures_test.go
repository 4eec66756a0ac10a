package controllers

import (
	"context"
	"net/http/httptest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

// newTestNamespace creates a namespace of its own for one spec.
func newTestNamespace(ctx context.Context, prefix string) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// newFakeInstagram starts the fake Instagram on a loopback port with a fake
// clock near real time: the API server stamps creation and deletion times
// from its own clock, and the controllers compare them with theirs.
func newFakeInstagram() (*clocktesting.FakeClock, *fake.Server, *httptest.Server) {
	clk := clocktesting.NewFakeClock(time.Now().UTC().Truncate(time.Second))
	ig := fake.New(fake.Options{Clock: clk})
	return clk, ig, httptest.NewServer(ig)
}
