#!/usr/bin/env bash
# make bench, filesystem part: BenchmarkE2E (cmd/swarmfs/bench_e2e_test.go)
# mounts one torrent with swarmfs, anacrolix torrentfs and btfs from a local
# swarm of four libtorrent seeders behind opentracker, fast (unlimited), slow
# (2 MB/s each) and slow+latency (the same behind relays that add 30 ms each
# way), and writes the table into docs/benchmarks.md.
#
# It runs in a network namespace that has only loopback (unshare -n): btfs
# uses libtorrent's defaults, and torrentfs anacrolix's, which look for DHT
# routers, UPnP gateways and LSD peers on the real network. Without unshare
# (not root), both are skipped.
#
# torrentfs v1.61.0 (v1.62 dropped the command) is installed into
# bin/bench/, outside go.mod, if it is not there yet (make bench does it
# first).
#
# Knobs: SWARMFS_BIN (default: built here), SWARMFS_TORRENTFS (default:
# bin/bench/torrentfs), SWARMFS_BENCH_FS_MB (256), SWARMFS_BENCH_FS_REPS (3),
# SWARMFS_BENCH_FS_SWARMS (comma-separated: fast,slow,slow+latency; default
# all), SWARMFS_BENCH_FS_ONLY (comma-separated figures, e.g. ttfb50,seekplay),
# SWARMFS_BENCH_DATA (keep generated data there), SWARMFS_BENCH_DOC (default
# docs/benchmarks.md; empty: do not write; a run limited by SWARMS or ONLY
# writes nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}
TORRENTFS_PKG=github.com/anacrolix/torrent/fs/cmd/torrentfs@v1.61.0
tmp=$(mktemp -d /tmp/swarmfs-bench-fs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if [ -z "${SWARMFS_BIN:-}" ]; then
	CGO_ENABLED=0 "$GO" build -o "$tmp/swarmfs" ./cmd/swarmfs
	SWARMFS_BIN=$tmp/swarmfs
fi
export SWARMFS_BIN
if [ -z "${SWARMFS_TORRENTFS:-}" ]; then
	SWARMFS_TORRENTFS=$PWD/bin/bench/torrentfs
	[ -x "$SWARMFS_TORRENTFS" ] || GOBIN=$PWD/bin/bench "$GO" install "$TORRENTFS_PKG" ||
		echo "installing $TORRENTFS_PKG failed: running without torrentfs" >&2
fi
export SWARMFS_TORRENTFS
export SWARMFS_BENCH_DOC=${SWARMFS_BENCH_DOC-$PWD/docs/benchmarks.md}
"$GO" test -c -o "$tmp/swarmfs.test" ./cmd/swarmfs/

# The test binary runs in its package folder, as go test would run it.
bench=("$tmp/swarmfs.test" -test.run '^$' -test.bench E2E -test.benchtime 1x -test.timeout 60m)
echo "== filesystem: swarmfs vs torrentfs and btfs, end to end (cmd/swarmfs BenchmarkE2E)"
if unshare -n true 2>/dev/null; then
	unshare -n sh -c 'ip link set lo up && cd cmd/swarmfs && exec "$@"' sh "${bench[@]}"
else
	echo "unshare -n is not permitted: running without btfs and torrentfs" >&2
	(cd cmd/swarmfs && "${bench[@]}")
fi
