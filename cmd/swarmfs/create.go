package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func runCreate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("create", stderr)
	out := fs.String("o", "", "write the torrent here (default: NAME.torrent in the current folder)")
	var trackers, webSeeds listFlag
	fs.Var(&trackers, "t", "tracker announce URL; repeat for more tiers, or separate URLs of one tier with commas")
	fs.Var(&webSeeds, "w", "web seed URL (BEP 19); repeatable")
	pieceLen := fs.String("piece-length", "", "piece length, e.g. 256KiB or 4MiB (default: chosen from the size)")
	private := fs.Bool("private", false, "mark the torrent private (no DHT, PEX or local discovery)")
	comment := fs.String("comment", "", "comment stored in the torrent")
	name := fs.String("name", "", "torrent name (default: the base name of PATH)")
	var format metainfo.Format // v1: the zero value
	fs.Var(&format, "format", "v1, v2 (BEP 52) or hybrid (both, for v1 and v2 clients alike); default v1, which every client reads")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("create needs exactly one PATH")
	}
	opts := metainfo.CreateOptions{
		WebSeeds: webSeeds,
		Comment:  *comment,
		Private:  *private,
		Name:     *name,
		Format:   format,
	}
	for _, t := range trackers {
		opts.Trackers = append(opts.Trackers, strings.Split(t, ","))
	}
	if *pieceLen != "" {
		n, err := cache.ParseSize(*pieceLen)
		if err != nil {
			return usageErr("-piece-length: %v", err)
		}
		opts.PieceLength = n
	}
	mi, err := metainfo.Create(fs.Arg(0), opts)
	if err != nil {
		return err
	}
	b, err := mi.Marshal()
	if err != nil {
		return err
	}
	dst := *out
	if dst == "" {
		dst = mi.Info.Name + ".torrent"
	}
	if err := writeFileAtomic(dst, b); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s (%s)\n  name       %s\n", dst, format, mi.Info.Name)
	if mi.Info.HasV1() {
		fmt.Fprintf(stdout, "  info-hash  %s\n", mi.Info.InfoHashV1)
	}
	if mi.Info.HasV2() {
		fmt.Fprintf(stdout, "  v2 hash    %s\n", mi.Info.InfoHashV2)
	}
	fmt.Fprintf(stdout, "  size       %s in %d files\n  pieces     %d x %s\n  magnet     %s\n",
		humanBytes(realLength(mi.Info)), realFiles(mi.Info), mi.Info.NumPieces(), humanBytes(mi.Info.PieceLength), mi.Magnet())
	return nil
}

// realLength is the torrent's size without its pad files.
func realLength(info *metainfo.Info) int64 {
	var n int64
	for _, f := range info.Files {
		if !f.Pad {
			n += f.Length
		}
	}
	return n
}

// realFiles counts the torrent's files without its pad files.
func realFiles(info *metainfo.Info) int {
	n := 0
	for _, f := range info.Files {
		if !f.Pad {
			n++
		}
	}
	return n
}

// writeFileAtomic writes through a temporary file so a crash never leaves a
// half-written torrent behind.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".swarmfs-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
