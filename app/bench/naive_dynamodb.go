package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// NaiveTables names the read-model tables of one generation, for the naive projector.
type NaiveTables struct {
	Executions, AgentStats, Stuck string
}

// Comparison is the baseline agentwatch's rebuild is measured against on DynamoDB: a
// naive projector built the way the execution-index design describes — one UpdateItem
// or PutItem per event per read model, in arrival order — that calls the SDK directly,
// since that is the comparison.
type Comparison struct {
	// Client is the DynamoDB client of the store under test.
	Client *awsddb.Client
	// Tables names the tables of a generation.
	Tables func(gen int) NaiveTables
	// Requests counts the client's requests.
	Requests RequestCounter
}

// Naive projects evs the naive way into generation gen (created here) and returns the
// time and the write requests it took.
func (c *Comparison) Naive(ctx context.Context, gens app.GenerationStore, gen int, evs []domain.Event) (time.Duration, int64, error) {
	if err := gens.CreateGeneration(ctx, gen, ""); err != nil {
		return 0, 0, err
	}
	t := c.Tables(gen)
	agents := map[string]string{}
	before := c.Requests.Requests()
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
			if _, err := c.Client.UpdateItem(ctx, &awsddb.UpdateItemInput{TableName: aws.String(t.Executions),
				Key: map[string]types.AttributeValue{"executionArn": str(x.ExecutionArn)}, UpdateExpression: aws.String(expr),
				ExpressionAttributeNames: map[string]string{"#s": "status"}, ExpressionAttributeValues: vals}); err != nil {
				return 0, 0, fmt.Errorf("naive index update: %w", err)
			}
		}
		agent := agents[ev.SessionID]
		if agent == "" {
			agent = "unknown"
		}
		if _, err := c.Client.UpdateItem(ctx, &awsddb.UpdateItemInput{TableName: aws.String(t.AgentStats),
			Key:                       map[string]types.AttributeValue{"agentName": str(agent), "bucket": str("HOUR#" + ts[:13])},
			UpdateExpression:          aws.String("ADD #c :one"),
			ExpressionAttributeNames:  map[string]string{"#c": "events." + string(ev.Status)},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}}); err != nil {
			return 0, 0, fmt.Errorf("naive stats update: %w", err)
		}
		if _, err := c.Client.PutItem(ctx, &awsddb.PutItemInput{TableName: aws.String(t.Stuck), Item: map[string]types.AttributeValue{
			"sessionId": str(ev.SessionID), "lastStatus": str(string(ev.Status)), "lastEventAt": str(ts), "agentName": str(agent)}}); err != nil {
			return 0, 0, fmt.Errorf("naive stuck put: %w", err)
		}
	}
	took := time.Since(start)
	return took, c.Requests.Requests().Writes - before.Writes, nil
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
