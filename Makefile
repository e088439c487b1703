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
go-version:
	@v=$$($(GO) env GOVERSION 2>/dev/null) || { \
		echo "make: cannot run '$(GO)': install Go 1.26 or later (https://go.dev/dl/, e.g. in /usr/local/go)" >&2; exit 1; }; \
	case $$v in \
	go1.2[6-9]*|go1.[3-9][0-9]*|devel*) ;; \
	*) echo "make: $$(command -v $(GO)) is $$v; groupd needs Go 1.26 or later (https://go.dev/dl/)" >&2; exit 1;; \
	esac

build: deps go-version
	mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

vet: deps go-version
	$(GO) vet ./...
	$(if $(VET_386),GOARCH=386 CGO_ENABLED=1 $(GO) vet ./...)

test: deps vet
	$(GO) test -race -count=1 ./...

bench: deps go-version
	./scripts/bench-cpg

test-cluster: deps go-version
	./scripts/test-cluster

demo: deps go-version
	./scripts/demo

clean:
	rm -rf $(BIN)
