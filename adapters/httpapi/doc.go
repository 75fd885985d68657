// Package httpapi is agentwatch's HTTP face: the JSON read API over app.Queries, the
// ingest endpoint over app.Ingester, the History page of seed 000 (embedded HTML, CSS
// and JavaScript, no build step), and the health and metrics endpoints.
//
// Every error answer is JSON, {"error": "...", "field": "..."}, the field set when the
// error is a domain.FieldError, with the status that fits: 400 for bad input, 404 for
// what does not exist, 413 for a body over the limit, 500 (logged) for the rest.
//
// Routes:
//
//	POST /v1/events                          ingest (JSON object, array or NDJSON) -> app.IngestReport
//	GET  /v1/executions                      the execution index, filtered and paged
//	GET  /v1/executions/{arn}                one execution (raw or URL-escaped ARN)
//	GET  /v1/sessions/{id}                   timeline, diagnosis, executions, alerts
//	GET  /v1/sessions/{id}/events            journal items in seed-002 form
//	GET  /v1/agents/{name}/stats             one agent's stats buckets and total
//	GET  /v1/stats                           every agent's stats
//	GET  /v1/alerts                          alerts, paged (state=open|acknowledged|resolved|all, kind=)
//	GET  /v1/alerts/counts                   true alert counts, in all and per kind
//	POST /v1/alerts/{sessionId}/{kind}/ack   acknowledge an alert
//	GET  /v1/stuck                           sessions the stuck detector watches
//	GET  /v1/quarantine                      poison inputs and their count
//	GET  /v1/live                            server-sent events: executions and alerts changed
//	GET  /healthz, /readyz, /metrics         liveness, readiness, Prometheus
//	GET  /                                   the History page (assets under /assets/)
//
// The package is usable without fx (New, Start, Stop); fx.go adds it to an fx graph.
package httpapi
