package main

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeb builds the package as "make deb" does (scripts/mkdeb.sh, from
// the test's binary), checks its control fields, installs it with dpkg into
// a fresh folder root and runs the installed "swarmfs version".
func TestDeb(t *testing.T) {
	requireProgs(t, "dpkg-deb", "dpkg", "gzip", "du")
	bin := swarmfsBin(t)
	out := t.TempDir()
	deb := strings.TrimSpace(runProg(t, 2*time.Minute, "../../scripts/mkdeb.sh", bin, out))
	if filepath.Dir(deb) != out || !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("mkdeb.sh printed %q", deb)
	}
	control := runProg(t, time.Minute, "dpkg-deb", "-f", deb)
	for _, want := range []string{"Package: swarmfs\n", "Depends: fuse3\n", "Version: 0.", "Description: "} {
		if !strings.Contains(control, want) {
			t.Errorf("control lacks %q:\n%s", want, control)
		}
	}

	root := t.TempDir()
	for _, d := range []string{"info", "updates", "triggers"} {
		os.MkdirAll(filepath.Join(root, "var/lib/dpkg", d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	// fuse3 is not in the fresh root: the dependency is declared, not met.
	runProg(t, 2*time.Minute, "dpkg", "--root="+root, "--force-depends", "--force-not-root", "-i", deb)
	if st := runProg(t, time.Minute, "dpkg", "--root="+root, "-s", "swarmfs"); !strings.Contains(st, "Status: install ok installed") {
		t.Fatalf("dpkg -s swarmfs:\n%s", st)
	}
	v := runProg(t, time.Minute, filepath.Join(root, "usr/bin/swarmfs"), "version")
	if !strings.HasPrefix(v, "swarmfs ") {
		t.Fatalf("installed swarmfs version: %q", v)
	}
	if target, err := os.Readlink(filepath.Join(root, "sbin", helperName)); err != nil || target != "/usr/bin/swarmfs" {
		t.Errorf("sbin/%s -> %q, %v; want /usr/bin/swarmfs", helperName, target, err)
	}
	for _, f := range []string{"usr/share/bash-completion/completions/swarmfs", "usr/share/zsh/vendor-completions/_swarmfs", "lib/systemd/system/swarmfs@.service"} {
		if st, err := os.Stat(filepath.Join(root, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The packaged page is the committed one.
	f, err := os.Open(filepath.Join(root, "usr/share/man/man1/swarmfs.1.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(zr)
	committed, _ := os.ReadFile(manPath)
	if string(page) != string(committed) {
		t.Error("the packaged man page differs from docs/swarmfs.1")
	}
}
