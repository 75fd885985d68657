package stuck_test

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/projectionstest"
	"github.com/agentwatch/agentwatch/projections/rowcodec"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// TestEntryCodec round-trips every field of an entry through the table's codec.
func TestEntryCodec(t *testing.T) {
	full := stuck.Entry{SessionID: "s", Agent: "a", ExecutionArn: "arn:x", LastStatus: domain.StatusBackgroundTaskStarted,
		LastEventMs: 10, Stage: domain.StageBackgroundTask, StageStartMs: 9, ExecStatus: domain.ExecSucceeded, ExecEndMs: 11,
		Outcome: domain.OutcomeMissingCompletion, Mismatch: true, Closed: true}
	projectionstest.RequireAllSet(t, reflect.ValueOf(full), "Entry")
	table := stuck.New(stuck.DefaultConfig()).Tables()[0]
	for name, e := range map[string]stuck.Entry{"every field": full, "minimal": {SessionID: "s", Outcome: domain.OutcomeInProgress}} {
		t.Run(name, func(t *testing.T) {
			b, err := table.EncodeDoc(nil, &e)
			require.NoError(t, err)
			got, err := table.DecodeDoc(b)
			require.NoError(t, err)
			assert.Equal(t, &e, got)
			for _, bad := range [][]byte{nil, {9}, b[:len(b)-1], append(b[:len(b):len(b)], 0)} {
				_, err := table.DecodeDoc(bad)
				assert.ErrorIs(t, err, rowcodec.ErrMalformed)
			}
		})
	}
}
