package picker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file simulates a fleet (issue 18): one origin and many hosts that
// all download the same dataset, each host driven by its own Picker with
// the All policy, over links of one capacity (each way; no CPU, no
// latency). It answers what the single-client simulator cannot: whether
// the hosts trade pieces among themselves so that the last host is done
// soon after the first and the origin uploads the dataset only a few
// times.
//
// The model, kept simple on purpose:
//   - Time advances in steps of fleetSim.dt. In a step each uploader
//     shares its link equally among the hosts it has requests from (the
//     request at the head of each host's FIFO), and each host's downlink
//     caps what it takes, scaling every sender down alike; capacity one
//     side leaves unused is not handed to others within the step.
//   - A host is connected to the origin and to about `neighbours` random
//     hosts. A host uploads to hostSlots interested hosts at a time, frees
//     the slot of a host no longer interested at once (checked every
//     100 ms) and, every fsRechoke, gives the slot held longest to a host
//     that waits (tit-for-tat is not modelled: every host is as fast). The
//     origin uploads to originSlots hosts at a time and
//     rotates them like the engine's seeding round robin (rankSeeding): a
//     host keeps its slot until it has taken seedQuota and held it for
//     seedTurn, then the hosts that waited longest come first.
//   - A block is a whole piece; every piece verifies. A host announces a
//     piece (HAVE) to its neighbours the moment it has it. Up to depth
//     requests are outstanding per connection. Cancels that the picker
//     returns (endgame losers) are removed from the uploader's queue.
//     Timeouts are not simulated: every uploader delivers in the end.

// fleetSim describes one fleet.
type fleetSim struct {
	hosts, neighbours int
	pieces            int
	pieceLen          int64
	block             int     // request size
	rate              float64 // every link's capacity, each way, bytes/s
	originSlots       int
	hostSlots         int // hosts each host uploads to at once
	depth             int // outstanding requests per connection
	dt                time.Duration
	limit             time.Duration // simulated time bound
	seed              uint64
	// super makes the origin super-seed as the engine does (superseed.go):
	// it shows each host it uploads to superOffers pieces at a time, the
	// rarest in the fleet, and the next when the host has one while some
	// piece is shown to nobody, or when another host has it, or
	// fsPassOn after the host got it.
	super bool
}

// fsSuperOffers and fsPassOn are the engine's superOffers and superPassOn.
const (
	fsSuperOffers = 2
	fsPassOn      = 20 * time.Second
)

// fleetSimResult is what one fleet run measured.
type fleetSimResult struct {
	done      []time.Duration // each host's completion, sorted; hosts not done are missing
	originUp  int64           // bytes the origin uploaded
	dataset   int64
	ideal     time.Duration // dataset / link rate
	simulated time.Duration
}

// pct is the q-quantile of r.done, nearest rank (0 if empty).
func (r fleetSimResult) pct(q float64) time.Duration {
	if len(r.done) == 0 {
		return 0
	}
	i := max(0, min(len(r.done)-1, int(float64(len(r.done))*q+0.999999)-1))
	return r.done[i]
}

// fsFlow is what one uploader has queued for one host, oldest first.
type fsFlow struct {
	to     int
	reqs   []Request
	left   int64 // bytes left of reqs[0]
	listed bool  // in the uploader's flows
}

// The origin's round robin, as the engine's (choke.go): a slot is kept
// until fsQuota is taken and fsTurn has passed; slots are reviewed every
// fsRechoke.
const (
	fsQuota   = 8 << 20
	fsTurn    = 30 * time.Second
	fsRechoke = 10 * time.Second
)

// fsNode is a host, or (index hosts) the origin.
type fsNode struct {
	p     *Picker // nil for the origin
	conns []int   // connected nodes
	out   map[int]int
	flows []*fsFlow // uploads with requests queued, by host
	flow  map[int]*fsFlow
	got   []int   // blocks received of each piece
	in    float64 // bytes offered to it in the current step
	done  bool

	// The origin's view of this host's slot.
	unchoked    bool
	unchokedAt  time.Duration
	upAtUnchoke int64
	up          int64 // bytes the origin sent it
	offers      []fsOffer

	// A host's own upload slots: the hosts it unchokes, and when.
	slots map[int]time.Duration
}

// fsOffer is a piece the super-seeding origin offered a host.
type fsOffer struct {
	piece int
	got   time.Duration // when the host had it; -1 before
}

type fsDone struct {
	from, to int
	req      Request
}

