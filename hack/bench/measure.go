package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	igv1 "github.com/leadchat/instagram-operator/api/v1alpha1"
	"github.com/leadchat/instagram-operator/internal/instagram/fake"
)

// sample is one Prometheus text-format sample.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics reads the Prometheus text format: enough for counters and
// gauges, which is all the bench reads.
func parseMetrics(text string) []sample {
	var out []sample
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.name = line[:i]
			end, ok := parseLabels(line[i+1:], s.labels)
			if !ok {
				continue
			}
			rest = line[i+1+end:]
		} else if i >= 0 {
			s.name, rest = line[:i], line[i:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// parseLabels reads `k="v",k2="v2"}` and returns the index after the brace.
func parseLabels(s string, into map[string]string) (int, bool) {
	i := 0
	for i < len(s) {
		if s[i] == '}' {
			return i + 1, true
		}
		if s[i] == ',' || s[i] == ' ' {
			i++
			continue
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 || i+eq+1 >= len(s) || s[i+eq+1] != '"' {
			return 0, false
		}
		key := s[i : i+eq]
		i += eq + 2
		var b strings.Builder
		for i < len(s) && s[i] != '"' {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[i])
				}
			} else {
				b.WriteByte(s[i])
			}
			i++
		}
		into[key] = b.String()
		i++
	}
	return 0, false
}

// sum adds the samples of name whose labels include match.
func sum(samples []sample, name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range samples {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// memory is a process's memory as the kernel and the Go runtime see it.
type memory struct {
	RSSBytes       float64 `json:"rssBytes"`
	PeakRSSBytes   float64 `json:"peakRSSBytes"`
	HeapInuseBytes float64 `json:"heapInuseBytes"`
}

// readMemory reads VmRSS and VmHWM of pid, and the Go heap from metrics.
func readMemory(p proc) (memory, error) {
	var m memory
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		return m, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			m.RSSBytes = kb * 1024
		case "VmHWM":
			m.PeakRSSBytes = kb * 1024
		}
	}
	if text, err := p.Scrape(); err == nil {
		m.HeapInuseBytes = sum(parseMetrics(text), "go_memstats_heap_inuse_bytes", nil)
	}
	return m, nil
}

// waitSettled waits until the manager has reconciled at least
// minChannelReconciles channels (so its caches synced and the start-up
// pass ran) and its work queues stayed empty for three polls in a row.
func waitSettled(ctx context.Context, p proc, minChannelReconciles int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	quiet := 0
	var last string
	for time.Since(start) < timeout {
		if err := sleepCtx(ctx, time.Second); err != nil {
			return 0, err
		}
		text, err := p.Scrape()
		if err != nil {
			last = err.Error()
			quiet = 0
			continue
		}
		s := parseMetrics(text)
		reconciled := sum(s, "controller_runtime_reconcile_total", map[string]string{"controller": "instagramchannel"})
		depth := sum(s, "workqueue_depth", nil)
		active := sum(s, "controller_runtime_active_workers", nil)
		last = fmt.Sprintf("channel reconciles %.0f/%d, queue depth %.0f, active workers %.0f", reconciled, minChannelReconciles, depth, active)
		if reconciled >= float64(minChannelReconciles) && depth == 0 && active == 0 {
			quiet++
			if quiet >= 3 {
				return time.Since(start), nil
			}
		} else {
			quiet = 0
		}
	}
	return 0, fmt.Errorf("manager not settled after %s: %s", timeout, last)
}

// writeCounts are apiserver_request_total counts of writes, keyed by
// "VERB resource[/subresource]".
type writeCounts map[string]float64

// writeVerbs are the verb label values of writes: the API server reports
// create and update as the HTTP verbs POST and PUT.
var writeVerbs = []string{"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY", "CREATE", "UPDATE"}

// apiWrites scrapes the API server's own request counters: every write any
// client made, whoever it was.
func apiWrites(ctx context.Context, cs kubernetes.Interface) (writeCounts, error) {
	b, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("scrape kube-apiserver metrics: %w", err)
	}
	out := writeCounts{}
	for _, s := range parseMetrics(string(b)) {
		if s.name != "apiserver_request_total" || !slices.Contains(writeVerbs, s.labels["verb"]) {
			continue
		}
		key := s.labels["verb"] + " " + s.labels["resource"]
		if sub := s.labels["subresource"]; sub != "" {
			key += "/" + sub
		}
		out[key] += s.value
	}
	return out, nil
}

