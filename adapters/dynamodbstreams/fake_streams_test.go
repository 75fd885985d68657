package dynamodbstreams

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// fakeStreams is an in-process fake of the DynamoDB Streams API (and of DescribeTable)
// at the protocol level: the SDK's inputs, outputs and typed errors. Unlike DynamoDB
// Local it can split shards, expire iterators, trim records and drop shards from the
// stream, on command.
type fakeStreams struct {
	mu      sync.Mutex
	streams map[string]*fakeStream // by table name
	seq     int64
	shardN  int
	// epoch is in every iterator; ExpireIterators bumps it.
	epoch int
	// pageSize is how many shards one DescribeStream page lists.
	pageSize int
	// reads are the start times of GetRecords calls, by shard.
	reads map[string][]time.Time
	// describes counts DescribeStream calls (a sync makes one per page).
	describes int
	// beforeRead, when set, runs with the fake locked at the start of each GetRecords
	// (it may use the *Locked methods); an error it returns is GetRecords' answer.
	beforeRead func(shardID string) error
}

type fakeStream struct {
	arn    string
	shards []*fakeShard
	// route keeps each partition key on one shard (lineage: a split moves it to a child).
	route map[string]*fakeShard
}

type fakeShard struct {
	id, parent string
	records    []stypes.Record
	trimmed    int // records dropped from the front
	closed     bool
	gone       bool
	start, end string
	children   []*fakeShard
}

func newFakeStreams() *fakeStreams {
	return &fakeStreams{streams: map[string]*fakeStream{}, pageSize: 100, reads: map[string][]time.Time{}}
}

var (
	_ StreamsAPI     = (*fakeStreams)(nil)
	_ TableDescriber = (*fakeStreams)(nil)
)

// CreateTable creates a table whose stream has n root shards; it returns the stream ARN.
func (f *fakeStreams) CreateTable(table string, n int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeStream{arn: "arn:aws:dynamodb:fake:000000000000:table/" + table + "/stream/2026-01-01T00:00:00.000", route: map[string]*fakeShard{}}
	for range n {
		s.shards = append(s.shards, f.newShardLocked(""))
	}
	f.streams[table] = s
	return s.arn
}

func (f *fakeStreams) newShardLocked(parent string) *fakeShard {
	f.shardN++
	return &fakeShard{id: fmt.Sprintf("shardId-%020d-%08x", f.shardN, f.shardN*2654435761%(1<<32)), parent: parent,
		start: f.seqLocked(0)}
}

// seqLocked renders the sequence number after the last one plus delta, 21 digits as
// DynamoDB Local writes them.
func (f *fakeStreams) seqLocked(delta int64) string { return fmt.Sprintf("%021d", f.seq+delta+1) }

func (f *fakeStreams) stream(table string) *fakeStream {
	s, ok := f.streams[table]
	if !ok {
		panic("fake: no table " + table)
	}
	return s
}

func (f *fakeStreams) shard(table, id string) *fakeShard {
	for _, sh := range f.stream(table).shards {
		if sh.id == id {
			return sh
		}
	}
	panic("fake: no shard " + id)
}

// openShards lists the shards that take writes.
func (s *fakeStream) openShards() []*fakeShard {
	var open []*fakeShard
	for _, sh := range s.shards {
		if !sh.closed && !sh.gone {
			open = append(open, sh)
		}
	}
	return open
}

func hashOf(s string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return int(h.Sum32() & 0x7fffffff)
}

// Put appends a record of image to the shard its partition key maps to, and returns
// the shard id and sequence number.
func (f *fakeStreams) Put(table string, name stypes.OperationType, image map[string]stypes.AttributeValue) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.putLocked(table, name, image)
}

