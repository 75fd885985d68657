// Command agentwatch is the agentwatch worker and its command line: one binary whose
// subcommands build the fx application they need and nothing else.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/agentwatch/agentwatch/domain"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "agentwatch:", err)
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	switch {
	case errors.Is(err, domain.ErrInvalid):
		return 2
	case errors.Is(err, domain.ErrNotFound):
		return 3
	case errors.Is(err, context.Canceled):
		return 130
	}
	return 1
}
