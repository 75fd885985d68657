package httpapi

import (
	"net/http"
	"strings"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// alertsPage is the answer of GET /v1/alerts. NextCursor is null on the last page;
// otherwise pass it back as ?cursor= (with the same filters) for the next one.
type alertsPage struct {
	Items      []app.Alert `json:"items"`
	NextCursor *string     `json:"nextCursor"`
}

// alertFilter reads state, kind (one or a comma list), session, limit and cursor.
func alertFilter(p *params) app.AlertFilter {
	f := app.AlertFilter{
		State: p.oneOf("state", app.AlertFilterAll,
			app.AlertFilterOpen, app.AlertFilterAcknowledged, app.AlertFilterResolved, app.AlertFilterAll),
		SessionID: p.str("session"),
		Limit:     p.limit("limit", defaultListLimit, maxListLimit),
		Cursor:    p.str("cursor"),
	}
	for k := range strings.SplitSeq(p.str("kind"), ",") {
		if k = strings.ToLower(strings.TrimSpace(k)); k != "" && k != "all" {
			f.Kinds = append(f.Kinds, stuck.Kind(k))
		}
	}
	return f
}

// listAlerts answers GET /v1/alerts?state=open|acknowledged|resolved|all&kind=K[,K]
// &session=&limit=&cursor= with one page of alerts, newest first, and the cursor of the
// next page. state defaults to all; open means neither acknowledged nor resolved.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.Query(), s.now())
	f := alertFilter(p)
	if p.err != nil {
		s.writeError(w, r, p.err)
		return
	}
	page, err := s.queries.AlertPage(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := alertsPage{Items: page.Items}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	writeJSON(w, r, http.StatusOK, out)
}

// countAlerts answers GET /v1/alerts/counts?state=&kind=&session= with the true number
// of alerts the filter selects, in all and per kind: {"total":N,"byKind":{...}}.
func (s *Server) countAlerts(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.Query(), s.now())
	f := alertFilter(p)
	if p.err != nil {
		s.writeError(w, r, p.err)
		return
	}
	f.Limit, f.Cursor = 0, ""
	c, err := s.queries.AlertCounts(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, c)
}
