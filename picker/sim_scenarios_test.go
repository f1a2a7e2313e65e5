package picker

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var simTable = flag.Bool("sim.table", false, "run the full-size simulator scenarios and print the table")

const (
	mb       = 1 << 20
	mbit     = 1_000_000 / 8 // bytes/s in one Mbit/s
	simMBps  = 1_000_000     // "1 MB/s"
	simPiece = 1 << 20
)

// simScenarios returns the scenarios: full size for the table,
// small (a few seconds for all of them) for go test.
func simScenarios(full bool) []simScenario {
	scale := func(small, big int) int {
		if full {
			return big
		}
		return small
	}
	dur := func(small, big time.Duration) time.Duration {
		if full {
			return big
		}
		return small
	}
	player := func(seek time.Duration, n int) []simReaderSpec {
		return []simReaderSpec{{open: 2 * time.Second, bitrate: 4 * mbit, seekEvery: seek, seeks: n, media: true}}
	}
	var out []simScenario

	// fast: ten seeds at 3-8 MB/s, 10-40 ms away.
	fast := simScenario{name: "fast", pieceLen: simPiece, pieces: scale(384, 2048), policy: All,
		readers: player(dur(1500*time.Millisecond, 5*time.Second), scale(4, 7)), limit: 10 * time.Minute, seed: 1}
	for i := 0; i < 10; i++ {
		fast.peers = append(fast.peers, simPeerSpec{rate: float64(3+i%6) * simMBps,
			lat: time.Duration(10+3*i) * time.Millisecond, frac: 1})
	}
	out = append(out, fast)

	// slow: 8 peers at 1 MB/s, a 4 Mbit/s video, a seek every 20 s.
	slow := simScenario{name: "slow", pieceLen: simPiece, pieces: scale(256, 1024), policy: All,
		readers: player(dur(5*time.Second, 20*time.Second), 6), limit: 20 * time.Minute, seed: 2}
	for i := 0; i < 8; i++ {
		slow.peers = append(slow.peers, simPeerSpec{rate: simMBps, lat: time.Duration(20+10*i) * time.Millisecond, frac: 1})
	}
	out = append(out, slow)

	// slowpeer: as slow, but one of the eight is a 32 KB/s peer 400 ms away.
	sp := slow
	sp.name, sp.seed = "slowpeer", 3
	sp.peers = slices.Clone(slow.peers[:7])
	sp.peers = append(sp.peers, simPeerSpec{rate: 32_000, lat: 400 * time.Millisecond, frac: 1})
	out = append(out, sp)

	// churn: 4 seeds and 8 leechers that come and go; leechers gain pieces.
	churn := simScenario{name: "churn", pieceLen: simPiece, pieces: scale(256, 1024), policy: All,
		readers: player(dur(5*time.Second, 20*time.Second), 6), limit: 30 * time.Minute, seed: 4}
	for i := 0; i < 4; i++ {
		churn.peers = append(churn.peers, simPeerSpec{rate: 1.5 * simMBps, lat: time.Duration(30+20*i) * time.Millisecond,
			frac: 1, session: 40 * time.Second, offline: 20 * time.Second, join: time.Duration(i) * 100 * time.Millisecond})
	}
	for i := 0; i < 8; i++ {
		churn.peers = append(churn.peers, simPeerSpec{rate: float64(5+i%4) / 10 * simMBps, lat: time.Duration(20+15*i) * time.Millisecond,
			frac: 0.3 + 0.05*float64(i), grow: 2, session: 30 * time.Second, offline: 15 * time.Second})
	}
	out = append(out, churn)

	// copy: cp reads the torrent as fast as it can from 8 peers at 2-4 MB/s.
	cp := simScenario{name: "copy", pieceLen: simPiece, pieces: scale(256, 1024), policy: All,
		readers: []simReaderSpec{{open: 2 * time.Second}}, limit: 20 * time.Minute, seed: 5}
	for i := 0; i < 8; i++ {
		cp.peers = append(cp.peers, simPeerSpec{rate: float64(2+i%3) * simMBps, lat: time.Duration(20+10*i) * time.Millisecond, frac: 1})
	}
	out = append(out, cp)

	// mixed: two players and a cp share the slow swarm; deadlines, not
	// arrival order, must decide who is served.
	mixed := simScenario{name: "mixed", pieceLen: simPiece, pieces: scale(256, 1024), policy: All,
		limit: 20 * time.Minute, seed: 6, peers: slices.Clone(slow.peers)}
	mixed.readers = []simReaderSpec{
		{open: 2 * time.Second, bitrate: 4 * mbit, seekEvery: dur(8*time.Second, 30*time.Second), seeks: 2, media: true, from: 0, to: 0.25},
		{open: 3 * time.Second, bitrate: 4 * mbit, seekEvery: dur(8*time.Second, 30*time.Second), seeks: 2, media: true, from: 0.25, to: 0.5},
		{open: 4 * time.Second, from: 0.5, to: 1},
	}
	out = append(out, mixed)

	// capped: cp reads as fast as it can from 4 seeds capped at 2 MB/s by
	// bursty limiters that have the next 512 KiB read already (the slow
	// swarm of the end-to-end bench: libtorrent seeders with an upload
	// limit). Withdrawing or duplicating what such a peer is about to send
	// only wastes its bandwidth.
	capped := simScenario{name: "capped", pieceLen: simPiece, pieces: scale(128, 512), policy: All,
		readers: []simReaderSpec{{open: 2 * time.Second}}, limit: 20 * time.Minute, seed: 7}
	for i := 0; i < 4; i++ {
		capped.peers = append(capped.peers, simPeerSpec{rate: 2 * simMBps, lat: time.Duration(1+i) * time.Millisecond,
			frac: 1, burst: 100 * time.Millisecond, committed: 512 << 10})
	}
	out = append(out, capped)
	return out
}

