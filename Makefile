# genailab — developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

MODULES := gen pkg services/llm services/diffusion services/monitor services/orchestrator services/gateway stack deploy clients/web clients/go clients/cli
TOOLS := buf protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2 staticcheck checkmodversions
BIN := $(CURDIR)/bin
# make run's data directory; genailab up reads the same variable.
GENAILAB_DATA_DIR ?= $(CURDIR)/.data

# What `genailab up` runs: make run builds only these (genaictl is make build's).
STACK_CMDS := ./stack/cmd/genailab ./services/llm/cmd/genailab-llm ./services/diffusion/cmd/genailab-diffusion \
	./services/monitor/cmd/genailab-monitor ./services/orchestrator/cmd/genailab-orchestrator \
	./services/gateway/cmd/genailab-gateway ./services/diffusion/cmd/sd-cli-standin ./services/diffusion/cmd/sd-server-standin
# A summary of every `make test`: one line per module, then the total.
TEST_RECORD := $(BIN)/.test-summary

.PHONY: standalone help tools generate lint breaking fmt-check vet tidy-check versions-check staticcheck test bench build build-stack run check-generated engines ci web-e2e images

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

tools: ## build the pinned code generators, staticcheck, checkmodversions and etcd (the tests' real etcd) (tools/go.mod) into bin/
	@mkdir -p $(BIN)
	cd tools && GOWORK=off go build -o $(BIN)/ tool ./checkmodversions ./etcd

generate: tools ## regenerate gen/ from proto/ (byte for byte reproducible)
	find gen -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' | xargs -r rm -f
	$(BIN)/buf generate
	cd gen && gofmt -l . | (! grep .)

lint: tools ## buf lint + gofmt + go vet + go mod tidy -diff + module version alignment + staticcheck
	$(BIN)/buf lint
	$(MAKE) fmt-check vet tidy-check versions-check staticcheck

breaking: tools ## buf breaking against the previous commit of main
	$(BIN)/buf breaking --against '.git#ref=HEAD~1'

fmt-check: ## fail if any Go file is not gofmt-ed
	@out=$$(gofmt -l $(MODULES) clients 2>/dev/null); if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi

standalone: ## every module builds on its own (GOWORK=off, sibling modules through replace directives)
	@for m in $(MODULES); do echo "build $$m (GOWORK=off)"; (cd $$m && GOWORK=off go build ./...) || exit 1; done

vet: ## go vet every module
	@for m in $(MODULES); do echo "vet $$m"; (cd $$m && go vet ./...) || exit 1; done

tidy-check: ## fail if go mod tidy would change any module's go.mod/go.sum (GOWORK=off, as standalone builds them)
	@for m in $(MODULES) tools; do echo "tidy-check $$m"; (cd $$m && GOWORK=off go mod tidy -diff) || { echo "$$m: go.mod/go.sum not tidy: run (cd $$m && GOWORK=off go mod tidy)"; exit 1; }; done

versions-check: ## fail if two modules require different versions of the same dependency (workspace and standalone builds would differ)
	@[ -x $(BIN)/checkmodversions ] || $(MAKE) tools
	$(BIN)/checkmodversions $(MODULES) tools

staticcheck: ## staticcheck every module (bin/staticcheck, pinned in tools/go.mod)
	@[ -x $(BIN)/staticcheck ] || $(MAKE) tools
	@for m in $(MODULES) tools; do echo "staticcheck $$m"; (cd $$m && $(BIN)/staticcheck ./...) || exit 1; done

check-generated: generate ## fail if gen/ differs from what proto/ generates
	@if [ -n "$$(git status --porcelain -- gen)" ]; then echo "generated code is stale: run make generate and commit"; git status --short -- gen; exit 1; fi

engines: ## install the real llama-server from Debian's packages into .engines/, link a stable-diffusion.cpp build when there is one
	bash scripts/install-llama-server.sh
	bash scripts/link-sdcpp.sh

test: $(BIN)/testsummary ## every test of every module, with the race detector; a summary line per module and the total
	@set -o pipefail; rm -f $(TEST_RECORD); fail=0; \
	for m in $(MODULES); do echo "== test $$m"; \
	  (cd $$m && go test -json -race -count=1 ./... 2>&1) | $(BIN)/testsummary -module $$m -record $(TEST_RECORD) || fail=1; \
	done; \
	$(BIN)/testsummary -total $(TEST_RECORD) || fail=1; rm -f $(TEST_RECORD); exit $$fail

$(BIN)/testsummary: tools/testsummary/main.go
	@mkdir -p $(BIN)
	cd tools && GOWORK=off go build -o $(BIN)/ ./testsummary

bench: ## every benchmark (figures go into BENCHMARKS.md)
	@for m in $(MODULES); do (cd $$m && go test -run '^$$' -bench . -benchmem ./...) || exit 1; done

build: ## build every service binary, genailab and genaictl into bin/
	@mkdir -p $(BIN)
	@echo "build: genailab, the services and genaictl -> bin/ (a first build compiles every dependency: minutes)"
	@bash scripts/go-build.sh -o $(BIN)/ $(STACK_CMDS) ./clients/cli/cmd/genaictl

build-stack: ## build what genailab up runs into bin/ (Go's build cache makes a rebuild take seconds)
	@mkdir -p $(BIN)
	@echo "build: genailab and the services -> bin/ (a first build compiles every dependency: minutes)"
	@bash scripts/go-build.sh -o $(BIN)/ $(STACK_CMDS)

run: ## set up and run the single-host stack (REST gateway on 127.0.0.1:8080): builds and installs the engines side by side
	@$(MAKE) --no-print-directory -j2 build-stack engines
	$(BIN)/genailab up -data-dir $(GENAILAB_DATA_DIR)

images: ## build the CPU container images offline (deploy/Dockerfile control, agent and etcd; names in deploy/images.env); needs root and Docker (scripts/dockerd.sh start)
	bash scripts/build-images.sh

web-e2e: engines ## browser tests of the web panel: Debian's chromium driven by playwright-core against the real stack
	@[ -x /usr/bin/chromium ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	cd clients/web/e2e && npm ci --no-audit --no-fund && npm test

ci: lint standalone check-generated engines test web-e2e ## everything CI checks: buf lint, gofmt, vet, go mod tidy, module versions, staticcheck, generated-code drift, all tests with -race, the web panel in a browser