// runFleetSim runs one fleet until every host is done or fs.limit.
func runFleetSim(fs fleetSim) fleetSimResult {
	rng := rand.New(rand.NewPCG(fs.seed, 18))
	h := fs.hosts
	origin := h
	nodes := make([]*fsNode, h+1)
	for i := range nodes {
		nodes[i] = &fsNode{out: map[int]int{}, flow: map[int]*fsFlow{}, slots: map[int]time.Duration{}}
	}
	total := int64(fs.pieces) * fs.pieceLen
	for i := range h {
		nodes[i].p = New(Config{NumPieces: fs.pieces, PieceLength: fs.pieceLen, TotalLength: total,
			BlockSize: fs.block, Background: All, Seed: uint64(i) + 1})
		nodes[i].got = make([]int, fs.pieces)
	}
	connect := func(a, b int) {
		nodes[a].conns = append(nodes[a].conns, b)
		nodes[b].conns = append(nodes[b].conns, a)
		if a < h {
			nodes[a].p.AddPeer(PeerID(b))
		}
		if b < h {
			nodes[b].p.AddPeer(PeerID(a))
		}
	}
	// Each host links to about `neighbours` random others.
	k := min(fs.neighbours, h-1)
	for i := range h {
		for tries := 0; len(nodes[i].conns) < k && tries < 20*k; tries++ {
			j := rng.IntN(h)
			if j == i || slices.Contains(nodes[i].conns, j) || len(nodes[j].conns) >= k+k/2+1 {
				continue
			}
			connect(i, j)
		}
	}
	for i := range h {
		connect(i, origin)
		if !fs.super {
			nodes[i].p.PeerHaveAll(PeerID(origin))
		}
	}
	// The super-seed's view: hosts that have each piece, offers standing.
	holders := make([]int, fs.pieces)
	offered := make([]int, fs.pieces)
	offeredTo := make([][]int, fs.pieces) // hosts with an offer of each piece
	unshown := fs.pieces                  // pieces no host has or is offered
	count := func(pc, dh, do int) {
		if holders[pc]+offered[pc] == 0 {
			unshown--
		}
		holders[pc] += dh
		offered[pc] += do
		if holders[pc]+offered[pc] == 0 {
			unshown++
		}
	}

	var (
		res     = fleetSimResult{dataset: total, ideal: time.Duration(float64(total) / fs.rate * float64(time.Second))}
		now     time.Duration
		nDone   int
		dtSec   = fs.dt.Seconds()
		budget  = fs.rate * dtSec
		done    []fsDone
		waiting = make([]int, 0, h) // hosts the origin chokes, longest waiting first
	)
	for i := range h {
		waiting = append(waiting, i)
	}
	rng.Shuffle(len(waiting), func(a, b int) { waiting[a], waiting[b] = waiting[b], waiting[a] })
	wall := func() time.Time { return t0.Add(now) }
	dropQueued := func(u, d int, r Request) {
		f := nodes[u].flow[d]
		if f == nil {
			return
		}
		if i := slices.Index(f.reqs, r); i >= 0 {
			f.reqs = slices.Delete(f.reqs, i, i+1)
			if i == 0 && len(f.reqs) > 0 {
				f.left = int64(f.reqs[0].Length)
			}
			nodes[d].out[u]--
		}
	}
	fill := func(d, u int) {
		n := nodes[d]
		if n.done || u == origin && !n.unchoked {
			return
		}
		free := fs.depth - n.out[u]
		if free <= 0 || !n.p.Interesting(PeerID(u)) {
			return
		}
		reqs := n.p.Next(PeerID(u), wall(), free)
		for _, c := range n.p.Cancels() {
			dropQueued(int(c.Peer), d, c.Request)
		}
		if len(reqs) == 0 {
			return
		}
		up := nodes[u]
		f := up.flow[d]
		if f == nil {
			f = &fsFlow{to: d}
			up.flow[d] = f
		}
		if len(f.reqs) == 0 {
			f.left = int64(reqs[0].Length)
		}
		if !f.listed {
			f.listed = true
			up.flows = append(up.flows, f)
		}
		f.reqs = append(f.reqs, reqs...)
		n.out[u] += len(reqs)
	}
	fillAll := func(d int) {
		for _, u := range nodes[d].conns {
			fill(d, u)
		}
	}
	// superPick is the piece d lacks and is not offered with the fewest
	// holders and offers, ties at random; -1 if none.
	superPick := func(d int) int {
		n := nodes[d]
		best, bestA := -1, 0
		start := rng.IntN(fs.pieces)
		for k := range fs.pieces {
			pc := (start + k) % fs.pieces
			if n.p.Have(pc) || slices.ContainsFunc(n.offers, func(o fsOffer) bool { return o.piece == pc }) {
				continue
			}
			if a := holders[pc] + offered[pc]; best < 0 || a < bestA {
				best, bestA = pc, a
			}
		}
		return best
	}
	superFill := func(d int) {
		n := nodes[d]
		if !fs.super || !n.unchoked || n.done {
			return
		}
		for len(n.offers) < fsSuperOffers {
			pc := superPick(d)
			if pc < 0 {
				return
			}
			n.offers = append(n.offers, fsOffer{piece: pc, got: -1})
			count(pc, 0, 1)
			offeredTo[pc] = append(offeredTo[pc], d)
			n.p.PeerHave(PeerID(origin), pc)
		}
	}
	superDrop := func(d int, keep func(o fsOffer) bool) {
		n := nodes[d]
		n.offers = slices.DeleteFunc(n.offers, func(o fsOffer) bool {
			if keep(o) {
				return false
			}
			count(o.piece, 0, -1)
			offeredTo[o.piece] = slices.DeleteFunc(offeredTo[o.piece], func(i int) bool { return i == d })
			return true
		})
	}
	// superHas is told that host d has piece pc.
	superHas := func(d, pc int) {
		count(pc, 1, 0)
		if !fs.super {
			return
		}
		for _, i := range slices.Clone(offeredTo[pc]) {
			if i != d {
				superDrop(i, func(o fsOffer) bool { return o.piece != pc }) // passed on
				superFill(i)
				fill(i, origin)
			}
		}
		n := nodes[d]
		for k := range n.offers {
			if n.offers[k].piece == pc {
				n.offers[k].got = now
				superDrop(d, func(o fsOffer) bool { return o.got < 0 || unshown == 0 && holders[o.piece] < 2 })
				superFill(d)
				return
			}
		}
	}
	setChoke := func(d int, choke bool) {
		n := nodes[d]
		if n.unchoked == !choke {
			return
		}
		n.unchoked = !choke
		n.p.PeerChoked(PeerID(origin), choke)
		if choke {
			// The picker forgot the requests; the origin drops them.
			if f := nodes[origin].flow[d]; f != nil {
				f.reqs = nil
			}
			n.out[origin] = 0
			superDrop(d, func(fsOffer) bool { return false })
			waiting = append(waiting, d)
			return
		}
		n.unchokedAt, n.upAtUnchoke = now, n.up
		superFill(d)
		fill(d, origin)
	}
	// rechoke keeps the hosts still within their turn and gives the other
	// slots to the hosts that waited longest (done hosts are not
	// interested and leave their slot).
	rechoke := func() {
		held := 0
		for i := range h {
			n := nodes[i]
			if !n.unchoked {
				continue
			}
			if !n.done && (n.up-n.upAtUnchoke < fsQuota || now-n.unchokedAt < fsTurn) {
				held++
			} else {
				setChoke(i, true)
			}
		}
		for held < fs.originSlots && len(waiting) > 0 {
			d := waiting[0]
			waiting = waiting[1:]
			if nodes[d].done {
				continue
			}
			setChoke(d, false)
			held++
		}
	}
	// hostChoke changes whether host u uploads to host d.
	hostChoke := func(u, d int, choke bool) {
		if _, on := nodes[u].slots[d]; on == !choke {
			return
		}
		if choke {
			delete(nodes[u].slots, d)
			nodes[d].p.PeerChoked(PeerID(u), true)
			if f := nodes[u].flow[d]; f != nil {
				f.reqs = nil
			}
			nodes[d].out[u] = 0
			return
		}
		nodes[u].slots[d] = now
		nodes[d].p.PeerChoked(PeerID(u), false)
		fill(d, u)
	}
	// hostSlots frees the slots of hosts no longer interested, gives free
	// slots to interested hosts (in a random order) and, with rotate,
	// takes the slot held longest from one host for one that waits, as an
	// optimistic unchoke rotates.
	hostSlotsRun := func(u int, rotate bool) {
		n := nodes[u]
		var wait []int
		for _, d := range n.conns {
			if d == origin {
				continue
			}
			_, on := n.slots[d]
			in := !nodes[d].done && nodes[d].p.Interesting(PeerID(u))
			switch {
			case on && !in:
				hostChoke(u, d, true)
			case !on && in:
				wait = append(wait, d)
			}
		}
		rng.Shuffle(len(wait), func(a, b int) { wait[a], wait[b] = wait[b], wait[a] })
		if rotate && len(wait) > 0 && len(n.slots) >= fs.hostSlots {
			oldest, at := -1, time.Duration(0)
			for d, t := range n.slots {
				if oldest < 0 || t < at || t == at && d < oldest {
					oldest, at = d, t
				}
			}
			hostChoke(u, oldest, true)
		}
		for len(n.slots) < fs.hostSlots && len(wait) > 0 {
			hostChoke(u, wait[0], false)
			wait = wait[1:]
		}
	}
	for i := range h {
		fillAll(i)
	}
	nextChoke := time.Duration(0)
	for ; nDone < h && now < fs.limit; now += fs.dt {
		if fs.super && now%time.Second == 0 {
			for i := range h {
				if n := nodes[i]; len(n.offers) > 0 {
					superDrop(i, func(o fsOffer) bool { return o.got < 0 || now-o.got < fsPassOn })
					superFill(i)
					fill(i, origin)
				}
			}
		}
		if now%(100*time.Millisecond) == 0 {
			rotate := now%fsRechoke == 0
			for i := range h {
				hostSlotsRun(i, rotate)
			}
		}
		if now >= nextChoke {
			rechoke()
			nextChoke += fsRechoke
		}
		// Offer: each uploader splits its link among the hosts it serves.
		for _, u := range nodes {
			u.flows = slices.DeleteFunc(u.flows, func(f *fsFlow) bool {
				f.listed = len(f.reqs) > 0
				return !f.listed
			})
			for _, f := range u.flows {
				nodes[f.to].in += budget / float64(len(u.flows))
			}
		}
		// Transfer: each host's downlink scales its senders alike.
		done = done[:0]
		for ui, u := range nodes {
			if len(u.flows) == 0 {
				continue
			}
			share := budget / float64(len(u.flows))
			for _, f := range u.flows {
				give := share * min(1, budget/nodes[f.to].in)
				for give > 0 && len(f.reqs) > 0 {
					step := min(float64(f.left), give)
					f.left -= int64(step)
					give -= step
					if ui == origin {
						res.originUp += int64(step)
						nodes[f.to].up += int64(step)
					}
					if f.left > 0 {
						break
					}
					done = append(done, fsDone{from: ui, to: f.to, req: f.reqs[0]})
					f.reqs = f.reqs[1:]
					if len(f.reqs) > 0 {
						f.left = int64(f.reqs[0].Length)
					}
				}
			}
		}
		for _, n := range nodes {
			n.in = 0
		}
		// Deliveries: verify, announce, refill.
		for _, e := range done {
			n := nodes[e.to]
			n.out[e.from]--
			cancels, useful := n.p.BlockReceived(PeerID(e.from), e.req, wall())
			for _, c := range cancels {
				dropQueued(int(c.Peer), e.to, c.Request)
			}
			if useful {
				n.got[e.req.Piece]++
			}
			if useful && int64(n.got[e.req.Piece])*int64(fs.block) >= fs.pieceLen {
				n.p.SetHave(e.req.Piece)
				for _, c := range n.p.Cancels() {
					dropQueued(int(c.Peer), e.to, c.Request)
				}
				superHas(e.to, e.req.Piece)
				for _, j := range n.conns {
					if j != origin {
						nodes[j].p.PeerHave(PeerID(e.to), e.req.Piece)
						fill(j, e.to)
					}
				}
				if !n.done && n.p.NumHave() == fs.pieces {
					n.done = true
					nDone++
					res.done = append(res.done, now+fs.dt)
				}
			}
			fillAll(e.to)
		}
	}
	res.simulated = now
	slices.Sort(res.done)
	return res
}

