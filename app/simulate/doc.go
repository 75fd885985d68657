// Package simulate generates realistic, seedable agent traffic for agentwatch: the
// EventBridge "Step Functions Execution Status Change" envelopes of each session's
// execution and the journal items its agent writes (seed 002), delivered the way AWS
// delivers them — late, out of order, sometimes twice — with ground truth per session.
//
// Generate produces a batch (`agentwatch simulate`, benchmarks, the stuck detector's
// precision/recall tests); the same Config gives byte-identical output. Live produces
// sessions continuously around the wall clock (`agentwatch run --demo`). Both build
// sessions from the same scenarios (Scenario): the happy path, the four failure scenarios
// of seed 002, and the stories a detector must get right — stalls, late completions,
// redrives, aborts, journal mismatches and status changes that were never delivered.
//
// The package imports only domain and the standard library.
package simulate
