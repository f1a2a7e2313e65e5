package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
)

type command struct {
	name  string
	usage string
	help  string
	run   func(args []string, stdout, stderr io.Writer) error
}

var commands []command

func init() {
	commands = []command{
		{"mount", "mount [flags] MOUNTPOINT [TORRENT|MAGNET...]", "mount torrents as folders (foreground; Ctrl-C unmounts)", runMount},
		{"serve", "serve --http ADDR [flags] [TORRENT|MAGNET...]", "serve torrents over HTTP, without FUSE (foreground; Ctrl-C stops)", runServe},
		{"add", "add [--data-dir D] TORRENT|MAGNET...", "add torrents to the running mount", runAdd},
		{"rm", "rm [--data-dir D] NAME|INFOHASH...", "remove torrents from the running mount", runRm},
		{"status", "status [--data-dir D] [--json]", "progress, rates, peers and cache use per torrent", runStatus},
		{"cache", "cache [--data-dir D] [drop NAME|INFOHASH]", "show the piece cache per torrent, or drop a torrent's pieces", runCache},
		{"create", "create [flags] PATH", "make a .torrent from a file or folder", runCreate},
		{"seed", "seed [flags] TORRENT PATH", "seed existing data (PATH: the file, the torrent's folder, or the folder holding it)", runSeed},
		{"get", "get [flags] TORRENT|MAGNET DIR", "download a torrent into DIR, with a progress line", runGet},
		{"version", "version", "print the version", runVersion},
		{"config", "config [COMMAND] [flags]", "print a command's effective settings (flags > SWARMFS_* > config file) and their sources", runConfig},
		{"man", "man", "print the man page (roff)", runMan},
		{"completion", "completion bash|zsh", "print a shell completion script", runCompletion},
		{"mount-helper", "mount-helper SOURCE MOUNTPOINT [-sfnv] [-o OPTS]", "mount(8)'s helper, also run as mount.swarmfs: mount -t swarmfs, fstab", runMountHelper},
	}
}

// errUsage marks a bad command line; main prints the usage and exits 2.
var errUsage = errors.New("usage")

func main() {
	// SWARMFS_CPUPROFILE=FILE writes a CPU profile of the whole run, for
	// measuring the engine under real swarms.
	if p := os.Getenv("SWARMFS_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			code := run(os.Args[1:], os.Stdout, os.Stderr)
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(code)
		}
	}
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == helperName {
		args = append([]string{"mount-helper"}, args...)
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "swarmfs: %v\nusage: swarmfs %s\n", err, c.usage)
			return 2
		default:
			fmt.Fprintf(stderr, "swarmfs %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "swarmfs: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "swarmfs: BitTorrent torrents as folders")
	fmt.Fprintln(w, "\nusage:")
	for _, c := range commands {
		fmt.Fprintf(w, "  swarmfs %-34s %s\n", c.usage, c.help)
	}
	fmt.Fprintln(w, "\nRun 'swarmfs COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("swarmfs "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// usageErr builds an error that prints the command's usage.
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}
