package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/agentwatch/agentwatch/domain"
)

// Journal feeds hand the projector pages, not records: Watermill has no batch message,
// so a feed publishes one message per page — a tail read of up to N journal rows, one
// GetRecords page of a shard — whose payload is a JournalPage and whose single Ack
// covers every record in it (the feed checkpoints the page's last position). The
// projector folds the page's sessions once and commits once. Why a page message rather
// than a handler that collects single messages: a page is what the feed reads anyway
// (KCL's processRecords, Marten's page of events), its position is one checkpoint,
// and the router's middlewares (retry, recoverer, metrics) keep working per page.
//
// A feed marks a page message with MetaPage = "1". Messages without it carry one
// journal item's JSON, as before; the projector takes both.
const (
	// MetaPage marks a message whose payload is a JournalPage.
	MetaPage = "page"
	// MetaRecords is how many records a page holds (for logs and metrics).
	MetaRecords = "records"
)

// JournalPage is the payload of a page message.
type JournalPage struct {
	Records []JournalRecord `json:"records"`
}

// JournalRecord is one journal item of a page.
type JournalRecord struct {
	// Position is the record's position in its feed ("<seq>" for the SQLite journal,
	// "<shard id>/<sequence number>" for a stream): the quarantine key of a record that
	// cannot be projected.
	Position string `json:"position"`
	// AppendedAtMs is when the item was appended (unix ms), 0 when unknown; for the
	// projection lag metric.
	AppendedAtMs int64 `json:"appendedAt,omitempty"`
	// Item is the journal item as domain.JournalItem JSON.
	Item json.RawMessage `json:"item"`
}

// NewPageMessage builds a page message: uuid identifies the page (a redelivered page
// keeps it), metadata is copied and gets MetaPage and MetaRecords, and MetaPosition is
// set to the last record's position when metadata does not set it.
func NewPageMessage(uuid string, records []JournalRecord, metadata message.Metadata) (*message.Message, error) {
	payload, err := encodePage(records)
	if err != nil {
		return nil, fmt.Errorf("encode journal page of %d records: %w", len(records), err)
	}
	msg := message.NewMessage(uuid, payload)
	msg.Metadata = make(message.Metadata, len(metadata)+3)
	for k, v := range metadata {
		msg.Metadata[k] = v
	}
	msg.Metadata[MetaPage] = "1"
	msg.Metadata[MetaRecords] = strconv.Itoa(len(records))
	if msg.Metadata[MetaPosition] == "" && len(records) > 0 {
		msg.Metadata[MetaPosition] = records[len(records)-1].Position
	}
	return msg, nil
}

// encodePage writes the JSON of a page by hand: json.Marshal would check and compact
// every item's JSON, which the feed made itself a moment ago, and that is most of the
// cost of a page.
func encodePage(records []JournalRecord) ([]byte, error) {
	size := 16
	for i := range records {
		size += len(records[i].Item) + len(records[i].Position) + 48
	}
	b := make([]byte, 0, size)
	b = append(b, `{"records":[`...)
	for i := range records {
		r := &records[i]
		if len(r.Item) == 0 {
			return nil, fmt.Errorf("record %s: no item", r.Position)
		}
		if i > 0 {
			b = append(b, ',')
		}
		pos, err := json.Marshal(r.Position)
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", r.Position, err)
		}
		b = append(b, `{"position":`...)
		b = append(b, pos...)
		if r.AppendedAtMs != 0 {
			b = append(b, `,"appendedAt":`...)
			b = strconv.AppendInt(b, r.AppendedAtMs, 10)
		}
		b = append(b, `,"item":`...)
		b = append(b, r.Item...)
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// DecodePage reads a page message's payload. An error wraps domain.ErrInvalid: the
// page as a whole is unreadable (a feed that wrote it is broken), which the router sends
// to the poison queue.
func DecodePage(payload []byte) (JournalPage, error) {
	var p JournalPage
	if err := json.Unmarshal(payload, &p); err != nil {
		return p, fmt.Errorf("decode journal page: %w: %w", domain.ErrInvalid, err)
	}
	return p, nil
}

// ProjectionWatermark says how far the journal feed has been projected. The stuck
// detector judges deadlines against it as well as against the clock (Flink's event-time
// timers): a deadline counts as passed only when it is before both, so a projector that
// is behind delays alerts and never invents them.
type ProjectionWatermark interface {
	// Watermark returns a time W such that every journal item appended before W has
	// been projected and committed. The zero time means that nothing is known yet (no
	// page projected, a shard never read): the detector then raises no alert.
	Watermark(ctx context.Context) (time.Time, error)
}

// ClockWatermark is the watermark of a feed that is always caught up: the clock. Tests
// and one-shot commands (ingest projects before it returns) use it.
type ClockWatermark struct{ Now func() time.Time }

// Watermark returns the clock's time.
func (c ClockWatermark) Watermark(context.Context) (time.Time, error) {
	if c.Now == nil {
		return time.Now(), nil
	}
	return c.Now(), nil
}
