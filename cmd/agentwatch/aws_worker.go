package main

import (
	"errors"

	"go.uber.org/fx"
)

// awsWorkerModules are the AWS worker's feeds: the journal's DynamoDB stream and the
// Step Functions status-change queue.
func (g *globals) awsWorkerModules() ([]fx.Option, error) {
	return nil, errors.New("--backend aws: the worker's feeds are not wired yet in this build")
}
