// Package app holds agentwatch's use cases and their wiring: ingesting Step Functions
// status changes into the journal, projecting the journal into the read models, the
// stuck-session detector, and the queries. It declares the ports (ports.go) that the
// adapters implement, builds the Watermill router, and contributes fx modules.
package app
