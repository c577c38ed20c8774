# Anya Edge. `make run` boots the appliance image in QEMU; `make test` runs every test.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1700000000)
export SOURCE_DATE_EPOCH
PORT ?= 8080
OUT := out
LDFLAGS := -s -w -buildid= -X main.version=$(VERSION)
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

# Debian packages the host needs: QEMU and firmware to boot the image, Chromium for the page tests.
DEB_RUN := qemu-system-x86 ovmf
DEB_TEST := $(DEB_RUN) chromium e2fsprogs iproute2 swtpm swtpm-tools pcscd vsmartcard-vpcd qemu-user

.PHONY: all build anyad anyactl image run dev test test-short vet deps-run deps-test bench bench-neutrino bench-lightning test-ml test-arm64 bench-ml deps-ort clean

all: build

build: anyad anyactl

anyad:
	GOOS=linux GOARCH=amd64 $(GOBUILD) -o $(OUT)/anyad ./appliance/cmd/anyad
	GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(OUT)/anyad-arm64 ./appliance/cmd/anyad

anyactl:
	$(GOBUILD) -o $(OUT)/anyactl ./tools/cmd/anyactl

image: build
	$(OUT)/anyactl image build -anyad $(OUT)/anyad -o $(OUT)/anya.img -version $(VERSION)

run: deps-run image
	$(OUT)/anyactl image run -img $(OUT)/anya.img -port $(PORT)

dev:
	$(GO) run ./appliance/cmd/anyad dev -data ./var -listen 127.0.0.1:$(PORT)

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

test: deps-test vet build
	ANYA_REQUIRE_ALL=1 ANYA_ARTIFACTS=$(CURDIR)/$(OUT)/artifacts $(GO) test -count=1 -timeout 80m ./...
	$(MAKE) --no-print-directory test-ml
	ANYA_REQUIRE_ALL=1 $(MAKE) --no-print-directory test-arm64

test-short:
	$(GO) test -short ./...

bench: deps-run image
	$(GO) run ./tools/cmd/bootbench -runs 3
	$(MAKE) --no-print-directory bench-neutrino

# Light client sync vs lightninglabs/neutrino on one btcd regtest chain (own module; ~1.5 min warm).
bench-neutrino:
	cd tools/neutrinobench && ANYA_REQUIRE_ALL=1 $(GO) test -mod=mod -count=1 -timeout 30m -run '^TestNeutrinoBench$$' -v . \
		-args -blocks 4000 -runs 5 -out $(CURDIR)/$(OUT)/neutrinobench.md

# ml/engine against onnxruntime (own cgo module, ml/ortcheck): agreement tests, and benchmarks
# printing our latency and load time as a ratio to onnxruntime's (one thread, same run).
test-ml: deps-ort
	cd ml/ortcheck && ANYA_REQUIRE_ALL=1 $(GO) test -mod=mod -count=1 -timeout 10m .

# ml/ on arm64 under qemu-user: the NEON kernels against the pure-Go reference, and the
# engine and models on top of them (speed under emulation means nothing; ~30 s). Without
# qemu-aarch64: skipped, or an error with ANYA_REQUIRE_ALL=1.
test-arm64:
	@if ! command -v qemu-aarch64 >/dev/null; then \
		if [ -n "$$ANYA_REQUIRE_ALL" ]; then echo "test-arm64: qemu-aarch64 missing (Debian package qemu-user)"; exit 1; fi; \
		echo "test-arm64: skipped, no qemu-aarch64"; exit 0; fi; \
	GOARCH=arm64 $(GO) test -count=1 -exec qemu-aarch64 ./ml/...

bench-ml: deps-ort
	cd ml/ortcheck && ANYA_REQUIRE_ALL=1 $(GO) test -mod=mod -count=1 -timeout 20m -run '^$$' -bench . -benchtime 1s .

# onnxruntime's CPU library as npm's onnxruntime-node ships it (its install script, which
# downloads more, is skipped), under out/ort where ml/ortcheck looks for it.
ORT_NODE := onnxruntime-node@1.30.0
deps-ort:
	@test -e $(OUT)/ort/node_modules/onnxruntime-node/package.json || { mkdir -p $(OUT)/ort && cd $(OUT)/ort && echo {\"private\":true} >package.json && \
		ONNXRUNTIME_NODE_INSTALL=skip npm install --silent --no-audit --no-fund --ignore-scripts $(ORT_NODE); }

# Lightning graph at mainnet scale (16k nodes, 50k channels, 100k updates, signed): ingest with
# full validation vs bare signature checks, reload, route latency, memory (~5 min on 2 cores).
bench-lightning:
	mkdir -p $(OUT)
	$(GO) run ./tools/cmd/lnbench -json $(OUT)/lnbench.json

deps-run:
	@missing=""; for p in $(DEB_RUN); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

deps-test:
	@missing=""; for p in $(DEB_TEST); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

clean:
	rm -rf $(OUT)
