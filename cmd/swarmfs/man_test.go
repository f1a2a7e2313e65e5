package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/swarmfs.1 from the flag definitions")

const manPath = "../../docs/swarmfs.1"

// TestManPage fails when docs/swarmfs.1 is not what "swarmfs man" makes
// from today's flags (rewrite it with -update or go generate), when a flag
// is missing from it, or when groff warns about it.
func TestManPage(t *testing.T) {
	code, page, stderr := runCmd("man")
	if code != 0 {
		t.Fatalf("swarmfs man: exit %d: %s", code, stderr)
	}
	if *update {
		if err := os.WriteFile(manPath, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile(manPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(committed) != page {
		t.Fatalf("%s is stale: run go generate ./cmd/swarmfs (or go test ./cmd/swarmfs -run TestManPage -update)", manPath)
	}
	for _, c := range commands {
		if !strings.Contains(page, `.SS "swarmfs `+roff(c.usage)+`"`) {
			t.Errorf("the page lacks the command %s", c.name)
		}
		if f := commandFlags(c.name); f != nil {
			f.VisitAll(func(fl *flag.Flag) {
				if !strings.Contains(page, ".B "+roff(dashName(fl))+"\n") && !strings.Contains(page, ".BI "+roff(dashName(fl))+" ") {
					t.Errorf("the page lacks %s --%s", c.name, fl.Name)
				}
			})
		}
	}
	requireProgs(t, "groff")
	cmd := exec.Command("groff", "-man", "-ww", "-z", manPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || out.Len() > 0 {
		t.Fatalf("groff: %v\n%s", err, out.String())
	}
}

// TestCompletion loads the bash script and asks it what it would complete,
// and checks the zsh script's syntax.
func TestCompletion(t *testing.T) {
	requireProgs(t, "bash", "zsh")
	dir := t.TempDir()
	for _, sh := range []string{"bash", "zsh"} {
		code, script, stderr := runCmd("completion", sh)
		if code != 0 {
			t.Fatalf("completion %s: exit %d: %s", sh, code, stderr)
		}
		os.WriteFile(filepath.Join(dir, sh), []byte(script), 0o644)
	}
	if out, err := exec.Command("zsh", "-n", filepath.Join(dir, "zsh")).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	tests := []struct {
		words string // the command line, the last word being completed
		want  string
	}{
		{"swarmfs mo", "mount mount-helper"},
		{"swarmfs mount --cache", "--cache-size"},
		{"swarmfs mount --log-format ", "text json"},
		{"swarmfs mount -download a", "all"},
		{"swarmfs status --j", "--json"},
		{"swarmfs create -", "--comment --format --name -o --piece-length --private -t -w"},
		{"swarmfs completion z", "zsh"},
	}
	for _, tc := range tests {
		words := strings.Split(tc.words, " ")
		script := ". " + filepath.Join(dir, "bash") + "\nCOMP_WORDS=(" + strings.Join(quoteAll(words), " ") + ")\nCOMP_CWORD=" +
			string(rune('0'+len(words)-1)) + "\n_swarmfs\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("%q completes to %q (%v), want %q", tc.words, got, err, tc.want)
		}
	}
}

func quoteAll(ws []string) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = "'" + w + "'"
	}
	return out
}
