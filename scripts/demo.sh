#!/usr/bin/env bash
# make run: a local demo swarm. A swarmfs seeder serves generated data through
# a local opentracker; a second swarmfs process downloads it and the result is
# compared byte for byte. Everything runs on 127.0.0.0/8 and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin/swarmfs
DEMO=$PWD/demo
SIZE_MB=${DEMO_SIZE_MB:-256}
PORT=${DEMO_TRACKER_PORT:-16969}

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

rm -rf "$DEMO"
mkdir -p "$DEMO/seed/demo-data/docs" "$DEMO/get"
echo "== generating ${SIZE_MB} MiB of demo data"
head -c $((SIZE_MB << 20)) /dev/urandom >"$DEMO/seed/demo-data/big.bin"
printf 'hello from swarmfs\n' >"$DEMO/seed/demo-data/docs/readme.txt"
: >"$DEMO/seed/demo-data/docs/empty"

echo "== creating the torrent"
"$BIN" create -t "http://127.0.0.1:$PORT/announce" -o "$DEMO/demo.torrent" "$DEMO/seed/demo-data" | tee "$DEMO/create.txt"
IH=$(awk '/info-hash/ {print $2}' "$DEMO/create.txt")

echo "== starting opentracker on 127.0.0.1:$PORT"
# Debian's opentracker serves only whitelisted info-hashes, and drops root
# privileges to nobody: keep its files where nobody can read them.
OTDIR=$(mktemp -d /tmp/swarmfs-demo-tracker.XXXXXX)
chmod 755 "$OTDIR"
echo "$IH" >"$OTDIR/whitelist"
chmod 644 "$OTDIR/whitelist"
opentracker -i 127.0.0.1 -p "$PORT" -P "$PORT" -w "$OTDIR/whitelist" -d "$OTDIR" -u nobody >"$DEMO/tracker.log" 2>&1 &
pids+=($!)
sleep 0.5

echo "== seeding with swarmfs on 127.0.0.2"
"$BIN" seed --listen 127.0.0.2:0 "$DEMO/demo.torrent" "$DEMO/seed" >"$DEMO/seed.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^seeding' "$DEMO/seed.log" && break; sleep 0.1; done
cat "$DEMO/seed.log"

echo "== downloading with swarmfs on 127.0.0.3"
"$BIN" get --listen 127.0.0.3:0 "$DEMO/demo.torrent" "$DEMO/get"

echo "== verifying"
cmp -s "$DEMO/seed/demo-data/big.bin" "$DEMO/get/demo-data/big.bin" && diff -r "$DEMO/seed/demo-data" "$DEMO/get/demo-data" && echo "byte-exact: OK"
