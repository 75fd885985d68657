// Package httpapi is agentwatch's HTTP face: the JSON read API over app.Queries, the
// ingest endpoint over app.Ingester, the History page of seed 000 (embedded HTML, CSS
// and JavaScript, no build step), and the health and metrics endpoints.
//
// Every error answer is JSON, {"error": "...", "field": "..."}, the field set when the
// error is a domain.FieldError, with the status that fits: 400 for bad input, 404 for
// what does not exist, 413 for a body over the limit, 500 (logged) for the rest.
//
// The package is usable without fx (New, Start, Stop); fx.go adds it to an fx graph.
package httpapi
