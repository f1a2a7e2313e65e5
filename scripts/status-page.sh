#!/bin/sh
# status-page.sh regenerates docs/status-page.png: the HTTP status page in a
# headless Chromium, from a real run (TestServeHTTP: "swarmfs serve" streaming
# from a libtorrent seeder while a client reads big.bin, so the piece map shows
# pieces in flight and the reader's position and window).
# Needs python3-libtorrent, opentracker, ffmpeg and chromium.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go
SWARMFS_STATUS_SCREENSHOT="$PWD/docs/status-page.png" \
	"$GO" test -count=1 -run '^TestServeHTTP$' -v ./cmd/swarmfs | grep -E 'status page written|^(---|ok|FAIL)'
