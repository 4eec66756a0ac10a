package controllers

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/sink"
)

// The manager resolves a channel's spec.sink into status.sinkURI, the way a
// Knative source resolves its Destination: a ref is read for its
// status.address.url (the Addressable convention), a uri is taken as is or
// resolved against the ref's address. The receiver only reads the result
// from the channel, so it needs no permission on other kinds.

// The Addressable kinds a sink ref may name out of the box. Others need a
// ClusterRole that grants the manager get on them (docs/events.md).
// +kubebuilder:rbac:groups=eventing.knative.dev,resources=brokers;kafkasinks,verbs=get
// +kubebuilder:rbac:groups=messaging.knative.dev,resources=channels;inmemorychannels;kafkachannels,verbs=get
// +kubebuilder:rbac:groups=serving.knative.dev,resources=services;routes,verbs=get

// sinkRecheck is how often a sink given by ref is resolved again, so a
// changed address of the Addressable reaches status without a watch on
// every kind a ref may name.
const sinkRecheck = time.Minute

// resolvedSink is what status records of a sink.
type resolvedSink struct {
	uri, caCerts, audience string
}

// reconcileSink resolves spec.sink (and its dead-letter sink) into status
// and the SinkProvided condition. It never stops the channel's other
// steps: a channel whose sink does not resolve still keeps its token and
// subscription; the receiver answers its deliveries 5xx until the sink
// resolves, so nothing is lost meanwhile. The returned halt, if any, is the
// channel's Ready reason once the other steps succeed.
func (r *InstagramChannelReconciler) reconcileSink(ctx context.Context, run *channelRun) (*halt, error) {
	ch := run.ch
	sp := ch.Spec.Sink
	if sp == nil {
		ch.Status.SinkURI, ch.Status.Sink = "", nil
		meta.RemoveStatusCondition(&ch.Status.Conditions, igv1.ConditionSinkProvided)
		sink.Forget(sink.Channel{Namespace: ch.Namespace, Name: ch.Name})
		return nil, nil
	}
	// Every series starts at zero, so rate() and the alerts work from the
	// first scrape.
	for _, result := range []string{sink.ResultDelivered, sink.ResultFailed, sink.ResultRetried, sink.ResultDeadLettered, sink.ResultLost} {
		sink.EventsTotal.WithLabelValues(ch.Namespace, ch.Name, result)
	}
	if sp.Ref != nil {
		run.wake(run.now.Add(sinkRecheck))
	}
	main, reason, msg, err := r.resolveDestination(ctx, ch.Namespace, &sp.Destination)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		ch.Status.SinkURI, ch.Status.Sink = "", nil
		r.setCondition(run, igv1.ConditionSinkProvided, metav1.ConditionFalse, reason, msg)
		return sinkHalt(run, reason, msg), nil
	}
	ch.Status.SinkURI = main.uri
	ch.Status.Sink = &igv1.SinkStatus{URI: main.uri, CACerts: main.caCerts, Audience: main.audience}
	// A dead-letter sink that does not resolve leaves the sink in use (it
	// only matters for refused outgoing outcomes, which wait for it), but
	// the condition says so.
	if sp.Delivery != nil && sp.Delivery.DeadLetterSink != nil {
		dl, dlReason, dlMsg, err := r.resolveDestination(ctx, ch.Namespace, sp.Delivery.DeadLetterSink)
		if err != nil {
			return nil, err
		}
		if sp.Delivery.DeadLetterSink.Ref != nil {
			run.wake(run.now.Add(sinkRecheck))
		}
		if dlReason != "" {
			msg = "dead-letter sink: " + dlMsg
			r.setCondition(run, igv1.ConditionSinkProvided, metav1.ConditionFalse, dlReason, msg)
			return sinkHalt(run, dlReason, msg), nil
		}
		ch.Status.Sink.DeadLetterSinkURI, ch.Status.Sink.DeadLetterSinkCACerts = dl.uri, dl.caCerts
	}
	r.setCondition(run, igv1.ConditionSinkProvided, metav1.ConditionTrue, igv1.ReasonSinkResolved,
		"events go to "+sink.RedactURI(main.uri))
	return nil, nil
}

