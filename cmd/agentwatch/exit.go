package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentwatch/agentwatch/domain"
)

// Exit codes, the same for every command (the README's command section lists them).
const (
	// exitOK: the command did what was asked.
	exitOK = 0
	// exitError: it could not (a store, the network, a file).
	exitError = 1
	// exitUsage: a flag, an argument or an option's value is wrong; nothing was done.
	exitUsage = 2
	// exitNotFound: what was asked for does not exist (a session, an execution, an
	// alert, a database in --data-dir).
	exitNotFound = 3
	// exitRejected: the input was read, and some of its objects were rejected (they are
	// in the quarantine with their reasons); the others were kept.
	exitRejected = 4
	// exitInterrupted: Ctrl-C or SIGTERM.
	exitInterrupted = 130
)

// errUsage marks usage errors: wrong flags, arguments or values.
var errUsage = errors.New("usage")

// usageError is a usage error with its message.
type usageError struct{ err error }

func (e usageError) Error() string   { return e.err.Error() }
func (e usageError) Unwrap() []error { return []error{errUsage, e.err} }

// usage marks err as a usage error.
func usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err: err}
}

// usagef is a usage error with a message.
func usagef(format string, args ...any) error { return usage(fmt.Errorf(format, args...)) }

// rejectedError says that an input was read and some of its objects were rejected.
type rejectedError struct{ rejected, objects int }

func (e rejectedError) Error() string {
	return fmt.Sprintf("%d of %d objects rejected (see `agentwatch quarantine` for their reasons)", e.rejected, e.objects)
}

// exitCode maps a command's error to the exit-code table.
func exitCode(err error) int {
	var rej rejectedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &rej):
		return exitRejected
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, errUsage), errors.Is(err, domain.ErrInvalid), isCobraUsage(err):
		return exitUsage
	case errors.Is(err, domain.ErrNotFound):
		return exitNotFound
	}
	return exitError
}

// isCobraUsage recognises the usage errors cobra makes itself (unknown commands and
// flags; argument counts go through args).
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command ") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.Contains(msg, "flag needs an argument") ||
		strings.HasPrefix(msg, "invalid argument ") || strings.HasPrefix(msg, "required flag(s) ")
}

// args checks a command's arguments, as cobra.PositionalArgs do, and marks what they
// say as a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error { return usage(check(cmd, a)) }
}

// flagNames renames the field of a *domain.FieldError in err to the flag that set it
// ("limit" -> "--limit") when cmd has such a flag, so that a command's errors name its
// flags while the API's name its parameters.
func flagNames(cmd *cobra.Command, err error) {
	var fe *domain.FieldError
	if cmd == nil || !errors.As(err, &fe) || strings.HasPrefix(fe.Field, "-") {
		return
	}
	if cmd.Flags().Lookup(fe.Field) != nil {
		fe.Field = "--" + fe.Field
	}
}
