package main

import (
	"errors"
	"flag"
)

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

// parseFlags parses a command's arguments. Every command parses through it.
func parseFlags(f *flag.FlagSet, args []string) error {
	if len(args) == 1 && args[0] == captureArg {
		return &capturedFlags{f}
	}
	return f.Parse(args)
}
