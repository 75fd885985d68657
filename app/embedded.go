package app

import (
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"go.uber.org/fx"
)

// StatusChangePublisher publishes ingest objects onto TopicStatusChanges: the demo
// traffic in embedded mode goes through the same handler as queue messages.
type StatusChangePublisher struct{ message.Publisher }

// EmbeddedFeedModule provides an in-process GoChannel as the status-change feed, the
// embedded stand-in for the SQS queue.
var EmbeddedFeedModule = fx.Module("embedded-feed",
	fx.Provide(newGoChannel),
)

func newGoChannel(lc fx.Lifecycle, logger *slog.Logger) (StatusChangeFeed, StatusChangePublisher) {
	gc := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1024}, watermill.NewSlogLogger(logger))
	lc.Append(fx.StopHook(gc.Close))
	return StatusChangeFeed{Subscriber: gc}, StatusChangePublisher{Publisher: gc}
}
