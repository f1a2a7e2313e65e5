package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The mount helper: mount(8) runs /sbin/mount.TYPE for a filesystem type it
// does not know, so with mount.swarmfs a link to this binary, an fstab line
//
//	/srv/torrents  /mnt/torrents  swarmfs  defaults,cache-size=20GiB,_netdev,allow_other  0 0
//
// and "mount -t swarmfs SOURCE MNT -o OPTIONS" mount a swarmfs. mount(8)
// calls it as
//
//	mount.swarmfs SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS] [-t TYPE]
//
// and waits for it to exit, so the helper mounts in the background
// (--daemon) and returns once the mount answers, or with its error.

// helperName is the name the binary answers to as a mount helper.
const helperName = "mount.swarmfs"

// ignoredOptions are the mount options meant for mount(8), systemd or the
// kernel's generic mount flags, which a FUSE filesystem has no use for.
// swarmfs is read-only whatever "rw" says (only .torrent files may be
// copied in), so "ro" and "rw" are accepted and change nothing.
var ignoredOptions = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "owner": true, "group": true, "_netdev": true, "nofail": true,
	"rw": true, "ro": true, "suid": true, "nosuid": true, "dev": true, "nodev": true,
	"exec": true, "noexec": true, "async": true, "sync": true, "atime": true,
	"noatime": true, "relatime": true, "norelatime": true, "strictatime": true,
	"diratime": true, "nodiratime": true, "lazytime": true, "nolazytime": true,
	"silent": true, "loud": true, "daemon": true, "bg": true, "fg": true,
}

// ignoredOption reports whether mount(8) or systemd, not swarmfs, owns the
// option: the list above, x-systemd.* and the other x-* options, and the
// user=, comment= and helper= that mount(8) may leave in.
func ignoredOption(name string) bool {
	if ignoredOptions[name] || strings.HasPrefix(name, "x-") {
		return true
	}
	switch name {
	case "user", "comment", "helper", "uhelper":
		return true
	}
	return false
}

func runMountHelper(args []string, stdout, stderr io.Writer) error {
	mountArgs, fake, err := helperArgs(args, stderr)
	if err != nil {
		return err
	}
	if fake {
		return nil
	}
	return runMount(mountArgs, stdout, stderr)
}

// helperArgs turns mount(8)'s calling convention into "swarmfs mount"
// arguments. fake is -f: check everything, mount nothing.
func helperArgs(args []string, stderr io.Writer) (mountArgs []string, fake bool, err error) {
	var pos, opts []string
	var sloppy, verbose bool
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case a == "-o" || a == "-t":
			if i+1 == len(args) {
				return nil, false, usageErr("%s needs a value", a)
			}
			i++
			if a == "-o" {
				opts = append(opts, args[i])
			}
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, a[2:])
		case strings.HasPrefix(a, "-t"):
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for _, c := range a[1:] {
				switch c {
				case 's':
					sloppy = true
				case 'f':
					fake = true
				case 'n': // no /etc/mtab to write: nothing to do
				case 'v':
					verbose = true
				default:
					return nil, false, usageErr("unknown option -%c", c)
				}
			}
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return nil, false, usageErr("want SOURCE MOUNTPOINT, got %d argument(s)", len(pos))
	}
	source, mnt := pos[0], pos[1]
	mountFlags := commandFlags("mount")
	mountArgs = []string{"--daemon"}
	if verbose {
		mountArgs = append(mountArgs, "-v")
	}
	for _, o := range strings.Split(strings.Join(opts, ","), ",") {
		if o == "" {
			continue
		}
		name, value, hasValue := strings.Cut(o, "=")
		if ignoredOption(name) {
			continue
		}
		// FUSE spells its options with underscores (allow_other).
		fl := mountFlags.Lookup(strings.ReplaceAll(name, "_", "-"))
		if fl == nil {
			if sloppy {
				fmt.Fprintf(stderr, "swarmfs: ignoring unknown mount option %q\n", o)
				continue
			}
			return nil, false, usageErr("unknown mount option %q (swarmfs mount -h lists them; use -s to ignore unknown options)", o)
		}
		if fl.Name == "daemon" {
			continue
		}
		if isBoolFlag(fl) && !hasValue {
			mountArgs = append(mountArgs, "--"+fl.Name)
			continue
		}
		if !hasValue {
			return nil, false, usageErr("mount option %q needs a value (%s=...)", name, name)
		}
		mountArgs = append(mountArgs, "--"+fl.Name+"="+value)
	}
	sources, err := helperSources(source)
	if err != nil {
		return nil, false, err
	}
	if mountFlags.Lookup("data-dir") != nil && !hasOption(mountArgs, "data-dir") &&
		os.Getuid() == 0 && os.Getenv("XDG_CACHE_HOME") == "" && os.Getenv("HOME") == "" {
		// At boot root has no HOME: keep the cache where system caches go.
		os.Setenv("XDG_CACHE_HOME", "/var/cache")
	}
	return append(append(mountArgs, mnt), sources...), fake, nil
}

func hasOption(args []string, name string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

// helperSources turns the SOURCE of an fstab line into the torrents to
// mount: none for "none" (or the type's name, which some write there), the
// .torrent and .magnet files of a folder, or the file itself (a .torrent,
// or a file holding a magnet link).
func helperSources(source string) ([]string, error) {
	switch source {
	case "", "none", "swarmfs":
		return nil, nil
	}
	if strings.HasPrefix(source, "magnet:") {
		return []string{source}, nil
	}
	st, err := os.Stat(source)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if !st.IsDir() {
		return []string{source}, nil
	}
	entries, err := os.ReadDir(source)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	var out []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".torrent" || ext == ".magnet") {
			out = append(out, filepath.Join(source, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// isBoolFlag reports whether a flag may be given without a value.
func isBoolFlag(fl *flag.Flag) bool {
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
