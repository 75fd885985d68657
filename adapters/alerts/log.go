// Package alerts holds the alert sinks: the log, an HTTP webhook, and (in AWS mode)
// SNS. Each implements app.AlertSink.
package alerts

import (
	"context"
	"log/slog"

	"github.com/agentwatch/agentwatch/app"
)

// LogSink writes alerts to the structured log.
type LogSink struct{ logger *slog.Logger }

var _ app.AlertSink = (*LogSink)(nil)

// NewLogSink returns a sink that logs at WARN level.
func NewLogSink(logger *slog.Logger) *LogSink { return &LogSink{logger: logger} }

// Name is "log".
func (s *LogSink) Name() string { return "log" }

// Send logs the alert.
func (s *LogSink) Send(ctx context.Context, a app.Alert) error {
	s.logger.WarnContext(ctx, "ALERT "+string(a.Kind),
		"session", a.SessionID, "agent", a.AgentName, "kind", a.Kind, "stage", a.Stage,
		"lastStatus", a.LastStatus, "lastEventAt", a.LastEventAt, "overdueBy", a.OverdueBy,
		"executionArn", a.ExecutionArn, "diagnosis", a.Diagnosis.Summary, "link", a.Link)
	return nil
}
