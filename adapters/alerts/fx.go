package alerts

import (
	"context"
	"log/slog"

	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
)

// Config selects the sinks.
type Config struct {
	// Webhook, if its URL is set, adds a webhook sink.
	Webhook WebhookConfig
	// SNSTopicArn, if set, adds an SNS sink publishing to that topic.
	SNSTopicArn string
}

// Module contributes the configured sinks to the "alert_sinks" group. The log sink is
// always there.
var Module = fx.Module("alerts",
	fx.Provide(
		fx.Annotate(func(l *slog.Logger) app.AlertSink { return NewLogSink(l) }, fx.ResultTags(`group:"alert_sinks"`)),
		fx.Annotate(webhookSinks, fx.ResultTags(`group:"alert_sinks,flatten"`)),
		fx.Annotate(snsSinks, fx.ResultTags(`group:"alert_sinks,flatten"`)),
	),
)

func webhookSinks(cfg Config) ([]app.AlertSink, error) {
	if cfg.Webhook.URL == "" {
		return nil, nil
	}
	s, err := NewWebhookSink(cfg.Webhook)
	if err != nil {
		return nil, err
	}
	return []app.AlertSink{s}, nil
}

func snsSinks(cfg Config, logger *slog.Logger) ([]app.AlertSink, error) {
	if cfg.SNSTopicArn == "" {
		return nil, nil
	}
	s, err := NewSNSSink(context.Background(), SNSConfig{TopicArn: cfg.SNSTopicArn}, logger)
	if err != nil {
		return nil, err
	}
	return []app.AlertSink{s}, nil
}
