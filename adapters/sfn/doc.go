// Package sfn is agentwatch's adapter to the AWS Step Functions API. TagResolver finds an
// agent's name in the tags of its state machine (domain.AgentNameResolver), so that agents
// need no change to be indexed under their names (seed 000: "uses existing tags").
//
// AWS permissions: states:ListTagsForResource on the state machines.
package sfn
