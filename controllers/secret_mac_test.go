package controllers

import (
	"bytes"
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
)

func TestInitialSecretHashIsKeyed(t *testing.T) {
	ch := &igv1.InstagramChannel{ObjectMeta: metav1.ObjectMeta{UID: "4c3b0a52-0000-4000-8000-000000000001"}}
	r1 := &InstagramChannelReconciler{Options: ChannelOptions{HashKey: bytes.Repeat([]byte{1}, 32)}}
	r2 := &InstagramChannelReconciler{Options: ChannelOptions{HashKey: bytes.Repeat([]byte{2}, 32)}}

	published := r1.initialSecretHash(ch, "password", "hunter2", "")
	if !strings.HasPrefix(published, "hmac-sha256:") {
		t.Fatalf("fingerprint %q is not a keyed MAC", published)
	}
	if published != r1.initialSecretHash(ch, "password", "hunter2", "") {
		t.Fatal("the fingerprint is not stable under one key")
	}
	if published == r2.initialSecretHash(ch, "password", "hunter2", "") {
		t.Fatal("the fingerprint does not depend on the key")
	}
	// What a user who may read the channel but not the Secret can compute
	// from public inputs: a right guess must not match the status.
	if guess := legacyInitialSecretHash(ch, "password", "hunter2", ""); guess == published {
		t.Fatal("an offline guess over public inputs matches the status")
	}
	if published == r1.initialSecretHash(ch, "password", "hunter3", "") {
		t.Fatal("another value, same fingerprint")
	}
}

func TestInitialSecretHashMigratesThePlainHash(t *testing.T) {
	r := &InstagramChannelReconciler{Options: ChannelOptions{HashKey: bytes.Repeat([]byte{1}, 32)}}
	ch := &igv1.InstagramChannel{ObjectMeta: metav1.ObjectMeta{UID: "u1"}}
	ch.Status.Token = &igv1.TokenStatus{InitialSecretHash: legacyInitialSecretHash(ch, "accessToken", "IGAA-1", "")}

	got := r.initialSecretHash(ch, "accessToken", "IGAA-1", "")
	if ch.Status.Token.InitialSecretHash != got {
		t.Fatalf("the plain hash of the same content was not migrated: status %q, fingerprint %q", ch.Status.Token.InitialSecretHash, got)
	}

	// A plain hash of other content is a change, and stays one.
	old := legacyInitialSecretHash(ch, "accessToken", "IGAA-old", "")
	ch.Status.Token.InitialSecretHash = old
	if r.initialSecretHash(ch, "accessToken", "IGAA-1", ""); ch.Status.Token.InitialSecretHash != old {
		t.Fatal("a changed Secret was migrated as if unchanged")
	}
}

func TestLoadOrCreateHashKey(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	ctx := context.Background()
	k1, err := LoadOrCreateHashKey(ctx, c, "op")
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("key of %d bytes", len(k1))
	}
	k2, err := LoadOrCreateHashKey(ctx, c, "op")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("a restart gets another key: every fingerprint would look changed")
	}

	other := fake.NewClientBuilder().WithScheme(scheme).WithObjects(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "op", Name: igv1.HashKeySecretName},
		Data:       map[string][]byte{igv1.HashKeySecretKey: bytes.Repeat([]byte{9}, 32)},
	}).Build()
	if _, err := LoadOrCreateHashKey(ctx, other, "op"); err == nil {
		t.Fatal("an Opaque Secret of that name was taken as the key")
	}
}
