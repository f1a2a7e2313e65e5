#!/usr/bin/env bash
# make bench, end-to-end part: benchmarks against real local swarms. The Go
# micro-benchmarks run before this from the Makefile.
set -euo pipefail
cd "$(dirname "$0")/.."
export SWARMFS_BIN=$PWD/bin/swarmfs
echo "== engine: cold download vs libtorrent (1 GiB, one local libtorrent seeder)"
go test -run '^$' -bench 'ColdDownloadVsLibtorrent|SHA1' -benchtime 1x -timeout 30m ./engine/
echo
# The filesystem against torrentfs and btfs, end to end (writes the table into docs/benchmarks.md).
./scripts/bench_fs.sh
