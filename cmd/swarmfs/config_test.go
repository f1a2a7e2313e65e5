package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	os.WriteFile(path, []byte(`# swarmfs settings
cache-size = 1GiB
listen = 127.0.0.1:7000
  no-dht = true
download = "all"
peer = 127.0.0.1:1
peer = 127.0.0.1:2
--read-timeout=1m
`), 0o644)
	env := map[string]string{"SWARMFS_CACHE_SIZE": "20GiB", "SWARMFS_LISTEN": "127.0.0.1:7001", "SWARMFS_NO_LSD": "1", "SWARMFS_DATA_DIR": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f := commandFlags("mount")
	if err := f.Parse([]string{"--listen", "127.0.0.1:7002", "/mnt"}); err != nil {
		t.Fatal(err)
	}
	settings, err := applySettings(f, lookup, path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]setting{}
	for _, s := range settings {
		got[s.name] = s
	}
	want := map[string][2]string{
		"listen":       {"127.0.0.1:7002", "command line"},
		"cache-size":   {"20GiB", "environment SWARMFS_CACHE_SIZE"},
		"no-lsd":       {"true", "environment SWARMFS_NO_LSD"},
		"no-dht":       {"true", "config " + path + ":4"},
		"download":     {"all", "config " + path + ":5"},
		"peer":         {"127.0.0.1:1,127.0.0.1:2", "config " + path + ":7"},
		"read-timeout": {"1m0s", "config " + path + ":8"},
		"data-dir":     {defaultDataDir(), "default"},
	}
	for name, w := range want {
		if s := got[name]; s.value != w[0] || s.source != w[1] {
			t.Errorf("%s = %q from %q; want %q from %q", name, s.value, s.source, w[0], w[1])
		}
	}
	if f.Arg(0) != "/mnt" {
		t.Errorf("arguments lost: %q", f.Args())
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"unknown name", "cache-size = 1GiB\nfrob = 2\n", nil, `:2: unknown setting "frob"`},
		{"no equals", "cache-size 1GiB\n", nil, ":1: want name = value"},
		{"bad value in file", "read-timeout = soon\n", nil, `read-timeout = "soon"`},
		{"bad value in env", "", map[string]string{"SWARMFS_NO_DHT": "maybe"}, `SWARMFS_NO_DHT="maybe"`},
		{"bad quote", "listen = \"x\n", nil, "bad quoted value"},
		// Another command's setting is fine: one file serves all.
		{"other command's", "piece-length = 1MiB\n", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config")
			os.WriteFile(path, []byte(tc.file), 0o644)
			f := commandFlags("mount")
			f.Parse(nil)
			_, err := applySettings(f, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }, path)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestConfigCommand runs "swarmfs config" with a config file and the
// environment, and every command parses through parseFlags.
func TestConfigCommand(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "swarmfs"), 0o755)
	os.WriteFile(filepath.Join(dir, "swarmfs", "config"), []byte("cache-size = 1GiB\nmax-upload-rate = 1MB\ncomment = \"hi # there\"\n"), 0o644)
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("SWARMFS_CONFIG", "")
	t.Setenv("SWARMFS_MAX_UPLOAD_RATE", "2MB")
	code, out, errOut := runCmd("config", "--no-pex")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"cache-size = 1GiB", "# config " + filepath.Join(dir, "swarmfs", "config") + ":1",
		"max-upload-rate = 2MB", "# environment SWARMFS_MAX_UPLOAD_RATE", "no-pex = true", "# command line", "read-timeout = 10m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("swarmfs config lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCmd("config", "create")
	if code != 0 || !strings.Contains(out, `comment = "hi # there"`) {
		t.Errorf("swarmfs config create: exit %d\n%s", code, out)
	}
	for _, c := range commands {
		f := commandFlags(c.name)
		if f == nil {
			continue
		}
		var names []string
		f.VisitAll(func(fl *flag.Flag) { names = append(names, fl.Name) })
		if len(names) == 0 {
			t.Errorf("%s: captured no flags", c.name)
		}
	}
	if commandFlags("status").Lookup("data-dir") == nil {
		t.Error("status does not parse through parseFlags")
	}
}