// simStrategies are the table's rows per scenario. The first three are
// the comparison (all download everything); "ours/wanted" is the
// same picker under OnlyWanted, downloading only what readers want.
var simStrategies = []struct {
	name   string
	strat  strategy
	policy Policy
}{
	{"sequential", stratSequential, All},
	{"rarest", stratRarest, All},
	{"ours", stratStreaming, All},
	{"ours/wanted", stratStreaming, OnlyWanted},
}

type simRow struct {
	scenario, policy string
	res              simResult
}

func runSimTable(full bool) []simRow {
	var rows []simRow
	for _, sc := range simScenarios(full) {
		for _, st := range simStrategies {
			sc := sc
			sc.policy = st.policy
			rows = append(rows, simRow{sc.name, st.name, runSim(sc, st.strat)})
		}
	}
	return rows
}

func meanMax(ds []time.Duration) (mean, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
		mx = max(mx, d)
	}
	return sum / time.Duration(len(ds)), mx
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }

func printSimTable(w io.Writer, rows []simRow) {
	fmt.Fprintf(w, "%-9s %-11s %9s %9s %8s %6s %7s %9s %8s %8s %7s %7s\n",
		"scenario", "policy", "ttfb-open", "ttfb-seek", "seek-max", "seeks", "stalls", "stall-ms", "done-s", "cp-s", "dl-MB", "waste")
	for _, r := range rows {
		mean, mx := meanMax(r.res.ttfbSeeks)
		done, cp := "-", "-"
		if r.res.completed {
			done = fmt.Sprintf("%.1f", r.res.complete.Seconds())
		}
		if r.res.copyTime > 0 {
			cp = fmt.Sprintf("%.1f", r.res.copyTime.Seconds())
		}
		fmt.Fprintf(w, "%-9s %-11s %9s %9s %8s %6d %7d %9s %8s %8s %7.0f %7.1f\n",
			r.scenario, r.policy, ms(r.res.ttfbOpen), ms(mean), ms(mx), len(r.res.ttfbSeeks),
			r.res.stalls, ms(r.res.stallTime), done, cp, float64(r.res.fetched)/mb, float64(r.res.wasted)/mb)
	}
	fmt.Fprintln(w, "ttfb in ms: open = first reader's open to first byte; seek = mean over its seeks (a wait cut short by the next seek counts as waited so far)")
	fmt.Fprintln(w, "stalls: playback buffer underruns of all players; done-s: all pieces verified; cp-s: the copier's open to last byte; waste: MB received not useful")
}

