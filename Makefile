# groupd-go: Go bindings for corosync (cpg, cman) and the groupd daemon.
#
#   make deps          install corosync and its -dev packages (Debian 12; idempotent)
#   make build         build the binaries into bin/
#   make test          deps + vet + unit and local-corosync tests (race detector on)
#   make bench         Go binding against C libcpg, side by side, with ratios
#   make test-cluster  the multi-node tier in Docker containers
#   make demo          a 3-node cluster with the daemon on each node

# go from PATH, else from the official tarball's place (scripts and tests
# run go too, hence PATH rather than only GO).
export PATH := $(PATH):/usr/local/go/bin
GO       ?= go
DEB_PKGS := corosync libcpg-dev libquorum-dev libvotequorum-dev libcmap-dev libcfg-dev \
            libcorosync-common-dev libqb-dev gcc make pkg-config
BIN      := bin

# On amd64, vet also type-checks the 32-bit (386) build: a size that fits
# an int here may not there, and Debian ships corosync for armhf and i386.
ifeq ($(shell dpkg --print-architecture 2>/dev/null),amd64)
DEB_PKGS += gcc-multilib
VET_386  := 1
endif

.PHONY: all deps go-version build test vet bench test-cluster demo clean

all: build

deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# A clear word instead of go.mod errors when an older go comes first in
# PATH (Debian 12's golang-go is 1.19). Go 1.21 and later fetch the
# toolchain go.mod asks for by themselves where they can.
GO_HINT := groupd needs Go 1.26 or later (https://go.dev/dl/); if it is in /usr/local/go, run make GO=/usr/local/go/bin/go
go-version:
	@v=$$($(GO) env GOVERSION 2>/dev/null) || { \
		echo "make: '$(GO) env GOVERSION' failed: $$($(GO) env GOVERSION 2>&1 | tail -n 3)" >&2; \
		echo "make: $(GO_HINT)" >&2; exit 1; }; \
	case $$v in devel*) exit 0;; esac; \
	n=$${v#go}; \
	if [ -z "$$n" ] || [ "$$(printf '1.26\n%s\n' "$$n" | sort -V | head -n 1)" != 1.26 ]; then \
		echo "make: $$(command -v $(GO)) is $${v:-older than Go 1.16}; $(GO_HINT)" >&2; exit 1; \
	fi

build: go-version deps
	mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

vet: go-version deps
	$(GO) vet ./...
	$(if $(VET_386),GOARCH=386 CGO_ENABLED=1 $(GO) vet ./...)

test: go-version deps vet
	$(GO) test -race -count=1 ./...

bench: go-version deps
	./scripts/bench-cpg

test-cluster: go-version deps
	./scripts/test-cluster

demo: go-version deps
	./scripts/demo

clean:
	rm -rf $(BIN)
