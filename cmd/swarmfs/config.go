package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Settings come from three places, the first that has one winning: the
// command line, the environment (SWARMFS_ and the flag's name in upper
// case, dashes as underscores: SWARMFS_CACHE_SIZE=20GiB), and the config
// file, $SWARMFS_CONFIG or else $XDG_CONFIG_HOME/swarmfs/config (or
// ~/.config/swarmfs/config). The file holds "name = value" lines, a flag's
// name without its dashes; "#" starts a comment line, a value may be
// quoted as in Go, and a repeatable flag (peer) may have several lines. A
// name no command knows is an error, so a typo does not go unnoticed;
// names the running command does not have are skipped, so one file serves
// every command. Empty environment variables count as unset.
//
// It is generic over flag.FlagSet: every command parses with parseFlags,
// which fills what the command line left unset.

// captureArg, as a command's only argument, makes parseFlags return the
// command's flag set (in a *capturedFlags error) instead of parsing: the
// man page, the completions, "config" and the mount helper learn every
// command's flags from the definitions "-h" prints, without running it.
const captureArg = "\x00swarmfs-capture-flags"

type capturedFlags struct{ set *flag.FlagSet }

func (*capturedFlags) Error() string { return "flags captured" }

// commandFlags returns the flags of the named command; nil when it has
// none or is unknown.
func commandFlags(name string) *flag.FlagSet {
	for _, c := range commands {
		if c.name != name {
			continue
		}
		var cf *capturedFlags
		if err := c.run([]string{captureArg}, discard{}, discard{}); errors.As(err, &cf) {
			return cf.set
		}
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// parseFlags parses a command's arguments, then takes the settings the
// command line did not give from the environment and the config file.
// Every command parses through it.
func parseFlags(f *flag.FlagSet, args []string) error {
	if len(args) == 1 && args[0] == captureArg {
		return &capturedFlags{f}
	}
	if err := f.Parse(args); err != nil {
		return err
	}
	_, err := applySettings(f, os.LookupEnv, configPath())
	return err
}

// setting is one flag's effective value and where it came from.
type setting struct {
	name, value, source string
}

// envName is the environment variable of the flag name.
func envName(name string) string {
	return "SWARMFS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// configPath is the config file's path, "" when there is no home.
func configPath() string {
	if p := os.Getenv("SWARMFS_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "swarmfs", "config")
}

// configLine is one "name = value" of the config file.
type configLine struct {
	name, value string
	line        int
}

// maxConfigSize bounds the config file read.
const maxConfigSize = 1 << 20

// readConfig reads the config file; a missing one is empty.
func readConfig(path string) ([]configLine, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	var out []configLine
	sc := bufio.NewScanner(io.LimitReader(f, maxConfigSize))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return nil, fmt.Errorf("config %s:%d: want name = value", path, n)
		}
		if strings.HasPrefix(value, `"`) {
			v, err := strconv.Unquote(value)
			if err != nil {
				return nil, fmt.Errorf("config %s:%d: bad quoted value: %w", path, n, err)
			}
			value = v
		}
		out = append(out, configLine{strings.TrimLeft(name, "-"), value, n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return out, nil
}

// knownFlag reports whether any command has a flag of that name.
func knownFlag(name string) bool {
	for _, c := range commands {
		if fs := commandFlags(c.name); fs != nil && fs.Lookup(name) != nil {
			return true
		}
	}
	return false
}

// applySettings sets the flags of f the command line left unset from the
// environment, else from the config file at path, and returns every
// flag's effective value and source, sorted by name.
func applySettings(f *flag.FlagSet, lookupEnv func(string) (string, bool), path string) ([]setting, error) {
	given := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	lines, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	fromFile := map[string][]configLine{}
	for _, l := range lines {
		if f.Lookup(l.name) == nil && !knownFlag(l.name) {
			return nil, fmt.Errorf("config %s:%d: unknown setting %q", path, l.line, l.name)
		}
		fromFile[l.name] = append(fromFile[l.name], l)
	}
	var out []setting
	var firstErr error
	f.VisitAll(func(fl *flag.Flag) {
		if firstErr != nil {
			return
		}
		source := "default"
		switch env := envName(fl.Name); {
		case given[fl.Name]:
			source = "command line"
		case env != "":
			if v, ok := lookupEnv(env); ok && v != "" {
				if err := fl.Value.Set(v); err != nil {
					firstErr = usageErr("%s=%q: %v", env, v, err)
					return
				}
				source = "environment " + env
				break
			}
			for _, l := range fromFile[fl.Name] {
				if err := fl.Value.Set(l.value); err != nil {
					firstErr = usageErr("config %s:%d: %s = %q: %v", path, l.line, l.name, l.value, err)
					return
				}
				source = fmt.Sprintf("config %s:%d", path, l.line)
			}
		}
		out = append(out, setting{fl.Name, fl.Value.String(), source})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, firstErr
}

// runConfig prints the effective settings of a command (mount unless
// named), with the flags given after it, and where each comes from.
func runConfig(args []string, stdout, stderr io.Writer) error {
	name := "mount"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	f := commandFlags(name)
	if f == nil {
		return usageErr("no command %q with settings", name)
	}
	f.SetOutput(stderr)
	if err := f.Parse(args); err != nil {
		return err
	}
	settings, err := applySettings(f, os.LookupEnv, configPath())
	if err != nil {
		return err
	}
	path := configPath()
	if _, err := os.Stat(path); err != nil {
		path += " (none)"
	}
	fmt.Fprintf(stdout, "# swarmfs %s: effective settings; config file %s\n", name, path)
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	for _, s := range settings {
		fmt.Fprintf(tw, "%s = %s\t# %s\n", s.name, quoteValue(s.value), s.source)
	}
	return tw.Flush()
}

// quoteValue quotes a value the config file would not read back as is.
func quoteValue(v string) string {
	if v == "" || strings.TrimSpace(v) != v || strings.HasPrefix(v, `"`) || strings.ContainsAny(v, "\n#") {
		return strconv.Quote(v)
	}
	return v
}
