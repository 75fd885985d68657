package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// awsComparison runs, on the same journal events and the same DynamoDB, (a) a naive
// projector built the way the execution-index design describes — one UpdateItem or
// PutItem per event per read model, in arrival order — and (b) the same events pushed
// one message at a time through a Watermill GoChannel router into agentwatch's own
// projector, each into a scratch generation of the read-model tables.
type awsComparison struct {
	client  *awsddb.Client
	counter *dynamodb.RequestCounter
	cfg     dynamodb.Config
	gens    app.GenerationStore
	reg     *projections.Registry
	logger  *slog.Logger
}

// naive projects evs the naive way into generation gen and returns the time and the
// write requests it took.
func (c *awsComparison) naive(ctx context.Context, gen int, evs []domain.Event) (time.Duration, int64, error) {
	if err := c.gens.CreateGeneration(ctx, gen, ""); err != nil {
		return 0, 0, err
	}
	executions, stats, stuckT := c.cfg.ReadModelTable("executions", gen), c.cfg.ReadModelTable("agent_stats", gen), c.cfg.ReadModelTable("stuck", gen)
	agents := map[string]string{}
	before := c.counter.Snapshot()
	start := time.Now()
	for i := range evs {
		ev := &evs[i]
		ts := domain.FormatTime(ev.Timestamp)
		if es := ev.Status.ExecStatus(); es != "" {
			x := &ev.Exec
			agents[ev.SessionID] = x.AgentName
			expr := "SET agentName = :a, #s = :s, startDate = :sd, stateMachineArn = :sm, executionName = :n, sessionId = :sid, indexedAt = :now"
			vals := map[string]types.AttributeValue{":a": str(x.AgentName), ":s": str(string(es)), ":sd": str(domain.FormatTime(x.StartDate)),
				":sm": str(x.StateMachineArn), ":n": str(x.ExecutionName), ":sid": str(ev.SessionID), ":now": str(domain.FormatTime(time.Now()))}
			if es.Terminal() && !x.StopDate.IsZero() {
				expr += ", stopDate = :sp, durationSeconds = :d"
				vals[":sp"] = str(domain.FormatTime(x.StopDate))
				vals[":d"] = &types.AttributeValueMemberN{Value: strconv.FormatFloat(x.StopDate.Sub(x.StartDate).Seconds(), 'f', 3, 64)}
			}
			if _, err := c.client.UpdateItem(ctx, &awsddb.UpdateItemInput{TableName: aws.String(executions),
				Key: map[string]types.AttributeValue{"executionArn": str(x.ExecutionArn)}, UpdateExpression: aws.String(expr),
				ExpressionAttributeNames: map[string]string{"#s": "status"}, ExpressionAttributeValues: vals}); err != nil {
				return 0, 0, fmt.Errorf("naive index update: %w", err)
			}
		}
		agent := agents[ev.SessionID]
		if agent == "" {
			agent = "unknown"
		}
		if _, err := c.client.UpdateItem(ctx, &awsddb.UpdateItemInput{TableName: aws.String(stats),
			Key:                       map[string]types.AttributeValue{"agentName": str(agent), "bucket": str("HOUR#" + ts[:13])},
			UpdateExpression:          aws.String("ADD #c :one"),
			ExpressionAttributeNames:  map[string]string{"#c": "events." + string(ev.Status)},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}}); err != nil {
			return 0, 0, fmt.Errorf("naive stats update: %w", err)
		}
		if _, err := c.client.PutItem(ctx, &awsddb.PutItemInput{TableName: aws.String(stuckT), Item: map[string]types.AttributeValue{
			"sessionId": str(ev.SessionID), "lastStatus": str(string(ev.Status)), "lastEventAt": str(ts), "agentName": str(agent)}}); err != nil {
			return 0, 0, fmt.Errorf("naive stuck put: %w", err)
		}
	}
	took := time.Since(start)
	return took, c.counter.Snapshot().Sub(before).Writes, nil
}

// router pushes evs one message at a time through a GoChannel router into the
// projector, writing generation gen.
func (c *awsComparison) router(ctx context.Context, gen int, evs []domain.Event) (time.Duration, int64, error) {
	if err := c.gens.CreateGeneration(ctx, gen, ""); err != nil {
		return 0, 0, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	gc := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: int64(len(evs)), Persistent: true}, watermill.NopLogger{})
	defer gc.Close()
	var done atomic.Int64
	proj := app.NewProjector(counting{c.gens.ProjectionStoreOf(gen), &done}, c.reg, quiet, nil)
	r, err := app.NewRouter(app.RouterConfig{}, app.JournalFeed{Subscriber: gc}, app.StatusChangeFeed{}, discardPublisher{}, proj, nil, nil, quiet)
	if err != nil {
		return 0, 0, err
	}
	go func() { _ = r.Run(ctx) }()
	<-r.Running()
	defer r.Close()
	before := c.counter.Snapshot()
	start := time.Now()
	for i := range evs {
		it := evs[i].Item()
		b, err := json.Marshal(it)
		if err != nil {
			return 0, 0, err
		}
		if err := gc.Publish(app.TopicJournal, message.NewMessage(watermill.NewUUID(), b)); err != nil {
			return 0, 0, err
		}
	}
	for done.Load() < int64(len(evs)) {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	took := time.Since(start)
	return took, c.counter.Snapshot().Sub(before).Writes, nil
}

// counting counts the events committed through a projection store.
type counting struct {
	app.ProjectionStore
	n *atomic.Int64
}

func (c counting) Commit(ctx context.Context, b app.Batch) error {
	if err := c.ProjectionStore.Commit(ctx, b); err != nil {
		return err
	}
	c.n.Add(1) // one successful commit per Project call, i.e. per message
	return nil
}

// discardPublisher drops poison messages (the benchmark's events are all valid).
type discardPublisher struct{}

func (discardPublisher) Publish(string, ...*message.Message) error { return nil }
func (discardPublisher) Close() error                              { return nil }

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