// Atomically runs fn with the fake locked; fn uses the *Locked methods.
func (f *fakeStreams) Atomically(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fakeStreams) putLocked(table string, name stypes.OperationType, image map[string]stypes.AttributeValue) (string, string) {
	s := f.stream(table)
	pk := ""
	if v, ok := image["PK"].(*stypes.AttributeValueMemberS); ok {
		pk = v.Value
	}
	sh := s.route[pk]
	for sh != nil && sh.closed {
		sh = sh.children[hashOf(pk)%len(sh.children)]
	}
	if sh == nil {
		open := s.openShards()
		sh = open[hashOf(pk)%len(open)]
	}
	s.route[pk] = sh
	f.seq++
	seq := fmt.Sprintf("%021d", f.seq)
	now := time.Now().UTC().Truncate(time.Second)
	rec := stypes.Record{EventID: aws.String(fmt.Sprintf("event-%d", f.seq)), EventName: name, EventSource: aws.String("aws:dynamodb"),
		Dynamodb: &stypes.StreamRecord{SequenceNumber: aws.String(seq), ApproximateCreationDateTime: &now,
			Keys: map[string]stypes.AttributeValue{"PK": image["PK"], "SK": image["SK"]}, StreamViewType: stypes.StreamViewTypeNewImage}}
	if name != stypes.OperationTypeRemove {
		rec.Dynamodb.NewImage = image
	}
	sh.records = append(sh.records, rec)
	return sh.id, seq
}

// Split closes the shard and gives it two children.
func (f *fakeStreams) Split(table, shardID string) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stream(table)
	sh := f.shard(table, shardID)
	sh.closed = true
	sh.end = fmt.Sprintf("%021d", f.seq)
	a, b := f.newShardLocked(sh.id), f.newShardLocked(sh.id)
	sh.children = []*fakeShard{a, b}
	s.shards = append(s.shards, a, b)
	return a.id, b.id
}

// SetBeforeRead sets the hook run at the start of each GetRecords (nil: none).
func (f *fakeStreams) SetBeforeRead(hook func(shardID string) error) {
	f.mu.Lock()
	f.beforeRead = hook
	f.mu.Unlock()
}

// Trim drops the shard's first n records (as the 24-hour retention does).
func (f *fakeStreams) Trim(table, shardID string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trimLocked(table, shardID, n)
}

func (f *fakeStreams) trimLocked(table, shardID string, n int) {
	sh := f.shard(table, shardID)
	n = min(n, len(sh.records))
	sh.records = sh.records[n:]
	sh.trimmed += n
}

// Drop removes a shard from the stream's listing (trimmed away entirely).
func (f *fakeStreams) Drop(table, shardID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shard(table, shardID).gone = true
}

// ExpireIterators makes every iterator handed out so far expire.
func (f *fakeStreams) ExpireIterators() {
	f.mu.Lock()
	f.epoch++
	f.mu.Unlock()
}

// Describes returns the number of DescribeStream calls so far.
func (f *fakeStreams) Describes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.describes
}

// Reads returns the start times of GetRecords calls on a shard.
func (f *fakeStreams) Reads(shardID string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reads[shardID])
}

func (f *fakeStreams) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.streams[aws.ToString(in.TableName)]
	if !ok {
		return nil, &dtypes.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	return &dynamodb.DescribeTableOutput{Table: &dtypes.TableDescription{TableName: in.TableName, LatestStreamArn: aws.String(s.arn),
		StreamSpecification: &dtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: dtypes.StreamViewTypeNewImage}}}, nil
}

func (f *fakeStreams) byArn(arn string) (*fakeStream, error) {
	for _, s := range f.streams {
		if s.arn == arn {
			return s, nil
		}
	}
	return nil, &stypes.ResourceNotFoundException{Message: aws.String("Requested resource not found: Stream: " + arn + " not found")}
}

func (f *fakeStreams) DescribeStream(_ context.Context, in *dynamodbstreams.DescribeStreamInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describes++
	s, err := f.byArn(aws.ToString(in.StreamArn))
	if err != nil {
		return nil, err
	}
	var listed []*fakeShard
	for _, sh := range s.shards {
		if !sh.gone {
			listed = append(listed, sh)
		}
	}
	start := 0
	if after := aws.ToString(in.ExclusiveStartShardId); after != "" {
		start = len(listed)
		for i, sh := range listed {
			if sh.id == after {
				start = i + 1
			}
		}
	}
	end := min(start+f.pageSize, len(listed))
	desc := &stypes.StreamDescription{StreamArn: in.StreamArn, StreamStatus: stypes.StreamStatusEnabled, StreamViewType: stypes.StreamViewTypeNewImage}
	for _, sh := range listed[start:end] {
		out := stypes.Shard{ShardId: aws.String(sh.id), SequenceNumberRange: &stypes.SequenceNumberRange{StartingSequenceNumber: aws.String(sh.start)}}
		if sh.parent != "" {
			out.ParentShardId = aws.String(sh.parent)
		}
		if sh.closed {
			out.SequenceNumberRange.EndingSequenceNumber = aws.String(sh.end)
		}
		desc.Shards = append(desc.Shards, out)
	}
	if end < len(listed) {
		desc.LastEvaluatedShardId = aws.String(listed[end-1].id)
	}
	return &dynamodbstreams.DescribeStreamOutput{StreamDescription: desc}, nil
}

