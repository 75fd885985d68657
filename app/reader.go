package app

import (
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// ReaderParts assembles a Reader from the stores that each answer part of it.
type ReaderParts struct {
	executionindex.Reader
	JournalReader
	StatsReader
	ProjectionStore
}

var _ Reader = ReaderParts{}