// ourResources are the resources the operator writes; the API server's own
// bookkeeping (leases, its identity) is reported apart.
var ourResources = []string{"instagramchannels", "instagramapps", "clusterinstagramapps", "instagrammessages", "secrets", "events"}

// diff returns after-before, without zero entries, split into the
// operator's resources and the rest.
func (after writeCounts) diff(before writeCounts) (ours, other writeCounts, oursTotal float64) {
	ours, other = writeCounts{}, writeCounts{}
	for k, v := range after {
		d := v - before[k]
		if d == 0 {
			continue
		}
		_, res, _ := strings.Cut(k, " ")
		res, _, _ = strings.Cut(res, "/")
		if slices.Contains(ourResources, res) {
			ours[k] = d
			oursTotal += d
		} else {
			other[k] = d
		}
	}
	return ours, other, oursTotal
}

// versions maps "kind ns/name" to resourceVersion for the channels, apps
// and Secrets: a changed resourceVersion is a write, whoever made it.
type versions map[string]string

func snapshotVersions(ctx context.Context, c client.Reader) (versions, error) {
	v := versions{}
	var chs igv1.InstagramChannelList
	if err := c.List(ctx, &chs); err != nil {
		return nil, err
	}
	for _, o := range chs.Items {
		v["InstagramChannel "+o.Namespace+"/"+o.Name] = o.ResourceVersion
	}
	var apps igv1.ClusterInstagramAppList
	if err := c.List(ctx, &apps); err != nil {
		return nil, err
	}
	for _, o := range apps.Items {
		v["ClusterInstagramApp "+o.Name] = o.ResourceVersion
	}
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets); err != nil {
		return nil, err
	}
	for _, o := range secrets.Items {
		v["Secret "+o.Namespace+"/"+o.Name] = o.ResourceVersion
	}
	return v, nil
}

// changed counts, per kind, the objects written between two snapshots
// (changed, created or deleted).
func (after versions) changed(before versions) map[string]int {
	out := map[string]int{}
	for k, rv := range after {
		if before[k] != rv {
			kind, _, _ := strings.Cut(k, " ")
			out[kind]++
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			kind, _, _ := strings.Cut(k, " ")
			out[kind]++
		}
	}
	return out
}

// callsByEndpoint counts the fake's calls by endpoint, and apart the
// non-2xx answers by "endpoint status".
func callsByEndpoint(calls []fake.Call) (byEndpoint, failed map[string]int) {
	byEndpoint, failed = map[string]int{}, map[string]int{}
	for _, c := range calls {
		byEndpoint[c.Endpoint]++
		if c.Status < 200 || c.Status > 299 {
			failed[fmt.Sprintf("%s %d", c.Endpoint, c.Status)]++
		}
	}
	return byEndpoint, failed
}

// percentile is the p-th percentile (0..100) of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func sortDurations(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }

// fastConfig is cfg without client-side throttling, as the binaries run
// (controller-runtime's GetConfig disables it too).
func fastConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.QPS = -1
	c.Burst = 0
	return c
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func mib(b float64) float64 { return b / (1024 * 1024) }

// listStats is what the API server spent answering LISTs of one resource.
type listStats struct {
	Requests float64 `json:"requests"`
	Seconds  float64 `json:"seconds"`
}

// apiLists reads the API server's request duration histogram for LISTs of
// resource: how many it answered and the time it spent on them.
func apiLists(ctx context.Context, cs kubernetes.Interface, resource string) (listStats, error) {
	b, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return listStats{}, fmt.Errorf("scrape kube-apiserver metrics: %w", err)
	}
	s := parseMetrics(string(b))
	match := map[string]string{"verb": "LIST", "resource": resource}
	return listStats{
		Requests: sum(s, "apiserver_request_duration_seconds_count", match),
		Seconds:  sum(s, "apiserver_request_duration_seconds_sum", match),
	}, nil
}

func (a listStats) minus(b listStats) listStats {
	return listStats{Requests: a.Requests - b.Requests, Seconds: a.Seconds - b.Seconds}
}
