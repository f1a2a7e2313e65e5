package main

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// flagNames lists the flags "swarmfs CMD --help" shows.
func flagNames(t *testing.T, cmd string) []string {
	t.Helper()
	var out bytes.Buffer
	run([]string{cmd, "--help"}, &out, &out)
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(out.String(), -1) {
		names = append(names, m[1])
	}
	if len(names) < 10 {
		t.Fatalf("swarmfs %s --help shows %d flags:\n%s", cmd, len(names), out.String())
	}
	return names
}

// TestServeSharesMountFlags: serve takes every flag of mount but those of
// the FUSE mount and the daemon (they set up their session, cache and log
// with the same code), and its logging flags work.
func TestServeSharesMountFlags(t *testing.T) {
	serve := flagNames(t, "serve")
	for _, name := range flagNames(t, "mount") {
		switch name {
		case "allow-other", "debug-fuse", "daemon":
			continue
		}
		if !slices.Contains(serve, name) {
			t.Errorf("mount has --%s, serve does not", name)
		}
	}
	var out bytes.Buffer
	code := run([]string{"serve", "--data-dir", t.TempDir(), "--http", "127.0.0.1:0", "--log-format", "xml"}, &out, &out)
	if code != 2 || !strings.Contains(out.String(), `--log-format "xml"`) {
		t.Errorf("serve --log-format xml: exit %d: %s", code, out.String())
	}
}
