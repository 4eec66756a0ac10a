#!/usr/bin/env bash
# Runs the Go benchmarks, then the load scenarios (hack/bench) against a local
# control plane, the fake Instagram and the real binaries. Figures are
# printed and written to bin/bench/ (results.json, results.md, go-bench.txt).
# `make bench` builds the control plane and the binaries first.
#
# Arguments are passed to hack/bench, e.g.
#   hack/bench.sh -channels 200 -messages 20000 -scenarios channels,messages
# GO_BENCH=0 skips the Go benchmarks.
set -euo pipefail

cd "$(dirname "$0")/.."
out=bin/bench
mkdir -p "$out"
export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$PWD/bin/k8s}"

for bin in bin/manager bin/webhookserver "$KUBEBUILDER_ASSETS/kube-apiserver" "$KUBEBUILDER_ASSETS/etcd"; do
	if [[ ! -x "$bin" ]]; then
		echo "$bin is missing: run make envtest build (make bench does)" >&2
		exit 1
	fi
done

go_bench_args=()
if [[ "${GO_BENCH:-1}" != "0" ]]; then
	echo "== Go benchmarks"
	# -run '^$' skips the tests (and their control planes); only benchmarks run.
	go test -run '^$' -bench 'BenchmarkVerifyAndParse|BenchmarkForgedPost' -benchmem ./webhookserver/ | tee "$out/go-bench.txt"
	go test -run '^$' -bench 'BenchmarkSendThroughput' -benchmem ./controllers/ | tee -a "$out/go-bench.txt"
	go_bench_args=(-go-bench "$out/go-bench.txt")
fi

echo "== Load scenarios"
go run ./hack/bench -out "$out" "${go_bench_args[@]}" "$@"
