# instagram-operator. Two commands matter to a new user:
#   make demo   local control plane + fake Instagram + manager + receiver
#   make test   everything CI runs
# Nothing here downloads a binary: tools are Go modules (go.mod `tool`
# directives and the hack/tools module), built on first use into bin/.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

BIN         ?= $(CURDIR)/bin
K8S_BIN     := $(BIN)/k8s
ENVTEST_BINS := $(K8S_BIN)/kube-apiserver $(K8S_BIN)/etcd $(K8S_BIN)/kubectl
KUBECTL     := $(K8S_BIN)/kubectl
CONTROLLER_GEN := go tool controller-gen
# The release: VERSION is the one place it is written. Binaries, the image
# tag, config/ and the chart all carry it (test/helm checks they agree).
VERSION     ?= $(shell cat $(CURDIR)/VERSION)
REVISION    ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
VERSION_PKG := github.com/leadchat/instagram-operator/internal/version
LDFLAGS     := -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).revision=$(REVISION)
# Static and -trimpath like the image (make image, hack/image), so the image
# test reuses this build's compile cache and the e2e suite runs what ships.
GO_BUILD_STATIC := CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)"
IMG_REPO    ?= ghcr.io/leadchat/instagram-operator
IMG         ?= $(IMG_REPO):$(VERSION)
CHART       := charts/instagram-operator
GO_TEST_FLAGS ?=
export KUBEBUILDER_ASSETS := $(K8S_BIN)

.PHONY: all
all: build

##@ Development

.PHONY: generate
generate: ## Write deepcopy functions.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: ## Write CRDs and RBAC roles.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths=./controllers/... output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) rbac:roleName=webhookserver-role paths=./webhookserver/... output:rbac:artifacts:config=config/rbac/webhookserver
	go run ./hack/apidocs -crd-dir config/crd/bases -out docs/api-reference.md
	$(MAKE) -s chart

.PHONY: chart
chart: ## Copy the CRDs, RBAC roles, admission policies and alerts of config/ into the Helm chart.
	rm -f $(CHART)/crds/*.yaml $(CHART)/files/*.yaml
	cp config/crd/bases/*.yaml $(CHART)/crds/
	cp config/rbac/role.yaml $(CHART)/files/manager-role.yaml
	cp config/rbac/webhookserver/role.yaml $(CHART)/files/webhookserver-role.yaml
	cp config/rbac/user_roles.yaml $(CHART)/files/user-roles.yaml
	cp config/admission/secret_writes.yaml $(CHART)/files/admission-secret-writes.yaml
	cp config/admission/trusted_writes.yaml $(CHART)/files/admission-trusted-writes.yaml
	cp config/prometheus/rules.yaml $(CHART)/files/prometheus-rules.yaml

.PHONY: api-docs
api-docs: manifests ## Write docs/api-reference.md from the CRDs.

.PHONY: verify-generated
verify-generated: ## Fail when generated files are stale.
	hack/verify-generated.sh

.PHONY: fmt
fmt:
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet and gofmt check.
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	cd test/helm && go vet ./...
	cd hack/image && go vet ./...

##@ Build

.PHONY: build
build: ## Build bin/manager, bin/webhookserver, bin/kubectl-instagram and bin/instagram-sandbox.
	$(GO_BUILD_STATIC) -o $(BIN)/manager ./cmd/manager
	$(GO_BUILD_STATIC) -o $(BIN)/webhookserver ./cmd/webhookserver
	go build -o $(BIN)/kubectl-instagram ./cmd/kubectl-instagram
	go build -o $(BIN)/instagram-sandbox ./cmd/instagram-sandbox
	go build -o $(BIN)/controlplane ./hack/controlplane

.PHONY: envtest
envtest: $(ENVTEST_BINS) ## Build kube-apiserver, etcd and kubectl from Go modules.

# The control plane is built from pinned Go modules (hack/tools/go.mod), so
# tests work where setup-envtest cannot download anything.
ENVTEST_MISSING := $(filter-out $(wildcard $(ENVTEST_BINS)),$(ENVTEST_BINS))
ENVTEST_NOTICE = echo "First run: building the local control plane ($(notdir $(ENVTEST_MISSING))) from pinned Go modules into $(K8S_BIN)."; \
	echo "It takes about 10 minutes of CPU (longer on a busy or small machine), prints little meanwhile, and happens once."
$(ENVTEST_BINS): | envtest-notice
.PHONY: envtest-notice
envtest-notice:
	@$(if $(ENVTEST_MISSING),$(ENVTEST_NOTICE),true)

$(K8S_BIN)/kube-apiserver: hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && go build -o $@ k8s.io/kubernetes/cmd/kube-apiserver
$(K8S_BIN)/etcd: hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && go build -o $@ go.etcd.io/etcd/server/v3
$(K8S_BIN)/kubectl: hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && go build -o $@ k8s.io/kubernetes/cmd/kubectl

.PHONY: build-installer
build-installer: $(KUBECTL) ## Write dist/install.yaml (everything, into instagram-operator-system) and dist/monitoring.yaml.
	mkdir -p dist
	$(KUBECTL) kustomize config/default > dist/install.yaml
	$(KUBECTL) kustomize config/monitoring > dist/monitoring.yaml

.PHONY: plugin-release
plugin-release: ## Archives of kubectl-instagram per platform and their krew manifest, in bin/release (VERSION=v0.1.0).
	hack/plugin-release.sh $(or $(VERSION),v0.1.0)

.PHONY: docker-build
docker-build: ## Build the image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMG) .

IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
.PHONY: image
image: ## Build the multi-arch image into bin/image (OCI layout), no Docker needed.
	cd hack/image && go run . -repo-root $(CURDIR) -out $(BIN)/image -platforms $(IMAGE_PLATFORMS) \
		-version $(VERSION) -revision $(REVISION) -ldflags "$(LDFLAGS)" -tag $(IMG)

##@ Test

.PHONY: test
test: envtest verify-generated vet build ## Everything CI runs.
	go test $(GO_TEST_FLAGS) ./...
	cd test/helm && go test $(GO_TEST_FLAGS) ./...
	cd hack/image && go test $(GO_TEST_FLAGS) ./...

.PHONY: test-unit
test-unit: ## Fast tests only (no control plane).
	go test -short ./...
	cd test/helm && go test -short ./...

.PHONY: chaos-manager
chaos-manager: envtest build ## Kill the manager again and again mid-send; reports sent, DeliveryUnknown, sent twice, lost.
	CHAOS=1 go test ./test/e2e/ -count=1 -v -ginkgo.label-filter=chaos -ginkgo.v

.PHONY: bench
bench: envtest build ## Benchmarks; figures go to bin/bench/.
	hack/bench.sh

.PHONY: chaos
chaos: envtest build ## Failure drills (receiver and manager killed -9, API server paused) at full size; figures in bin/chaos/.
	go run ./hack/chaos -out $(BIN)/chaos $(CHAOS_ARGS)

.PHONY: controlplane
controlplane: envtest build ## Only a local control plane with the CRDs; kubeconfig in bin/demo/kubeconfig.
	$(BIN)/controlplane

.PHONY: demo
demo: envtest build ## Local control plane, fake Instagram, manager and receiver; KEEP=1 stays up.
	go run ./hack/demo $(if $(KEEP),-keep)

.PHONY: help
help: ## Show targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
