package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/swarmfs/swarmfs/engine"
)

func runVersion(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return usageErr("version takes no arguments")
	}
	fmt.Fprintf(stdout, "swarmfs %s (%s, %s/%s)\n", engine.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