// checkSimRows asserts the claims: ours beats both baselines on
// time to first byte after a seek and on stall time, and completes within
// 10% of rarest-first.
func checkSimRows(t *testing.T, rows []simRow) {
	t.Helper()
	by := map[string]map[string]simResult{}
	for _, r := range rows {
		if by[r.scenario] == nil {
			by[r.scenario] = map[string]simResult{}
		}
		by[r.scenario][r.policy] = r.res
	}
	for sc, m := range by {
		ours, rar, seq := m["ours"], m["rarest"], m["sequential"]
		if !ours.completed || !rar.completed || !seq.completed {
			t.Errorf("%s: a run did not complete", sc)
		}
		if len(ours.ttfbSeeks) > 0 && sc != "mixed" {
			o, _ := meanMax(ours.ttfbSeeks)
			for name, b := range map[string]simResult{"rarest": rar, "sequential": seq} {
				if bm, _ := meanMax(b.ttfbSeeks); o >= bm {
					t.Errorf("%s: ours ttfb after seek %v, %s %v", sc, o, name, bm)
				}
			}
		}
		for name, b := range map[string]simResult{"rarest": rar, "sequential": seq} {
			if ours.stallTime > b.stallTime {
				t.Errorf("%s: ours stall time %v, %s %v", sc, ours.stallTime, name, b.stallTime)
			}
		}
		if float64(ours.complete) > 1.1*float64(rar.complete) {
			t.Errorf("%s: ours completes at %v, rarest at %v (> +10%%)", sc, ours.complete, rar.complete)
		}
	}
	// A copier in the capped swarm gets what the swarm can give, and the
	// swarm's bandwidth is not spent twice.
	for _, pol := range []string{"ours", "ours/wanted"} {
		r := by["capped"][pol]
		if r.fetched == 0 || float64(r.wasted) > 0.03*float64(r.fetched) {
			t.Errorf("capped, %s: %.1f of %.1f MB received wasted (> 3%%)", pol, float64(r.wasted)/mb, float64(r.fetched)/mb)
		}
		if rate := float64(r.fetched-r.wasted) / r.copyTime.Seconds(); rate < 0.9*4*2*simMBps {
			t.Errorf("capped, %s: the copier got %.2f MB/s of the swarm's 8", pol, rate/simMBps)
		}
	}
}

func TestSimulator(t *testing.T) {
	rows := runSimTable(*simTable)
	var b strings.Builder
	printSimTable(&b, rows)
	if *simTable {
		fmt.Print(b.String())
	} else {
		t.Log("\n" + b.String())
	}
	checkSimRows(t, rows)
}

func TestSimulatorDeterministic(t *testing.T) {
	sc := simScenarios(false)[3] // churn: the most randomness
	a, b := runSim(sc, stratStreaming), runSim(sc, stratStreaming)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("two runs differ:\n%v\n%v", a, b)
	}
}

var simOnce sync.Once

// BenchmarkSimTable prints the full-size simulator table once (make bench
// shows it); its time per op is one full table.
func BenchmarkSimTable(b *testing.B) {
	for i := 0; i < b.N; i++ {
		rows := runSimTable(true)
		simOnce.Do(func() { printSimTable(os.Stdout, rows) })
	}
}

// TestPulsedSeeder: a seed that serves in batches every 500 ms
// (transmission) delivers each block about when the latency measured on an
// empty pipeline says it could only start sending it, so no transfer time
// may be left to measure its rate by. Its queue must still grow past the
// unmeasured peer's default (a second of 256 KiB/s: 16 blocks a batch, 512
// KiB/s from such a peer), whatever the phase of its pumps.
func TestPulsedSeeder(t *testing.T) {
	for _, join := range []time.Duration{0, 10 * time.Millisecond, 250 * time.Millisecond, 499 * time.Millisecond} {
		sc := simScenario{name: "pulsed", pieceLen: 256 << 10, pieces: 64, policy: All,
			limit: 2 * time.Minute, seed: 8,
			peers: []simPeerSpec{{rate: 50 * simMBps, lat: time.Millisecond, frac: 1, pulse: 500 * time.Millisecond, join: join}}}
		r := runSim(sc, stratStreaming)
		if !r.completed || r.complete > join+5*time.Second {
			t.Errorf("16 MiB from a seed pumping every 500 ms, joined at %v: complete %v at %v, want within 5 s", join, r.completed, r.complete)
		}
	}
}
