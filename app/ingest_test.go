package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
)

// TestIngestReaderChunks: a long NDJSON input is ingested in chunks, each line on its
// own, with the lines and indexes of the whole input, one tally, and reasons that do
// not repeat where the object is.
func TestIngestReaderChunks(t *testing.T) {
	e := newEmbedded(t, t.TempDir(), time.Now())
	var in strings.Builder
	n := app.IngestChunkLines*2 + 10
	bad := map[int]string{1: "not json", app.IngestChunkLines: "[1]", app.IngestChunkLines + 1: `{"PK":"SESSION#x","SK":"nope","Status":"S"}`, n: "{"}
	for line := 1; line <= n; line++ {
		if b, ok := bad[line]; ok {
			in.WriteString(b + "\n")
			continue
		}
		if line == 500 {
			in.WriteString("\n") // a blank line is no object
			continue
		}
		fmt.Fprintf(&in, `{"PK":"SESSION#s%d","SK":"EVENT#2024-11-04T10:30:00.000Z","Status":"SESSION_INITIATED"}`+"\n", line)
	}
	// The first line must be an object for the input to be read as NDJSON.
	body := `{"PK":"SESSION#first","SK":"EVENT#2024-11-04T10:30:00.000Z","Status":"SESSION_INITIATED"}` + "\n" + in.String()

	rep, err := e.ingester.IngestReader(t.Context(), app.SourceCLI, strings.NewReader(body), func(r app.IngestResult) bool {
		return r.Status == app.IngestRejected
	}, nil)
	require.NoError(t, err)
	assert.Equal(t, n+1-1, rep.Objects(), "every line but the blank one is one object")
	assert.Equal(t, 4, rep.Rejected)
	assert.Equal(t, n+1-1-4, rep.Accepted)
	require.Len(t, rep.Results, 4, "only the rejected results are kept")
	wantLines := []int{2, app.IngestChunkLines + 1, app.IngestChunkLines + 2, n + 1}
	for i, r := range rep.Results {
		assert.Equal(t, wantLines[i], r.Line, "result %d: %+v", i, r)
		assert.NotContains(t, r.Reason, "object ", "the reason does not repeat where: %q", r.Reason)
		assert.NotEmpty(t, r.Reason)
	}
	assert.Contains(t, rep.Results[0].Reason, "malformed JSON at line 2")
	assert.Contains(t, rep.Results[1].Reason, "must be a JSON object, found number")
	assert.Contains(t, rep.Results[2].Reason, "SK: must start with")
	// Indexes count objects, not lines: the blank line is none.
	assert.Equal(t, 1, rep.Results[0].Index)
	assert.Equal(t, n-1, rep.Results[3].Index)
}

func TestIngestReaderWholeBodies(t *testing.T) {
	e := newEmbedded(t, t.TempDir(), time.Now())
	for _, tt := range []struct {
		name, body                  string
		accepted, rejected, objects int
	}{
		{"an array", `[{"PK":"SESSION#a","SK":"EVENT#2024-11-04T10:30:00.000Z","Status":"S"}, 1]`, 1, 1, 2},
		{"pretty-printed", "{\n  \"PK\": \"SESSION#b\",\n  \"SK\": \"EVENT#2024-11-04T10:30:00.000Z\",\n  \"Status\": \"S\"\n}\n", 1, 0, 1},
		{"empty", "  \n", 0, 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := e.ingester.IngestReader(t.Context(), app.SourceCLI, strings.NewReader(tt.body), nil, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.accepted, rep.Accepted)
			assert.Equal(t, tt.rejected, rep.Rejected)
			assert.Len(t, rep.Results, tt.objects)
		})
	}
}
