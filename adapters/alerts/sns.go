package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-aws/sns"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/agentwatch/agentwatch/app"
)

// SNSConfig configures an SNSSink.
type SNSConfig struct {
	// TopicArn receives the alerts.
	TopicArn string
	// AWSConfig overrides the SDK's standard configuration (tests); zero: loaded from
	// the environment (AWS_REGION, credentials, AWS_ENDPOINT_URL_SNS).
	AWSConfig *aws.Config
}

// Validate checks the configuration.
func (c *SNSConfig) Validate() error {
	if c.TopicArn == "" {
		return errors.New("sns topic arn: is empty")
	}
	return nil
}

// SNSSink publishes alerts to an SNS topic with watermill-aws's publisher: the message
// is the alert's JSON, its UUID the alert's identity (session id and kind), so that
// subscribers can deduplicate a redelivery after a crash between sending and
// recording the send.
type SNSSink struct {
	cfg SNSConfig
	pub *sns.Publisher
}

var _ app.AlertSink = (*SNSSink)(nil)

// NewSNSSink returns an SNS sink. It never creates the topic: the stack does.
func NewSNSSink(ctx context.Context, cfg SNSConfig, logger *slog.Logger) (*SNSSink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	awsCfg := cfg.AWSConfig
	if awsCfg == nil {
		c, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("load AWS configuration: %w", err)
		}
		awsCfg = &c
	}
	pub, err := sns.NewPublisher(sns.PublisherConfig{
		AWSConfig:                   *awsCfg,
		DoNotCreateTopicIfNotExists: true,
		TopicResolver:               sns.TransparentTopicResolver{},
		Marshaler:                   sns.DefaultMarshalerUnmarshaler{},
		OptFns:                      []func(*awssns.Options){},
	}, watermill.NewSlogLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("sns publisher: %w", err)
	}
	return &SNSSink{cfg: cfg, pub: pub}, nil
}

// Name is "sns".
func (s *SNSSink) Name() string { return "sns" }

// Send publishes the alert.
func (s *SNSSink) Send(ctx context.Context, a app.Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	msg := message.NewMessage(a.SessionID+"/"+string(a.Kind), body)
	msg.SetContext(ctx)
	msg.Metadata.Set("kind", string(a.Kind))
	msg.Metadata.Set("agentName", a.AgentName)
	if err := s.pub.Publish(s.cfg.TopicArn, msg); err != nil {
		return fmt.Errorf("publish %s alert of %s to %s: %w", a.Kind, a.SessionID, s.cfg.TopicArn, err)
	}
	return nil
}
