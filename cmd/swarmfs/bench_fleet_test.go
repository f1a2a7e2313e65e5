package main

// BenchmarkFleet: issue 18's fleet bench, run by scripts/fleet.sh (make
// fleet, make bench). One dataset, one origin, N hosts, each on its own
// capped link (fleet_net_test.go); runs, each on a fresh network: one host
// alone (the scale), the fleet, half the fleet (is the run bound by the
// links or by the machine's cores?), and the fleet finding its peers by
// LSD alone. It writes the table into docs/fleet.md and, per run, a CSV of
// the samples (time, origin bytes sent, hosts done) beside it, and a plot
// when gnuplot is there.

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Knobs, from the environment.
const (
	envFleetHosts = "SWARMFS_FLEET_HOSTS" // hosts in the fleet (default 20)
	envFleetMB    = "SWARMFS_FLEET_MB"    // dataset size in MiB (default 128)
	envFleetMbit  = "SWARMFS_FLEET_MBIT"  // every link's cap in Mbit/s, each way (default 20)
	// envFleetMount: "1" has each host mount and read every file at once
	// instead of "swarmfs get".
	envFleetMount = "SWARMFS_FLEET_MOUNT"
	// envFleetRuns: comma-separated, of alone, fleet, super (the fleet
	// with the origin super-seeding), half, lsd (default all, in that
	// order).
	envFleetRuns = "SWARMFS_FLEET_RUNS"
	// envFleetFlags: extra flags for every host's swarmfs, space-separated.
	envFleetFlags = "SWARMFS_FLEET_HOST_FLAGS"
	// envFleetDoc: the Markdown file whose table between fleetMarkBegin
	// and fleetMarkEnd this run replaces (default none; fleet.sh sets
	// docs/fleet.md). The CSVs and the plot go beside it.
	envFleetDoc = "SWARMFS_FLEET_DOC"
)

const (
	fleetMarkBegin = "<!-- BEGIN BenchmarkFleet -->"
	fleetMarkEnd   = "<!-- END BenchmarkFleet -->"
)

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// fleetRunRow is one run's line of the table.
type fleetRunRow struct {
	name string
	cfg  fleetConfig
	res  fleetResult
}

