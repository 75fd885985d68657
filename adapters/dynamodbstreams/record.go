package dynamodbstreams

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// Source is the app.MetaSource of the messages, and the source of what the subscriber
// quarantines.
const Source = "dynamodb-stream"

// Metadata keys that messages carry besides app.MetaPosition ("<shard id>/<sequence
// number>"), app.MetaAppendedAt (the record's ApproximateCreationDateTime, unix ms:
// rounded down to the second by AWS, to the minute by DynamoDB Local) and
// app.MetaSource (Source).
const (
	// MetadataShardID is the id of the shard the record was read from.
	MetadataShardID = "shard_id"
	// MetadataSequenceNumber is the record's sequence number: a decimal string of 21 to
	// 40 digits, ordered within its shard. Never parse it into an int64.
	MetadataSequenceNumber = "sequence_number"
	// MetadataEventID is the stream record's event id.
	MetadataEventID = "event_id"
	// MetadataEventName is INSERT or MODIFY.
	MetadataEventName = "event_name"
	// MetadataPK and MetadataSK are the journal item's keys (as the SQLite tail sets
	// them).
	MetadataPK = "pk"
	MetadataSK = "sk"
)

// decoded is what a record becomes.
type decoded struct {
	// skip, when set, says why the record is not delivered (counted, not quarantined).
	skip string
	// invalid, when set, says why the record cannot be delivered: it is quarantined
	// with rawImage as the payload.
	invalid  error
	rawImage string
	uuid     string
	payload  []byte
	metadata message.Metadata
}

// recordDecoder turns a stream record into a message's UUID, payload and metadata of its
// own (the subscriber adds the shard, position and source metadata).
type recordDecoder func(r *stypes.Record) decoded

// Skip reasons, the label of the records_skipped_total metric.
const (
	skipRemove     = "remove"
	skipNoNewImage = "no_new_image"
)

// decodeJournalRecord decodes the new image of a journal item's record: the payload is
// the item as domain.JournalItem JSON, the UUID "<PK>/<SK>" (a redelivered item keeps
// it), as the SQLite tail delivers it.
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
	item := ev.Item()
	payload, err := json.Marshal(item)
	if err != nil {
		return decoded{invalid: fmt.Errorf("encode journal item: %w", err), rawImage: string(raw)}
	}
	return decoded{uuid: item.PK + "/" + item.SK, payload: payload,
		metadata: message.Metadata{MetadataPK: item.PK, MetadataSK: item.SK}}
}

// recordMessage holds what every delivery of a record carries.
type recordMessage struct {
	uuid     string
	payload  []byte
	metadata message.Metadata
}

// newMessage builds a fresh message for one delivery.
func (m *recordMessage) newMessage() *message.Message {
	msg := message.NewMessage(m.uuid, m.payload)
	msg.Metadata = maps.Clone(m.metadata)
	return msg
}

// recordMetadata is the metadata the subscriber adds to a decoded record.
func recordMetadata(shardID string, r *stypes.Record, own message.Metadata) message.Metadata {
	md := make(message.Metadata, len(own)+7)
	maps.Copy(md, own)
	seq := aws.ToString(r.Dynamodb.SequenceNumber)
	md[MetadataShardID] = shardID
	md[MetadataSequenceNumber] = seq
	md[MetadataEventID] = aws.ToString(r.EventID)
	md[MetadataEventName] = string(r.EventName)
	md[app.MetaPosition] = position(shardID, seq)
	md[app.MetaSource] = Source
	if at := r.Dynamodb.ApproximateCreationDateTime; at != nil {
		md[app.MetaAppendedAt] = strconv.FormatInt(at.UnixMilli(), 10)
	}
	return md
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