// iterator renders a position: stream, shard, absolute record index, epoch.
func (f *fakeStreams) iterator(arn, shardID string, pos int) *string {
	return aws.String(strings.Join([]string{arn, shardID, strconv.Itoa(pos), strconv.Itoa(f.epoch)}, "|"))
}

func (f *fakeStreams) findShard(arn, shardID string) (*fakeShard, error) {
	s, err := f.byArn(arn)
	if err != nil {
		return nil, err
	}
	for _, sh := range s.shards {
		if sh.id == shardID && !sh.gone {
			return sh, nil
		}
	}
	return nil, &stypes.ResourceNotFoundException{Message: aws.String("Shard does not exist")}
}

func (f *fakeStreams) GetShardIterator(_ context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	arn, id := aws.ToString(in.StreamArn), aws.ToString(in.ShardId)
	sh, err := f.findShard(arn, id)
	if err != nil {
		return nil, err
	}
	pos := sh.trimmed
	switch in.ShardIteratorType {
	case stypes.ShardIteratorTypeTrimHorizon:
	case stypes.ShardIteratorTypeLatest:
		pos = sh.trimmed + len(sh.records)
	case stypes.ShardIteratorTypeAfterSequenceNumber, stypes.ShardIteratorTypeAtSequenceNumber:
		seq := aws.ToString(in.SequenceNumber)
		if len(seq) < 21 {
			return nil, fmt.Errorf("fake: ValidationException: sequence number %q too short", seq)
		}
		if sh.trimmed > 0 && (len(sh.records) == 0 || compareSequenceNumbers(seq, *sh.records[0].Dynamodb.SequenceNumber) < 0) {
			return nil, &stypes.TrimmedDataAccessException{Message: aws.String("The requested sequence number is beyond the trim horizon")}
		}
		pos = sh.trimmed + len(sh.records)
		for i, r := range sh.records {
			c := compareSequenceNumbers(*r.Dynamodb.SequenceNumber, seq)
			if c > 0 || (c == 0 && in.ShardIteratorType == stypes.ShardIteratorTypeAtSequenceNumber) {
				pos = sh.trimmed + i
				break
			}
		}
	default:
		return nil, fmt.Errorf("fake: unsupported iterator type %s", in.ShardIteratorType)
	}
	return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: f.iterator(arn, id, pos)}, nil
}

func (f *fakeStreams) GetRecords(_ context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := strings.Split(aws.ToString(in.ShardIterator), "|")
	if len(parts) != 4 {
		return nil, fmt.Errorf("fake: ValidationException: bad iterator")
	}
	pos, _ := strconv.Atoi(parts[2])
	epoch, _ := strconv.Atoi(parts[3])
	f.reads[parts[1]] = append(f.reads[parts[1]], time.Now())
	if f.beforeRead != nil {
		if err := f.beforeRead(parts[1]); err != nil {
			return nil, err
		}
	}
	if epoch != f.epoch {
		return nil, &stypes.ExpiredIteratorException{Message: aws.String("Iterator expired")}
	}
	sh, err := f.findShard(parts[0], parts[1])
	if err != nil {
		return nil, err
	}
	if pos < sh.trimmed {
		return nil, &stypes.TrimmedDataAccessException{Message: aws.String("The operation attempted to read past the oldest stream record in a shard")}
	}
	limit := int(aws.ToInt32(in.Limit))
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	from := pos - sh.trimmed
	to := min(from+limit, len(sh.records))
	out := &dynamodbstreams.GetRecordsOutput{Records: slices.Clone(sh.records[from:to])}
	next := sh.trimmed + to
	if !(sh.closed && to == len(sh.records)) {
		out.NextShardIterator = f.iterator(parts[0], parts[1], next)
	}
	return out, nil
}
