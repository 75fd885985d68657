package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app/simulate"
)

// DemoConfig configures the demo traffic of `run --demo`.
type DemoConfig struct {
	Live simulate.LiveConfig
}

// DemoModule feeds simulated agent traffic into the status-change feed for as long as
// the app runs: every object goes through the same ingest handler as a queue message.
var DemoModule = fx.Module("demo",
	fx.Invoke(registerDemo),
)

func registerDemo(lc fx.Lifecycle, cfg DemoConfig, pub StatusChangePublisher, logger *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				logger.Info("demo traffic started", "sessionsPerSecond", cfg.Live.SessionsPerSecond)
				err := simulate.Live(ctx, cfg.Live, func(o simulate.Object) error {
					msg := message.NewMessage(watermill.NewUUID(), o.Body)
					msg.Metadata.Set(MetaSource, "demo")
					return pub.Publish(TopicStatusChanges, msg)
				})
				if err != nil && !errors.Is(err, context.Canceled) {
					logger.Error("demo traffic stopped", "error", err)
				}
			}()
			return nil
		},
		OnStop: func(stopCtx context.Context) error {
			cancel()
			select {
			case <-done:
			case <-stopCtx.Done():
			}
			return nil
		},
	})
}
