// Command swarmfs mounts BitTorrent torrents as folders, and creates, seeds
// and downloads torrents. Run "swarmfs help" for the subcommands.
//
// This package is flags, wiring and printing only; what runs lives in
// libraries:
//
//   - main.go: the subcommand table, usage and exit codes (2 for a bad
//     command line, 1 for a failure).
//   - mount.go: "mount" opens the cache (cache), starts the client (engine),
//     hands both to a session (engine/session), which restores the torrents
//     the cache remembers and adds those named, then mounts the filesystem
//     (fs) and serves the control socket. fshost.go adapts the session to
//     the small interfaces fs declares (fs.Host, fs.Torrent), so fs and the
//     session never import each other.
//   - control.go: the control socket, a unix socket in the data directory
//     (0700) serving the session's control API (session.Session.Handler),
//     and the client "add", "rm", "status" and "cache" (admin.go) use.
//   - get.go, seed.go, create.go: a client with file storage, for one
//     torrent, with a progress line; engineflags.go holds the flags every
//     command that runs a client shares.
//   - mounthelper.go: "mount-helper", also the binary run as mount.swarmfs:
//     mount(8)'s calling convention and -o options turned into "mount
//     --daemon" flags, for "mount -t swarmfs" and fstab.
//   - daemon.go: --daemon (re-exec with a readiness pipe) and the mount's
//     lifecycle, which also tells systemd (sdnotify.go, Type=notify) that
//     the mount is ready, then stopping. The unit is contrib/systemd.
//   - logging.go: log/slog for the mount (level, file, format) with
//     repeated lines rate-limited; the libraries keep their Logf funcs.
//   - config.go: every command parses with parseFlags, which fills unset
//     flags from SWARMFS_* variables, then the config file; captureArg
//     gives any command's flag set without running it, for "config", the
//     mount helper, the man page (man.go) and completion.go.
//   - source.go: reading .torrent files named on the command line, within
//     the one size limit (metainfo.MaxTorrentSize), and the path check of
//     "get".
//
// # Order at shutdown
//
// The mount stops in the reverse order of its start: control socket,
// filesystem (unmount), session (its removals in progress finish), client
// (every torrent stops), cache. Signals are caught from the start, so one
// that arrives while the mount is being set up unmounts it cleanly.
//
// # Tests
//
// main_test.go runs subcommands in process; cli_test.go runs the binary on
// bad input (oversized torrents, /dev/zero, paths past PATH_MAX, another
// user). The end-to-end tests (e2e_*.go) build the binary and mount
// torrents served by libtorrent seeders behind opentracker, and read them
// with ordinary programs. The session itself is tested in engine/session,
// on fakes.
package main