func BenchmarkFleet(b *testing.B) {
	// "make bench" first runs every package's micro-benchmarks with -bench
	// . and the default -benchtime; this one takes minutes and belongs to
	// scripts/fleet.sh, which asks for one iteration.
	if bt := flag.Lookup("test.benchtime"); bt == nil || !strings.HasSuffix(bt.Value.String(), "x") {
		b.Skip("fleet in network namespaces, minutes long: run with -benchtime 1x (scripts/fleet.sh)")
	}
	hosts := envInt(b, envFleetHosts, 20)
	mb := envInt(b, envFleetMB, 128)
	rate := int64(envInt(b, envFleetMbit, 20)) * 1e6
	runs := []string{"alone", "fleet", "super", "half", "lsd"}
	if v := os.Getenv(envFleetRuns); v != "" {
		runs = strings.Split(v, ",")
	}
	work := b.TempDir()
	data := makeFleetData(b, filepath.Join(work, "origin"), int64(mb)<<20, "http://"+fleetIP(0)+":6969/announce")
	ideal := time.Duration(float64(data.Size*8) / float64(rate) * float64(time.Second))
	b.Logf("dataset: %d files, %d bytes; links %d Mbit/s; ideal %v", len(data.Files), data.Size, rate/1e6, ideal.Round(time.Millisecond))
	var rows []fleetRunRow
	for _, name := range runs {
		cfg := fleetConfig{
			Hosts:     hosts,
			Rate:      rate,
			Mount:     os.Getenv(envFleetMount) == "1",
			HostFlags: strings.Fields(os.Getenv(envFleetFlags)),
			Timeout:   20*ideal + 2*time.Minute,
		}
		switch name {
		case "alone":
			cfg.Hosts = 1
		case "fleet":
		case "super":
			cfg.OriginFlags = []string{"--super-seed"}
		case "half":
			cfg.Hosts = max(1, hosts/2)
		case "lsd":
			cfg.LSD = true
		default:
			b.Fatalf("%s: unknown run %q", envFleetRuns, name)
		}
		b.Run(name, func(b *testing.B) {
			dir := filepath.Join(work, name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			var res fleetResult
			for range b.N {
				res = runFleet(b, cfg, data, dir)
			}
			b.ReportMetric(pct(res.Done, 0.5).Seconds(), "p50-s")
			b.ReportMetric(pct(res.Done, 1).Seconds(), "max-s")
			b.ReportMetric(float64(res.OriginUp)/float64(data.Size), "origin-x")
			rows = append(rows, fleetRunRow{name: name, cfg: cfg, res: res})
			b.Logf("%s", fleetLine(name, cfg, res, data.Size, ideal, rows))
		})
		if err := os.RemoveAll(filepath.Join(work, name)); err != nil {
			b.Fatal(err)
		}
	}
	table := fleetTable(rows, data, rate, ideal)
	fmt.Println(table)
	if doc := os.Getenv(envFleetDoc); doc != "" {
		writeFleetDoc(b, doc, table, rows)
	}
}

// pct is the q-quantile of sorted ds, nearest rank.
func pct(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// alone is the "alone" run's max, if it ran.
func alone(rows []fleetRunRow) time.Duration {
	for _, r := range rows {
		if r.name == "alone" {
			return pct(r.res.Done, 1)
		}
	}
	return 0
}

func fleetLine(name string, cfg fleetConfig, res fleetResult, size int64, ideal time.Duration, rows []fleetRunRow) string {
	disc := "tracker"
	if cfg.LSD {
		disc = "LSD"
	}
	vsAlone := "-"
	if a := alone(rows); a > 0 {
		vsAlone = fmt.Sprintf("%.2fx", float64(pct(res.Done, 1))/float64(a))
	}
	self := "-"
	if res.OriginSelf > 0 {
		self = fmt.Sprintf("%.2fx", res.OriginSelf)
	}
	origin := "seed"
	if len(cfg.OriginFlags) > 0 {
		origin = "seed " + strings.Join(cfg.OriginFlags, " ")
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %s | %s | %.2fx | %s | %.2f | %.2fx (%s) | %.2f / %.2f |",
		name, cfg.Hosts, disc, origin,
		secs(pct(res.Done, 0.5)), secs(pct(res.Done, 0.9)), secs(pct(res.Done, 0.99)), secs(pct(res.Done, 1)),
		float64(pct(res.Done, 1))/float64(ideal), vsAlone,
		float64(pct(res.Done, 0.99))/float64(max(1, pct(res.Done, 0.5))),
		float64(res.OriginUp)/float64(size), self,
		res.CPU.Seconds()/res.Wall.Seconds(), res.MachineBusy)
}

func fleetTable(rows []fleetRunRow, data *fleetData, rate int64, ideal time.Duration) string {
	var s strings.Builder
	mode := "swarmfs get"
	if len(rows) > 0 && rows[0].cfg.Mount {
		mode = "swarmfs mount, every file read at once"
	}
	fmt.Fprintf(&s, "Dataset %.0f MiB in %d files (3 large, 16 medium, the rest small), 256 KiB pieces; every link %d Mbit/s each way; hosts: %s. Ideal (dataset / link rate): %s. Measured %s.\n\n",
		float64(data.Size)/(1<<20), len(data.Files), rate/1e6, mode, secs(ideal), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	s.WriteString("| run | hosts | discovery | origin | p50 | p90 | p99 | max | max / ideal | max / alone | p99 / p50 | origin sent / dataset (its own count) | swarmfs cores / machine busy |\n")
	s.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var done []fleetRunRow
	for _, r := range rows {
		done = append(done, r)
		s.WriteString(fleetLine(r.name, r.cfg, r.res, data.Size, ideal, done) + "\n")
	}
	return s.String()
}

// writeFleetDoc replaces the table in doc, writes each run's samples as
// fleet-RUN.csv beside it, and plots them into fleet.png with gnuplot when
// it is installed.
func writeFleetDoc(tb testing.TB, doc, table string, rows []fleetRunRow) {
	tb.Helper()
	old, err := os.ReadFile(doc)
	if err != nil {
		tb.Fatal(err)
	}
	i := strings.Index(string(old), fleetMarkBegin)
	j := strings.Index(string(old), fleetMarkEnd)
	if i < 0 || j < i {
		tb.Fatalf("%s has no %s ... %s", doc, fleetMarkBegin, fleetMarkEnd)
	}
	out := string(old[:i]) + fleetMarkBegin + "\n" + table + string(old[j:])
	if err := os.WriteFile(doc, []byte(out), 0o644); err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Dir(doc)
	var csvs []string
	for _, r := range rows {
		var c strings.Builder
		c.WriteString("seconds,origin_sent_bytes,hosts_done,hosts\n")
		for _, s := range r.res.Samples {
			fmt.Fprintf(&c, "%.3f,%d,%d,%d\n", s.At.Seconds(), s.OriginUp, s.Done, r.cfg.Hosts)
		}
		p := filepath.Join(dir, "fleet-"+r.name+".csv")
		if err := os.WriteFile(p, []byte(c.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
		csvs = append(csvs, r.name)
	}
	if _, err := exec.LookPath("gnuplot"); err != nil {
		tb.Logf("gnuplot is not installed: no plot (the CSVs are in %s)", dir)
		return
	}
	script := fleetPlot(csvs)
	cmd := exec.Command("gnuplot")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Errorf("gnuplot: %v\n%s", err, out)
	}
}

// fleetPlot is the gnuplot script: hosts done over time (top), the
// origin's upload rate over time (bottom, over 1 s: every fourth sample),
// one line per run.
func fleetPlot(runs []string) string {
	var top, bottom []string
	for _, r := range runs {
		f := "fleet-" + r + ".csv"
		top = append(top, fmt.Sprintf("'%s' skip 1 using 1:(100*$3/$4) with steps title '%s'", f, r))
		bottom = append(bottom, fmt.Sprintf("'%s' skip 1 every 4 using 1:(d=$2-p, dt=$1-t, p=$2, t=$1, dt>0 ? d*8/dt/1e6 : 1/0) with lines title '%s'", f, r))
	}
	return strings.Join([]string{
		"set terminal pngcairo size 900,700 noenhanced",
		"set output 'fleet.png'",
		"set datafile separator ','",
		"set key left top",
		"set multiplot layout 2,1",
		"set ylabel 'hosts done (%)'",
		"set xlabel 'seconds since the hosts started'",
		"plot " + strings.Join(top, ", "),
		"set ylabel 'origin upload (Mbit/s)'",
		"p=0; t=0",
		"plot " + strings.Join(bottom, ", "),
		"unset multiplot",
	}, "\n") + "\n"
}
