package webhookserver_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

var _ = Describe("the receiver's cache", func() {
	It("holds the published app credentials but no other Secret, not even a tenant's app Secret", func() {
		ctx := context.Background()
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cache-"}}
		Expect(k8s.Create(ctx, ns)).To(Succeed())
		published := publishApp(ctx, igv1.KindInstagramApp, ns.Name, "app", map[string]string{igv1.AppSecretKeyAppSecret: "s", igv1.AppSecretKeyVerifyToken: "v"})
		// Labelled as earlier versions labelled app Secrets where they live.
		tenantApp := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns.Name, Labels: map[string]string{igv1.LabelWatch: "true", igv1.LabelAppCredentials: "true"}},
			StringData: map[string]string{igv1.AppSecretKeyAppSecret: "s", igv1.AppSecretKeyVerifyToken: "v"},
		}
		token := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "support-instagram-token", Namespace: ns.Name, Labels: map[string]string{igv1.LabelWatch: "true", igv1.LabelChannel: "support"}},
			Type:       igv1.TokenSecretType,
			StringData: map[string]string{igv1.TokenSecretKeyAccessToken: "IGAA-not-for-the-receiver"},
		}
		// In the operator's namespace too, only the published type counts.
		other := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "labelled-opaque", Namespace: clusterNS, Labels: map[string]string{igv1.LabelAppCredentials: "true"}},
			StringData: map[string]string{"k": "v"},
		}
		// Of the published type, but in a tenant's namespace: a tenant may
		// create one; it must not reach the receiver.
		planted := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: ns.Name, Labels: map[string]string{igv1.LabelAppCredentials: "true"}},
			Type:       igv1.AppCredentialsSecretType,
			StringData: map[string]string{igv1.AppSecretKeyAppSecret: "s"},
		}
		for _, s := range []*corev1.Secret{tenantApp, token, other, planted} {
			Expect(k8s.Create(ctx, s)).To(Succeed())
		}

		Eventually(func() error { return mgrCache.Get(ctx, client.ObjectKeyFromObject(published), &corev1.Secret{}) }).Should(Succeed())
		Consistently(func(g Gomega) {
			for _, s := range []*corev1.Secret{tenantApp, token, other, planted} {
				err := mgrCache.Get(ctx, client.ObjectKeyFromObject(s), &corev1.Secret{})
				g.Expect(err).To(HaveOccurred(), "cached: %s/%s", s.Namespace, s.Name)
			}
		}).WithTimeout(time.Second).Should(Succeed())
	})
})
