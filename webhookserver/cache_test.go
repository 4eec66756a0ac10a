package webhookserver_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

var _ = Describe("the receiver's cache", func() {
	It("holds app Secrets but never a channel's token Secret", func() {
		ctx := context.Background()
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cache-"}}
		Expect(k8s.Create(ctx, ns)).To(Succeed())
		app := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns.Name, Labels: map[string]string{igv1.LabelWatch: "true", igv1.LabelAppCredentials: "true"}},
			StringData: map[string]string{igv1.AppSecretKeyAppSecret: "s", igv1.AppSecretKeyVerifyToken: "v"},
		}
		token := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "support-instagram-token", Namespace: ns.Name, Labels: map[string]string{igv1.LabelWatch: "true", igv1.LabelChannel: "support"}},
			Type:       igv1.TokenSecretType,
			StringData: map[string]string{igv1.TokenSecretKeyAccessToken: "IGAA-not-for-the-receiver"},
		}
		Expect(k8s.Create(ctx, app)).To(Succeed())
		Expect(k8s.Create(ctx, token)).To(Succeed())

		Eventually(func() error { return mgrCache.Get(ctx, client.ObjectKeyFromObject(app), &corev1.Secret{}) }).Should(Succeed())
		Consistently(func() bool {
			return apierrors.IsNotFound(mgrCache.Get(ctx, client.ObjectKeyFromObject(token), &corev1.Secret{}))
		}).WithTimeout(time.Second).Should(BeTrue())
	})
})
