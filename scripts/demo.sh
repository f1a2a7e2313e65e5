#!/usr/bin/env bash
# make run: the swarmfs demo on a local swarm, all on 127.0.0.0/8.
#   1. generate a sample video (ffmpeg) and a few files, make a torrent;
#   2. seed it with a rate-limited swarmfs seeder behind a local opentracker;
#   3. mount it under ./demo/mnt and read it while it downloads: ffprobe the
#      video, seek into it with ffmpeg, checksum a file;
#   4. show the status, then unmount and stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin/swarmfs
DEMO=$PWD/demo
PORT=${DEMO_TRACKER_PORT:-16969}
RATE=${DEMO_SEED_RATE:-4MB}

pids=()
cleanup() {
	set +e
	if mountpoint -q "$DEMO/mnt" 2>/dev/null; then
		[ -n "${MOUNT_PID:-}" ] && kill -INT "$MOUNT_PID" 2>/dev/null
		for _ in $(seq 50); do mountpoint -q "$DEMO/mnt" || break; sleep 0.1; done
		mountpoint -q "$DEMO/mnt" && fusermount3 -u -z "$DEMO/mnt"
	fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "${OTDIR:-}" ] && rm -rf "$OTDIR"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# since T0 prints the seconds since T0 (from now_ns), in shell arithmetic: a
# python3 started for it took about 0.3 s, more than most of what it timed.
now_ns() { date +%s%N; }
since() { local ms=$((($(now_ns) - $1) / 1000000)); printf '%d.%03d s' $((ms / 1000)) $((ms % 1000)); }

if mountpoint -q "$DEMO/mnt" 2>/dev/null; then fusermount3 -u -z "$DEMO/mnt"; fi
rm -rf "$DEMO"
mkdir -p "$DEMO/seed/swarmfs-demo/docs" "$DEMO/mnt" "$DEMO/data"

step "generating a 60 s sample video and a few files"
ffmpeg -loglevel error -f lavfi -i "testsrc2=duration=60:size=1280x720:rate=30" \
	-f lavfi -i "sine=frequency=440:duration=60" -c:v libx264 -preset veryfast -b:v 3M \
	-c:a aac -shortest "$DEMO/seed/swarmfs-demo/sample.mp4"
printf 'Hello from swarmfs: this file was read from a torrent while it downloaded.\n' >"$DEMO/seed/swarmfs-demo/docs/README.txt"
head -c $((8 << 20)) /dev/urandom >"$DEMO/seed/swarmfs-demo/random.bin"
: >"$DEMO/seed/swarmfs-demo/docs/empty"
ls -l "$DEMO/seed/swarmfs-demo"

step "creating the torrent"
"$BIN" create -piece-length 256KiB -t "http://127.0.0.1:$PORT/announce" -o "$DEMO/demo.torrent" "$DEMO/seed/swarmfs-demo" | tee "$DEMO/create.txt"
IH=$(awk '/info-hash/ {print $2}' "$DEMO/create.txt")

step "starting opentracker on 127.0.0.1:$PORT"
# Debian's opentracker serves only whitelisted info-hashes and will not run
# as root: it runs as nobody, in a folder nobody can read, holding the list.
OTDIR=$(mktemp -d /tmp/swarmfs-demo-tracker.XXXXXX)
chmod 755 "$OTDIR"
echo "$IH" >"$OTDIR/whitelist"
chmod 644 "$OTDIR/whitelist"
setpriv --reuid=nobody --regid=nogroup --clear-groups \
	opentracker -i 127.0.0.1 -p "$PORT" -P "$PORT" -d "$OTDIR" -w whitelist >"$DEMO/tracker.log" 2>&1 &
pids+=($!)
sleep 0.3

step "seeding with swarmfs on 127.0.0.2, limited to $RATE/s"
"$BIN" seed --listen 127.0.0.2:0 --no-dht --max-upload-rate "$RATE" "$DEMO/demo.torrent" "$DEMO/seed" >"$DEMO/seed.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^seeding' "$DEMO/seed.log" && break; sleep 0.1; done
head -2 "$DEMO/seed.log"

step "mounting at demo/mnt (cache in demo/data)"
t0=$(now_ns)
"$BIN" mount --listen 127.0.0.3:0 --no-dht --data-dir "$DEMO/data" --cache-size 1GiB "$DEMO/mnt" "$DEMO/demo.torrent" >"$DEMO/mount.log" 2>&1 &
MOUNT_PID=$!
pids+=($MOUNT_PID)
for _ in $(seq 500); do [ -d "$DEMO/mnt/swarmfs-demo" ] && break; sleep 0.01; done
echo "listing after $(since "$t0"):"
ls -lR "$DEMO/mnt"

step "ffprobe reads the video while it downloads"
t0=$(now_ns)
ffprobe -v error -show_entries format=duration,bit_rate:stream=codec_name,width,height -of default=nw=1 "$DEMO/mnt/swarmfs-demo/sample.mp4"
echo "ffprobe took $(since "$t0")"

step "seeking to 0:40 and decoding 3 s"
t0=$(now_ns)
ffmpeg -v error -ss 40 -i "$DEMO/mnt/swarmfs-demo/sample.mp4" -t 3 -f null -
echo "seek and decode took $(since "$t0")"

step "reading a text file"
cat "$DEMO/mnt/swarmfs-demo/docs/README.txt"

step "status"
"$BIN" status --data-dir "$DEMO/data"
getfattr -d "$DEMO/mnt/swarmfs-demo/sample.mp4" 2>/dev/null || true

step "checksumming the whole video through the mount (downloads the rest)"
t0=$(now_ns)
a=$(sha256sum <"$DEMO/mnt/swarmfs-demo/sample.mp4" | cut -d' ' -f1)
b=$(sha256sum <"$DEMO/seed/swarmfs-demo/sample.mp4" | cut -d' ' -f1)
echo "mount:    $a  ($(since "$t0"))"
echo "original: $b"
[ "$a" = "$b" ] && echo "identical"
"$BIN" status --data-dir "$DEMO/data"

step "unmounting"
kill -INT "$MOUNT_PID"
wait "$MOUNT_PID" || true
tail -2 "$DEMO/mount.log"
echo "done. Mount a torrent of your own: bin/swarmfs mount MOUNTPOINT file.torrent (see README.md)"
