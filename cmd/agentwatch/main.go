// Command agentwatch is the agentwatch worker and its command line: one binary whose
// subcommands build the fx application they need and nothing else.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand()
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		flagNames(cmd, err)
		fmt.Fprintln(os.Stderr, "agentwatch:", err)
		os.Exit(exitCode(err))
	}
}