// sinkHalt is the channel's Ready reason for a sink that does not resolve:
// a human must fix an invalid one; the others are checked again.
func sinkHalt(run *channelRun, reason, msg string) *halt {
	h := &halt{reason: reason, message: msg}
	if reason == igv1.ReasonSinkInvalid {
		h.stalled = true
	} else {
		h.retryAt = run.now.Add(sinkRecheck)
	}
	return h
}

// resolveDestination resolves d; a non-empty reason says why it does not
// resolve (err is for API server failures only).
func (r *InstagramChannelReconciler) resolveDestination(ctx context.Context, namespace string, d *igv1.Destination) (out resolvedSink, reason, msg string, err error) {
	out.caCerts, out.audience = d.CACerts, d.Audience
	if d.CACerts != "" && !validPEM(d.CACerts) {
		return out, igv1.ReasonSinkInvalid, "caCerts hold no valid PEM certificate", nil
	}
	if d.Ref == nil {
		if why := checkSinkURL(d.URI); why != "" {
			return out, igv1.ReasonSinkInvalid, why, nil
		}
		out.uri = d.URI
		return out, "", "", nil
	}
	ref := d.Ref
	if ref.Namespace != "" && ref.Namespace != namespace {
		return out, igv1.ReasonSinkInvalid, fmt.Sprintf("ref names namespace %q; a sink must be in the channel's namespace", ref.Namespace), nil
	}
	base, reason, msg, err := r.addressOf(ctx, namespace, ref)
	if err != nil || reason != "" {
		return out, reason, msg, err
	}
	if d.URI != "" {
		// Knative: a uri beside a ref is relative to the ref's address.
		b, perr := url.Parse(base)
		rel, rerr := url.Parse(d.URI)
		if perr != nil || rerr != nil {
			return out, igv1.ReasonSinkInvalid, "uri cannot be resolved against the ref's address", nil
		}
		base = b.ResolveReference(rel).String()
	}
	if why := checkSinkURL(base); why != "" {
		return out, igv1.ReasonSinkNotAddressable, fmt.Sprintf("%s %s: %s", ref.Kind, ref.Name, why), nil
	}
	out.uri = base
	return out, "", "", nil
}

// addressOf reads the Addressable's status.address.url. A core Service is
// addressed by its cluster DNS name, as Knative does, without reading it.
func (r *InstagramChannelReconciler) addressOf(ctx context.Context, namespace string, ref *igv1.KReference) (uri, reason, msg string, err error) {
	gv, perr := schema.ParseGroupVersion(ref.APIVersion)
	if perr != nil {
		return "", igv1.ReasonSinkInvalid, fmt.Sprintf("ref apiVersion %q: %v", ref.APIVersion, perr), nil
	}
	if gv.Group == "" && ref.Kind == "Service" {
		return fmt.Sprintf("http://%s.%s.svc.cluster.local/", ref.Name, namespace), "", "", nil
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gv.WithKind(ref.Kind))
	// Uncached: a watch per kind a ref may name would need list and watch
	// on all of them.
	err = r.APIReader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, u)
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return "", igv1.ReasonSinkNotFound, fmt.Sprintf("%s %s %s not found", ref.APIVersion, ref.Kind, ref.Name), nil
	case apierrors.IsForbidden(err):
		return "", igv1.ReasonSinkNotFound, fmt.Sprintf("the manager may not read %s %s (grant get on it, see docs/events.md)", ref.Kind, ref.Name), nil
	case err != nil:
		return "", "", "", fmt.Errorf("get sink %s %s: %w", ref.Kind, ref.Name, err)
	}
	addr, found, _ := unstructured.NestedString(u.Object, "status", "address", "url")
	if !found || addr == "" {
		return "", igv1.ReasonSinkNotAddressable, fmt.Sprintf("%s %s has no status.address.url (not an Addressable, or not ready)", ref.Kind, ref.Name), nil
	}
	return addr, "", "", nil
}

// checkSinkURL says what is wrong with a sink URL, or "".
func checkSinkURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "no uri"
	case err != nil:
		return "uri does not parse"
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("uri scheme %q: only http and https are supported", u.Scheme)
	case u.Host == "":
		return "uri has no host"
	case strings.ContainsAny(u.Host, " \t"):
		return "uri host is invalid"
	}
	return ""
}

func validPEM(s string) bool {
	rest := []byte(s)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return false
		}
		n++
	}
	return n > 0
}
