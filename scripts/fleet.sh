#!/usr/bin/env bash
# make fleet (and make bench): issue 18's fleet bench. BenchmarkFleet
# (cmd/swarmfs/bench_fleet_test.go) puts one origin ("swarmfs seed"), a
# tracker (opentracker) and N hosts ("swarmfs get", or "swarmfs mount" with
# every file read at once) in network namespaces on one Linux bridge, each
# link capped with tbf both ways, and times every host until it has the
# whole dataset, checked by SHA-256. Runs: one host alone, the fleet, half
# the fleet, the fleet with LSD instead of the tracker. The table goes into
# docs/fleet.md, each run's samples into docs/fleet-RUN.csv, the plot into
# docs/fleet.png (with gnuplot).
#
# Needs root (ip netns, tc). Nothing leaves the machine: the bridge has no
# address, the namespaces no default route (fleet_net_test.go).
#
# Knobs: SWARMFS_FLEET_HOSTS (20), SWARMFS_FLEET_MB (128), SWARMFS_FLEET_MBIT
# (20), SWARMFS_FLEET_RUNS (alone,fleet,half,lsd), SWARMFS_FLEET_MOUNT (1:
# mount and read instead of get), SWARMFS_FLEET_HOST_FLAGS (extra flags for
# every host), SWARMFS_FLEET_DOC (default docs/fleet.md; empty: write
# nothing), SWARMFS_BIN (default: built here).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}
tmp=$(mktemp -d /tmp/swarmfs-fleet.XXXXXX)
# opentracker runs as nobody and reads its whitelist from under TMPDIR.
chmod 755 "$tmp"
# The run's namespaces and links all start with this prefix: if the test
# binary is killed before its own cleanup, the trap removes them.
export SWARMFS_FLEET_PREFIX=sfl$(($$ % 100000))
cleanup() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$SWARMFS_FLEET_PREFIX-" || true); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
	done
	# A host's mount lives under $tmp (the test's TMPDIR).
	{ grep -o " $tmp/[^ ]*" /proc/self/mountinfo 2>/dev/null || true; } | while read -r mnt; do
		fusermount3 -u -z "$mnt" 2>/dev/null || true
	done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$SWARMFS_FLEET_PREFIX-" || true); do
		ip netns del "$ns" 2>/dev/null || true
	done
	ip link del "${SWARMFS_FLEET_PREFIX}b" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${SWARMFS_BIN:-}" ]; then
	CGO_ENABLED=0 "$GO" build -o "$tmp/swarmfs" ./cmd/swarmfs
	SWARMFS_BIN=$tmp/swarmfs
fi
export SWARMFS_BIN
export SWARMFS_FLEET_DOC=${SWARMFS_FLEET_DOC-$PWD/docs/fleet.md}
"$GO" test -c -o "$tmp/swarmfs.test" ./cmd/swarmfs/
echo "== fleet: N hosts fetch one dataset from one origin over capped links (cmd/swarmfs BenchmarkFleet)"
# The test binary runs in its package folder, as go test would run it.
(cd cmd/swarmfs && TMPDIR=$tmp "$tmp/swarmfs.test" -test.run '^$' -test.bench '^BenchmarkFleet$' -test.benchtime 1x -test.timeout 90m -test.v)
