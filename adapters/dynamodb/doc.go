// Package dynamodb is agentwatch's AWS backend: the session journal (the DynamoDB table
// that agents write, seed 002), the read models (execution index of seed 000 with its
// AgentDateIndex and StatusDateIndex, session aggregates, agent stats, stuck-detector
// entries) in generations that a rebuild switches atomically, the alert outbox,
// checkpoints and control items, and the quarantine — each store implementing the same
// app ports as the embedded SQLite backend, with the same behaviour (the storetest
// contract suite proves it on DynamoDB Local).
//
// Every write that an at-least-once feed could repeat is a conditional write: journal
// appends put only absent keys, index items yield to higher ranks, and a projection
// commit is one TransactWriteItems whose session version check guards the stats
// increments written with it (see ReadModelStore.Commit).
//
// Tables are created and checked by Migrate (`agentwatch migrate`); the client comes
// from the SDK's standard configuration chain (NewClient).
package dynamodb
