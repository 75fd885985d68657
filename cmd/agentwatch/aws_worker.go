package main

import (
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/dynamodbstreams"
)

// awsWorkerModules are the AWS worker's feeds: the journal's DynamoDB stream (with
// shard leases in the control table) and the Step Functions status-change queue with
// agent names from state-machine tags.
func (g *globals) awsWorkerModules() ([]fx.Option, error) {
	flags := g.awsFeeds
	if flags == nil {
		flags = &awsFeedFlags{}
	}
	feeds, err := awsFeedModules(flags)
	if err != nil {
		return nil, err
	}
	return append(feeds, dynamodbstreams.Module), nil
}
