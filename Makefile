# Tollgate — run `make help` for the targets.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

GOBIN ?= $(shell go env GOPATH)/bin
CONTROLLER_GEN_VERSION ?= v0.23.0
CONTROLLER_GEN ?= $(GOBIN)/controller-gen
ENVTEST_ASSETS_CMD := hack/envtest-assets.sh
HELM_CMD := hack/helm.sh
IMG ?= tollgate:dev
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Packages under test; the race detector covers the data plane and controllers.
GO_TEST_FLAGS ?= -count=1 -timeout=30m

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n\nTargets:\n"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

.PHONY: controller-gen
controller-gen: ## Install controller-gen (pinned).
	@test -x $(CONTROLLER_GEN) && $(CONTROLLER_GEN) --version | grep -q $(CONTROLLER_GEN_VERSION) || GOFLAGS= go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)

.PHONY: generate
generate: controller-gen ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC into config/ (and copy CRDs into the Helm chart).
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=tollgate-controller paths=./controllers/... output:rbac:artifacts:config=config/rbac
	@if [ -d charts/tollgate/crds ]; then cp config/crd/bases/*.yaml charts/tollgate/crds/; fi

.PHONY: verify-generated
verify-generated: generate manifests ## Fail if generated files are not committed.
	@git diff --exit-code -- api config charts || { echo "generated files are stale: run 'make manifests generate' and commit"; exit 1; }

.PHONY: envtest-assets
envtest-assets: ## Build kube-apiserver + etcd from the Go module proxy (cached under ~/.cache/tollgate).
	@$(ENVTEST_ASSETS_CMD) >/dev/null

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: lint
lint: vet ## Static checks: gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: helm
helm: ## Build the pinned helm (cached under ~/.cache/tollgate/bin).
	@$(HELM_CMD) >/dev/null

.PHONY: helm-lint
helm-lint: helm ## Lint the Helm chart (strict).
	"$$($(HELM_CMD))" lint --strict charts/tollgate

.PHONY: argocd-health
argocd-health: ## Regenerate config/argocd/argocd-cm.yaml from config/argocd/health.lua.
	go test ./test/argocd -run TestConfigMapMatchesScript -update -count=1

.PHONY: docker-build
docker-build: ## Build the container image.
	docker build -t $(IMG) --build-arg VERSION=$(VERSION) .

.PHONY: test
test: envtest-assets helm ## Run all tests (unit, golden, envtest, e2e) with the real API server.
	KUBEBUILDER_ASSETS="$$($(ENVTEST_ASSETS_CMD))" KUBEBUILDER_CONTROLPLANE_START_TIMEOUT=120s go test $(GO_TEST_FLAGS) ./...

.PHONY: test-race
test-race: envtest-assets ## Race-detector run of the data plane and controllers.
	KUBEBUILDER_ASSETS="$$($(ENVTEST_ASSETS_CMD))" KUBEBUILDER_CONTROLPLANE_START_TIMEOUT=120s go test -race $(GO_TEST_FLAGS) ./dataplane/... ./controllers/...

.PHONY: build
build: ## Build bin/tollgate.
	CGO_ENABLED=0 go build -trimpath -o bin/tollgate .

.PHONY: run
run: envtest-assets build ## Run a complete local gateway: API server, controller, 2 data planes, fake provider.
	KUBEBUILDER_ASSETS="$$($(ENVTEST_ASSETS_CMD))" go run ./hack/devstack

.PHONY: bench
bench: ## Load harness vs a plain reverse proxy (~3 min, writes docs/benchmarks.md) and Go benchmarks.
	go run ./test/bench -write docs/benchmarks.md
	go test -run '^$$' -bench . -benchmem ./dataplane/server ./dataplane/translate/... ./dataplane/metering ./dataplane/guard ./controllers/compiler

FUZZTIME ?= 1m
.PHONY: fuzz
fuzz: envtest-assets ## Run every fuzz target for FUZZTIME each (default 1m).
	KUBEBUILDER_ASSETS="$$($(ENVTEST_ASSETS_CMD))" hack/fuzz.sh $(FUZZTIME)

.PHONY: fuzz-ci
fuzz-ci: envtest-assets ## Run every fuzz target briefly (CI).
	KUBEBUILDER_ASSETS="$$($(ENVTEST_ASSETS_CMD))" hack/fuzz.sh 10s