// fleetSimRun is one fleet's figures beside one host alone.
type fleetSimRun struct {
	fs           fleetSim
	fleet, alone fleetSimResult
}

// runFleetSimPair runs fs and the same setting with one host (whose
// origin does not super-seed: the engine shows a lone leecher everything).
func runFleetSimPair(fs fleetSim) fleetSimRun {
	alone := fs
	alone.hosts, alone.super = 1, false
	return fleetSimRun{fs: fs, fleet: runFleetSim(fs), alone: runFleetSim(alone)}
}

// fleetSimReport is the table of runs, with the goals checked for
// each: the last host within 2x one host alone, p99 at most 1.8x p50, the
// origin at most 3x the dataset.
func fleetSimReport(runs ...fleetSimRun) (string, []string) {
	s := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	var b strings.Builder
	fs := runs[0].fs
	fmt.Fprintf(&b, "fleet simulation: %d hosts (%d neighbours, %d upload slots each), one origin (%d upload slots), %d pieces of %d KiB (%d MiB), links %.0f Mbit/s\n",
		fs.hosts, fs.neighbours, fs.hostSlots, fs.originSlots, fs.pieces, fs.pieceLen>>10, runs[0].fleet.dataset>>20, fs.rate*8/1e6)
	fmt.Fprintf(&b, "| origin | hosts done | p50 | p90 | p99 | max | one host alone | ideal | max / alone | p99 / p50 | origin sent / dataset |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	var miss []string
	for _, r := range runs {
		fleet, a := r.fleet, r.alone.pct(1)
		name := "seed"
		if r.fs.super {
			name = "super-seed"
		}
		fmt.Fprintf(&b, "| %s | %d / %d | %s | %s | %s | %s | %s | %s | %.2fx | %.2f | %.2fx |\n",
			name, len(fleet.done), r.fs.hosts, s(fleet.pct(0.5)), s(fleet.pct(0.9)), s(fleet.pct(0.99)), s(fleet.pct(1)),
			s(a), s(fleet.ideal), float64(fleet.pct(1))/float64(max(a, 1)),
			float64(fleet.pct(0.99))/float64(max(fleet.pct(0.5), 1)), float64(fleet.originUp)/float64(fleet.dataset))
		if len(fleet.done) < r.fs.hosts {
			miss = append(miss, fmt.Sprintf("%s: %d of %d hosts done in %v", name, len(fleet.done), r.fs.hosts, r.fs.limit))
		}
		if fleet.pct(1) > 2*a {
			miss = append(miss, fmt.Sprintf("%s: last host %v, more than 2x one host alone (%v)", name, fleet.pct(1), a))
		}
		if 10*fleet.pct(0.99) > 18*fleet.pct(0.5) {
			miss = append(miss, fmt.Sprintf("%s: p99 %v, more than 1.8x p50 (%v)", name, fleet.pct(0.99), fleet.pct(0.5)))
		}
		if fleet.originUp > 3*fleet.dataset {
			miss = append(miss, fmt.Sprintf("%s: the origin sent %.2fx the dataset, more than 3x", name, float64(fleet.originUp)/float64(fleet.dataset)))
		}
	}
	return b.String(), miss
}

// fleetSimSmall is the fleet go test runs: 100 hosts, 64 MiB.
func fleetSimSmall() fleetSim {
	return fleetSim{hosts: 100, neighbours: 20, pieces: 64, pieceLen: 1 << 20, block: 256 << 10, rate: 100 * mbit,
		originSlots: 5, hostSlots: 5, depth: 4, dt: 20 * time.Millisecond, limit: 30 * time.Minute, seed: 1, super: true}
}

// fleetSimFull is the issue's: 1,000 hosts, 1 GiB, 100 Mbit/s links, the
// origin super-seeding (what docs/fleet.md tells a fleet to run).
func fleetSimFull() fleetSim {
	fs := fleetSimSmall()
	fs.hosts, fs.pieces, fs.pieceLen = 1000, 512, 2<<20 // 1 GiB
	return fs
}

// TestFleetSim: a fleet of 100 hosts meets the goals in the
// simulator, with a super-seeding origin and with a plain one, and
// super-seeding costs the origin less.
func TestFleetSim(t *testing.T) {
	super := runFleetSimPair(fleetSimSmall())
	plainFS := fleetSimSmall()
	plainFS.super = false
	plain := runFleetSimPair(plainFS)
	table, miss := fleetSimReport(super, plain)
	t.Log("\n" + table)
	for _, m := range miss {
		t.Error(m)
	}
	if super.fleet.originUp >= plain.fleet.originUp {
		t.Errorf("the super-seeding origin sent %d bytes, no less than the plain one's %d", super.fleet.originUp, plain.fleet.originUp)
	}
}

// BenchmarkFleetSim is the 1,000-host fleet (1 GiB, 100 Mbit/s
// links, super-seeding origin): minutes of CPU. It prints the table once
// and reports the figures.
func BenchmarkFleetSim(b *testing.B) {
	for range b.N {
		r := runFleetSimPair(fleetSimFull())
		table, miss := fleetSimReport(r)
		b.ReportMetric(r.fleet.pct(0.5).Seconds(), "p50-s")
		b.ReportMetric(r.fleet.pct(0.99).Seconds(), "p99-s")
		b.ReportMetric(r.fleet.pct(1).Seconds(), "max-s")
		b.ReportMetric(r.alone.pct(1).Seconds(), "alone-s")
		b.ReportMetric(float64(r.fleet.originUp)/float64(r.fleet.dataset), "origin-x")
		fleetSimOnce.Do(func() {
			fmt.Print(table)
			for _, m := range miss {
				fmt.Println("goal missed:", m)
			}
		})
	}
}

var fleetSimOnce sync.Once
