package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// readTorrentFile reads a .torrent or .magnet file named on the command
// line, refusing one larger than metainfo.MaxTorrentSize, the limit every
// way in shares, before it holds more: /dev/zero fails at once. It reads
// through a bound rather than trusting the size a stat gives, which is 0
// for devices, pipes and /proc files.
func readTorrentFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tooBig := fmt.Errorf("%s: larger than the %d MiB limit for a .torrent file", path, metainfo.MaxTorrentSize>>20)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > metainfo.MaxTorrentSize {
		return nil, tooBig
	}
	b, err := io.ReadAll(io.LimitReader(f, metainfo.MaxTorrentSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > metainfo.MaxTorrentSize {
		return nil, tooBig
	}
	return b, nil
}

// pathMax is Linux's PATH_MAX: the longest path a system call takes,
// counting its terminating NUL.
const pathMax = 4096

// checkPaths fails when a file of the torrent would have, under dir (an
// absolute path), a path too long for the system to open: such a download
// could never write it and would wait for ever. It follows storage.File's
// layout: dir/<name> for a single file, dir/<name>/<path...> otherwise.
func checkPaths(dir string, info *metainfo.Info) error {
	for _, fl := range info.Files {
		if fl.Pad {
			continue
		}
		p := filepath.Join(dir, info.Name, filepath.Join(fl.Path...))
		if info.SingleFile {
			p = filepath.Join(dir, filepath.Join(fl.Path...))
		}
		if len(p) >= pathMax {
			return fmt.Errorf("%s: the torrent's file %s would have a path of %d bytes there, longer than the system allows (%d): choose a shorter folder",
				dir, filepath.Join(fl.Path...), len(p), pathMax-1)
		}
	}
	return nil
}
