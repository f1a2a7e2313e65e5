#!/usr/bin/env bash
# make bench, filesystem part: BenchmarkE2E (cmd/swarmfs/bench_e2e_test.go)
# mounts one torrent with swarmfs and with btfs from a local swarm of four
# libtorrent seeders behind opentracker, fast (unlimited) and slow (2 MB/s
# each), and writes the table into docs/benchmarks.md.
#
# It runs in a network namespace that has only loopback (unshare -n): btfs
# uses libtorrent's defaults, which look for DHT routers, UPnP gateways and
# LSD peers on the real network. Without unshare (not root), btfs is skipped.
#
# Knobs: SWARMFS_BIN (default: built here), SWARMFS_BENCH_FS_MB (256),
# SWARMFS_BENCH_FS_REPS (3), SWARMFS_BENCH_DATA (keep generated data there),
# SWARMFS_BENCH_DOC (default docs/benchmarks.md; empty: do not write).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/swarmfs-bench-fs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if [ -z "${SWARMFS_BIN:-}" ]; then
	"$GO" build -o "$tmp/swarmfs" ./cmd/swarmfs
	SWARMFS_BIN=$tmp/swarmfs
fi
export SWARMFS_BIN
export SWARMFS_BENCH_DOC=${SWARMFS_BENCH_DOC-$PWD/docs/benchmarks.md}
"$GO" test -c -o "$tmp/swarmfs.test" ./cmd/swarmfs/

# The test binary runs in its package folder, as go test would run it.
bench=("$tmp/swarmfs.test" -test.run '^$' -test.bench E2E -test.benchtime 1x -test.timeout 60m)
echo "== filesystem: swarmfs vs btfs, end to end (cmd/swarmfs BenchmarkE2E)"
if unshare -n true 2>/dev/null; then
	unshare -n sh -c 'ip link set lo up && cd cmd/swarmfs && exec "$@"' sh "${bench[@]}"
else
	echo "unshare -n is not permitted: running without btfs" >&2
	(cd cmd/swarmfs && "${bench[@]}")
fi
