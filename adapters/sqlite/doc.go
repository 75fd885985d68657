// Package sqlite is agentwatch's embedded backend: the session journal, the read models
// (execution index, agent stats, stuck detector) in generations that a rebuild switches
// atomically, the alert outbox, checkpoints and quarantine, all in one SQLite file
// (<data-dir>/agentwatch.db, pure Go through modernc.org/sqlite), and TailSubscriber, a
// watermill message.Subscriber that tails the journal in sequence order — the embedded
// stand-in for DynamoDB Streams.
//
// The file is safe to share between processes (the CLI's `ingest` next to a running
// worker): it runs in WAL mode, every write transaction starts with BEGIN IMMEDIATE
// under a busy timeout, and each DB serializes its own writes on one connection while
// reads use a small pool. Appends wake in-process tail subscribers at once; other
// processes' appends are picked up by polling.
package sqlite
