package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// isConditionFailed reports whether err is a failed condition of a single-item write.
func isConditionFailed(err error) bool {
	var e *types.ConditionalCheckFailedException
	return errors.As(err, &e)
}

// isTableMissing reports whether err says a table (or index) does not exist.
func isTableMissing(err error) bool {
	var e *types.ResourceNotFoundException
	return errors.As(err, &e)
}

// errNotMigrated explains a missing table.
var errNotMigrated = errors.New("table does not exist (run `agentwatch migrate`)")

// edge adds a hint to errors that a missing table causes; other errors pass unchanged.
func edge(err error) error {
	if isTableMissing(err) {
		return fmt.Errorf("%w: %w", errNotMigrated, err)
	}
	return err
}

// Backoff between rounds that the SDK's retryer does not cover (unprocessed batch
// items, transaction conflicts): the SDK's own jittered exponential backoff.
var roundBackoff = retry.NewExponentialJitterBackoff(5 * time.Second)

// maxRounds bounds those rounds.
const maxRounds = 12

// sleepRound waits after failed round n (0-based: up to 1s, then 2s, 4s, capped at 5s),
// or until ctx is done.
func sleepRound(ctx context.Context, n int, cause error) error {
	d, err := roundBackoff.BackoffDelay(n, cause)
	if err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
