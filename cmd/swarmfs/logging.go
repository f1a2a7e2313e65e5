package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// logFlags are the logging flags of the long-running commands. The
// libraries log through a Logf func(format, args...) (engine.Config,
// cache.Options, session.Config, fs.Options); logf adapts one to a slog
// level, so the libraries stay free of any logging package.
type logFlags struct {
	level  string
	file   string
	format string
}

func (l *logFlags) register(f *flag.FlagSet) {
	f.StringVar(&l.level, "log-level", "info", "least severe messages to log: debug, info, warn or error (-v is --log-level=debug)")
	f.StringVar(&l.file, "log-file", "", "append the log to this file instead of stderr (with --daemon, all of the daemon's output)")
	f.StringVar(&l.format, "log-format", "text", "log format: text or json")
}

// Identical messages past logBurst in logInterval are dropped, and counted.
const (
	logBurst    = 10
	logInterval = 10 * time.Second
)

// open makes the logger the flags ask for; close flushes the count of
// dropped lines and closes the file. verbose (-v) means debug.
func (l *logFlags) open(stderr io.Writer, verbose bool) (logger *slog.Logger, close func(), err error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, nil, usageErr("--log-level %q: want debug, info, warn or error", l.level)
	}
	if verbose {
		level = slog.LevelDebug
	}
	w, closeFile := stderr, func() {}
	if l.file != "" {
		f, err := os.OpenFile(l.file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		w, closeFile = f, func() { f.Close() }
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch l.format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		closeFile()
		return nil, nil, usageErr("--log-format %q: want text or json", l.format)
	}
	rl := newRateLimit(h, logBurst, logInterval)
	return slog.New(rl), func() { rl.flush(); closeFile() }, nil
}

// slogf adapts logger to the Logf of our libraries, at level.
func slogf(logger *slog.Logger, level slog.Level) func(format string, args ...any) {
	return func(format string, args ...any) {
		if logger.Enabled(context.Background(), level) {
			logger.Log(context.Background(), level, strings.TrimSuffix(fmt.Sprintf(format, args...), "\n"))
		}
	}
}

// rateLimit is a slog.Handler that passes at most burst records with the
// same level and message per interval (counted from the first) and, once
// the interval is over, one record saying how many it dropped: a failure
// repeated a thousand times a second costs a few lines, not the disk. It
// is safe for concurrent use.
type rateLimit struct {
	next     slog.Handler
	burst    int
	interval time.Duration
	st       *rateState // shared by the handlers WithAttrs and WithGroup make
}

type rateState struct {
	mu        sync.Mutex // guards the following; never held across next.Handle
	seen      map[string]*rateEntry
	lastSweep time.Time
}

type rateEntry struct {
	start   time.Time
	n       int
	dropped int
	level   slog.Level
	msg     string
}

// maxRateKeys bounds the messages tracked; past it the oldest windows are
// forgotten early.
const maxRateKeys = 4096

var _ slog.Handler = (*rateLimit)(nil)

func newRateLimit(next slog.Handler, burst int, interval time.Duration) *rateLimit {
	return &rateLimit{next: next, burst: burst, interval: interval, st: &rateState{seen: map[string]*rateEntry{}}}
}

func (h *rateLimit) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *rateLimit) WithAttrs(as []slog.Attr) slog.Handler {
	return &rateLimit{next: h.next.WithAttrs(as), burst: h.burst, interval: h.interval, st: h.st}
}

func (h *rateLimit) WithGroup(name string) slog.Handler {
	return &rateLimit{next: h.next.WithGroup(name), burst: h.burst, interval: h.interval, st: h.st}
}

func (h *rateLimit) Handle(ctx context.Context, r slog.Record) error {
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	key := r.Level.String() + "\x00" + r.Message
	st := h.st
	st.mu.Lock()
	var summaries []rateEntry
	if now.Sub(st.lastSweep) >= h.interval || len(st.seen) >= maxRateKeys {
		st.lastSweep = now
		for k, e := range st.seen {
			if now.Sub(e.start) >= h.interval || len(st.seen) >= maxRateKeys {
				if e.dropped > 0 {
					summaries = append(summaries, *e)
				}
				delete(st.seen, k)
			}
		}
	}
	pass := true
	switch e := st.seen[key]; {
	case e == nil || now.Sub(e.start) >= h.interval:
		if e != nil && e.dropped > 0 {
			summaries = append(summaries, *e)
		}
		st.seen[key] = &rateEntry{start: now, n: 1, level: r.Level, msg: r.Message}
	case e.n < h.burst:
		e.n++
	default:
		e.dropped++
		pass = false
	}
	st.mu.Unlock()
	for _, e := range summaries {
		h.summary(ctx, now, e)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *rateLimit) summary(ctx context.Context, now time.Time, e rateEntry) {
	r := slog.NewRecord(now, e.level, fmt.Sprintf("%d more identical messages dropped", e.dropped), 0)
	r.AddAttrs(slog.String("dropped_msg", e.msg), slog.Int("dropped", e.dropped))
	_ = h.next.Handle(ctx, r)
}

// flush writes the counts of the messages dropped so far.
func (h *rateLimit) flush() {
	h.st.mu.Lock()
	var summaries []rateEntry
	for k, e := range h.st.seen {
		if e.dropped > 0 {
			summaries = append(summaries, *e)
		}
		delete(h.st.seen, k)
	}
	h.st.mu.Unlock()
	for _, e := range summaries {
		h.summary(context.Background(), time.Now(), e)
	}
}
