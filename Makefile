# swarmfs — see README.md. Every target works from a clean clone on Debian 12.
SHELL := /bin/bash
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
export PATH := /usr/local/go/bin:$(PATH)
BIN := bin/swarmfs
# TORRENTFS is anacrolix torrentfs, the end-to-end bench's second anchor
# beside btfs: installed by make bench only, into a bench-only folder and
# outside go.mod (v1.62 dropped the command).
TORRENTFS := bin/bench/torrentfs
TORRENTFS_PKG := github.com/anacrolix/torrent/fs/cmd/torrentfs@v1.61.0

# Debian packages the tests and the demo need (real peers, FUSE, media tools).
DEB_PKGS := python3-libtorrent opentracker fuse3 ffmpeg mktorrent transmission-cli transmission-daemon aria2 rtorrent btfs psmisc attr zsh groff-base chromium iproute2 nodejs npm
DEB_CHECK := /usr/bin/opentracker /usr/bin/fusermount3 /usr/bin/ffprobe /usr/bin/mktorrent /usr/bin/btfs /usr/bin/aria2c /usr/bin/rtorrent /usr/bin/transmission-cli /usr/bin/transmission-daemon /usr/bin/killall /usr/bin/getfattr /usr/bin/zsh /usr/bin/groff /usr/bin/chromium /sbin/tc /usr/bin/node /usr/bin/npm
# WebTorrent (npm), one more independent implementation for the interop
# tests, pinned by its package-lock.json; --ignore-scripts: its optional
# native uTP module is not built (the tests speak TCP to it).
WEBTORRENT_DIR := engine/swarmtest/webtorrent

.PHONY: all build run test bench fleet deps test-deps bench-deps fmt vet clean deb

all: build

# A static binary (no cgo: the net and os/user packages have pure-Go
# versions, and swarmfs calls no C): it starts about 5 ms sooner, without
# the dynamic loader, and runs on any Linux of its architecture.
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/swarmfs

# deps installs what the tests need, once: apt-get update only when something is missing.
deps:
	@missing=0; for f in $(DEB_CHECK); do [ -e $$f ] || missing=1; done; \
	/usr/bin/python3 -c 'import libtorrent' 2>/dev/null || missing=1; \
	if [ $$missing = 1 ]; then \
		echo "installing Debian packages: $(DEB_PKGS)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS) >/dev/null; \
	fi
	$(GO) mod download

# test-deps adds what only the tests need: WebTorrent, from npm.
test-deps: deps
	@[ $(WEBTORRENT_DIR)/node_modules/.package-lock.json -nt $(WEBTORRENT_DIR)/package-lock.json ] || \
		{ echo "installing WebTorrent into $(WEBTORRENT_DIR)"; cd $(WEBTORRENT_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; }

# deb builds bin/swarmfs_VERSION_ARCH.deb (binary, mount.swarmfs link, man
# page, completions, systemd unit; Depends: fuse3) with dpkg-deb.
deb: build
	./scripts/mkdeb.sh $(BIN) bin

run: deps build
	./scripts/demo.sh

# -parallel 8: the tests that run in parallel (engine's interop tests with
# the other clients) mostly wait on those clients' timers, using a third of
# a core between them; two at a time (the default on 2 cores) they took
# 287 s of the engine package's time, all at once 161 s.
test: test-deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -timeout 15m -parallel 8 ./...

# bench: Go micro-benchmarks of every package, then the end-to-end benches
# against local swarms (scripts/bench.sh). Figures go to stdout.
bench: deps bench-deps build $(TORRENTFS)
	$(GO) test -run '^$$' -bench . -benchmem $$($(GO) list ./... | grep -v '/engine$$')
	./scripts/bench.sh
	./scripts/fleet.sh

# fleet: N hosts in network namespaces fetch one dataset through the swarm
# over capped links (needs root); the table and plot go to docs/fleet.md.
fleet: deps bench-deps build
	SWARMFS_BIN=$(CURDIR)/$(BIN) ./scripts/fleet.sh

# bench-deps: Debian packages only the benches need (gnuplot draws the
# fleet plot; curl is the independent client of the web-seed and HTTP benches).
BENCH_DEB_PKGS := gnuplot-nox curl
bench-deps:
	@{ command -v gnuplot && command -v curl; } >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_DEB_PKGS) >/dev/null; }

$(TORRENTFS):
	GOBIN=$(CURDIR)/bin/bench $(GO) install $(TORRENTFS_PKG)

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf bin demo
