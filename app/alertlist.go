package app

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// Validate checks the filter's state and kinds, naming the field at fault.
func (f *AlertFilter) Validate() error {
	switch f.State {
	case "", AlertFilterOpen, AlertFilterAcknowledged, AlertFilterResolved, AlertFilterAll:
	default:
		return &domain.FieldError{Field: "state", Reason: "must be open, acknowledged, resolved or all, found " + strconv.Quote(f.State)}
	}
	for _, k := range f.Kinds {
		if k.Bit() == 0 {
			return &domain.FieldError{Field: "kind", Reason: "must be one of " + kindNames() + ", found " + strconv.Quote(string(k))}
		}
	}
	if f.Cursor != "" {
		if _, err := DecodeAlertCursor(f.Cursor); err != nil {
			return err
		}
	}
	return nil
}

// hasKind reports whether the filter selects alerts of kind k.
func (f *AlertFilter) hasKind(k stuck.Kind) bool {
	if len(f.Kinds) == 0 {
		return true
	}
	for _, x := range f.Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Selects reports whether the filter's state and kinds select a (not its session,
// cursor or limit): the rule every store applies, for stores that filter in Go.
func (f *AlertFilter) Selects(a *Alert) bool {
	if !f.hasKind(a.Kind) {
		return false
	}
	problem := a.Kind != stuck.KindRecovered
	switch f.State {
	case AlertFilterOpen:
		return problem && a.ResolvedAt == nil && a.AckedAt == nil
	case AlertFilterAcknowledged:
		return problem && a.ResolvedAt == nil && a.AckedAt != nil
	case AlertFilterResolved:
		return a.ResolvedAt != nil
	}
	return true
}

func kindNames() string {
	names := make([]string, len(stuck.Kinds))
	for i, k := range stuck.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// AlertCursor is a position in the newest-first listing of alerts: just after the
// alert raised at RaisedAtNs (unix ns) for SessionID and Kind.
type AlertCursor struct {
	RaisedAtNs int64      `json:"r"`
	SessionID  string     `json:"s"`
	Kind       stuck.Kind `json:"k"`
}

// CursorAfter is the cursor just after a.
func CursorAfter(a *Alert) AlertCursor {
	return AlertCursor{RaisedAtNs: a.RaisedAt.UnixNano(), SessionID: a.SessionID, Kind: a.Kind}
}

// Encode renders the cursor as an opaque URL-safe string.
func (c AlertCursor) Encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Before reports whether an alert raised at ns for session and kind comes before the
// cursor's position in the newest-first order (raisedAt descending, then session and
// kind ascending), i.e. was on an earlier page.
func (c AlertCursor) Before(ns int64, session string, kind stuck.Kind) bool {
	if ns != c.RaisedAtNs {
		return ns > c.RaisedAtNs
	}
	if session != c.SessionID {
		return session < c.SessionID
	}
	return kind <= c.Kind
}

// DecodeAlertCursor reads a cursor that AlertCursor.Encode wrote; anything else is a
// *domain.FieldError of field "cursor".
func DecodeAlertCursor(s string) (AlertCursor, error) {
	var c AlertCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.SessionID == "" || c.Kind == "" {
		return AlertCursor{}, &domain.FieldError{Field: "cursor", Reason: "is not a cursor this server gave (pass nextCursor back unchanged, with the same filters)"}
	}
	return c, nil
}
