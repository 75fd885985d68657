package dynamodbstreams

import (
	"encoding/json"
	"fmt"

	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/agentwatch/agentwatch/domain"
)

// Source is the app.MetaSource of the messages, and the source of what the subscriber
// quarantines.
const Source = "dynamodb-stream"

// Metadata keys that page messages carry besides app.MetaPage, app.MetaRecords,
// app.MetaPosition (the position "<shard id>/<sequence number>" of the page's last
// record: the checkpoint its Ack writes), app.MetaAppendedAt (the last record's
// ApproximateCreationDateTime, unix ms: rounded down to the second by AWS, to the
// minute by DynamoDB Local) and app.MetaSource (Source).
const (
	// MetadataShardID is the id of the shard the page was read from.
	MetadataShardID = "shard_id"
	// MetadataSequenceNumber is the sequence number of the page's last record (read,
	// whether delivered or not): a decimal string of 21 to 40 digits, ordered within
	// its shard. Never parse it into an int64.
	MetadataSequenceNumber = "sequence_number"
	// MetadataFirstSequenceNumber is the sequence number of the page's first record.
	MetadataFirstSequenceNumber = "first_sequence_number"
)

// decoded is what a record becomes.
type decoded struct {
	// skip, when set, says why the record is not delivered (counted, not quarantined).
	skip string
	// invalid, when set, says why the record cannot be delivered: it is quarantined
	// with rawImage as the payload.
	invalid  error
	rawImage string
	// item is the record as the page carries it (app.JournalRecord.Item): JSON.
	item []byte
}

// recordDecoder turns a stream record into the item a page carries.
type recordDecoder func(r *stypes.Record) decoded

// Skip reasons, the label of the records_skipped_total metric.
const (
	skipRemove     = "remove"
	skipNoNewImage = "no_new_image"
)

// skipReasons are every skip reason, for counters that start at zero.
var skipReasons = []string{skipRemove, skipNoNewImage}

// decodeJournalRecord decodes the new image of a journal item's record: the item is
// the domain.JournalItem JSON of the image, as the SQLite tail delivers it.
func decodeJournalRecord(r *stypes.Record) decoded {
	if r.EventName == stypes.OperationTypeRemove {
		return decoded{skip: skipRemove}
	}
	if r.Dynamodb == nil || r.Dynamodb.NewImage == nil {
		return decoded{skip: skipNoNewImage}
	}
	raw, err := dynamoJSON(r.Dynamodb.NewImage)
	if err != nil {
		return decoded{invalid: fmt.Errorf("render new image: %w", err)}
	}
	ev, err := domain.DecodeJournalItemDynamoJSON(raw)
	if err != nil {
		return decoded{invalid: err, rawImage: string(raw)}
	}
	item, err := json.Marshal(ev.Item())
	if err != nil {
		return decoded{invalid: fmt.Errorf("encode journal item: %w", err), rawImage: string(raw)}
	}
	return decoded{item: item}
}

// position is a record's position in the stream: "<shard id>/<sequence number>".
func position(shardID, seq string) string { return shardID + "/" + seq }

// dynamoJSON renders an image in DynamoDB-typed JSON, as the AWS CLI prints it (binary
// values base64).
func dynamoJSON(img map[string]stypes.AttributeValue) ([]byte, error) {
	m := make(map[string]any, len(img))
	for k, v := range img {
		j, err := dynamoJSONValue(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", k, err)
		}
		m[k] = j
	}
	return json.Marshal(m)
}

func dynamoJSONValue(v stypes.AttributeValue) (any, error) {
	switch v := v.(type) {
	case *stypes.AttributeValueMemberS:
		return map[string]string{"S": v.Value}, nil
	case *stypes.AttributeValueMemberN:
		return map[string]string{"N": v.Value}, nil
	case *stypes.AttributeValueMemberB:
		return map[string][]byte{"B": v.Value}, nil
	case *stypes.AttributeValueMemberBOOL:
		return map[string]bool{"BOOL": v.Value}, nil
	case *stypes.AttributeValueMemberNULL:
		return map[string]bool{"NULL": true}, nil
	case *stypes.AttributeValueMemberSS:
		return map[string][]string{"SS": v.Value}, nil
	case *stypes.AttributeValueMemberNS:
		return map[string][]string{"NS": v.Value}, nil
	case *stypes.AttributeValueMemberBS:
		return map[string][][]byte{"BS": v.Value}, nil
	case *stypes.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			j, err := dynamoJSONValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			l[i] = j
		}
		return map[string]any{"L": l}, nil
	case *stypes.AttributeValueMemberM:
		m := make(map[string]any, len(v.Value))
		for k, e := range v.Value {
			j, err := dynamoJSONValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			m[k] = j
		}
		return map[string]any{"M": m}, nil
	default:
		return nil, fmt.Errorf("unknown attribute value type %T", v)
	}
}
