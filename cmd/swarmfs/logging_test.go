package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	var buf bytes.Buffer
	rl := newRateLimit(slog.NewJSONHandler(&buf, nil), 3, time.Minute)
	log := slog.New(rl)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	emit := func(at time.Duration, msg string) {
		r := slog.NewRecord(t0.Add(at), slog.LevelWarn, msg, 0)
		if err := log.Handler().Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		emit(time.Duration(i)*time.Millisecond, "tracker down")
	}
	emit(2*time.Second, "other")
	emit(61*time.Second, "tracker down") // a new window: passes, after the count
	emit(62*time.Second, "tracker down")
	emit(62*time.Second, "tracker down")
	emit(62*time.Second, "tracker down") // the 4th of the window
	rl.flush()
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		msgs = append(msgs, m["msg"].(string))
	}
	want := []string{"tracker down", "tracker down", "tracker down", "other",
		"997 more identical messages dropped", "tracker down", "tracker down", "tracker down",
		"1 more identical messages dropped"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Fatalf("logged\n%q\nwant\n%q", msgs, want)
	}
}

func TestLogFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "log")
	lf := logFlags{level: "warn", file: file, format: "json"}
	logger, closeLog, err := lf.open(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	slogf(logger, slog.LevelInfo)("hidden %d", 1)
	slogf(logger, slog.LevelError)("shown %d\n", 2)
	closeLog()
	b, _ := os.ReadFile(file)
	if strings.Contains(string(b), "hidden") || !strings.Contains(string(b), `"msg":"shown 2"`) {
		t.Fatalf("log file:\n%s", b)
	}
	var stderr bytes.Buffer
	lf = logFlags{level: "error", format: "text"}
	logger, closeLog, _ = lf.open(&stderr, true) // -v: debug
	logger.Debug("peer connected")
	closeLog()
	if !strings.Contains(stderr.String(), "level=DEBUG msg=\"peer connected\"") {
		t.Fatalf("-v did not log debug: %q", stderr.String())
	}
	for _, bad := range []logFlags{{level: "loud", format: "text"}, {level: "info", format: "xml"}} {
		if _, _, err := bad.open(&stderr, false); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
