// Package bench holds agentwatch's load harnesses, what `agentwatch bench` runs: a
// rebuild of a seeded journal with its speed and memory (RunRebuild), compared on
// DynamoDB with a naive per-event projector and a per-message router (Comparison,
// Router); and the live path end to end, from the first POST to every execution
// visible (RunLive).
package bench
