package main

import (
	"flag"
	"time"

	"github.com/swarmfs/swarmfs/engine"
)

// seedFlags are the seeding goals mount, serve, get and seed share.
type seedFlags struct {
	ratio float64
	time  time.Duration
}

func (s *seedFlags) register(fs *flag.FlagSet) {
	fs.Float64Var(&s.ratio, "seed-ratio", 0, "stop uploading a torrent once it uploaded R times what it downloaded (or, for data we had, its size), e.g. 1.5; "+
		"get and seed then leave the swarm (trackers hear \"stopped\"); a mount stays, uploading nothing, to fetch what its cache evicts. 0: no ratio goal")
	fs.DurationVar(&s.time, "seed-time", 0, "stop uploading a torrent after seeding it this long (from its completion; from the start for a mount "+
		"that downloads only what is read), e.g. 2h; with --seed-ratio, whichever comes first. 0: no time goal")
}

// check refuses goals that make no sense.
func (s *seedFlags) check() error {
	if s.ratio < 0 {
		return usageErr("--seed-ratio %v: want 0 or more", s.ratio)
	}
	if s.time < 0 {
		return usageErr("--seed-time %v: want 0 or more", s.time)
	}
	return nil
}

// set copies the goals into opts.
func (s *seedFlags) set(opts *engine.TorrentOptions) {
	opts.SeedRatio, opts.SeedTime = s.ratio, s.time
}

// any reports whether a goal was given.
func (s *seedFlags) any() bool { return s.ratio > 0 || s.time > 0 }
