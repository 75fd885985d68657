package main

import (
	"log/slog"

	"go.uber.org/fx/fxevent"
)

// fxLogger sends fx's own events to slog at debug level (errors at error level).
func fxLogger(l *slog.Logger) func() fxevent.Logger {
	return func() fxevent.Logger {
		sl := &fxevent.SlogLogger{Logger: l}
		sl.UseLogLevel(slog.LevelDebug)
		sl.UseErrorLevel(slog.LevelError)
		return sl
	}
}
