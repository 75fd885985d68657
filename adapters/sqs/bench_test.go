package sqs_test

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/sqs"
	"github.com/agentwatch/agentwatch/adapters/sqs/mototest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// BenchmarkQueueToJournal measures status changes per second from a queue on moto into
// the SQLite journal, through the SQS feed, the router's ingest handler and the
// ingester: each round pre-loads messagesPerRound distinct status changes with
// SendMessageBatch (untimed), then times the drain until the journal holds them all.
// The sdk-baseline case drains the same queue with bare ReceiveMessage (10) and
// DeleteMessage calls and no journal: moto's own ceiling for one consumer, which bounds
// every figure here. moto's ReceiveMessage scans the whole queue (measured: 40 ms at 10
// messages, 180 ms at 100, 670 ms at 300), so rounds are kept small; on SQS a worker is
// bound by its round trips (one receive per BatchSize messages, one delete per message)
// and by the journal's append latency instead.
//
//	go test ./adapters/sqs/ -run '^$' -bench QueueToJournal -benchtime 5x
func BenchmarkQueueToJournal(b *testing.B) {
	const messagesPerRound = 100
	b.Run("sdk-baseline", func(b *testing.B) {
		ac := mototest.AWSConfig(b)
		client := awssqs.NewFromConfig(ac)
		var drained time.Duration
		total := 0
		for round := 0; b.Loop(); round++ {
			b.StopTimer()
			q := mototest.CreateQueueWithDLQ(b, client, mototest.Name(b, "bench"), 3, 30*time.Second)
			preload(b, client, q.URL, round, messagesPerRound)
			b.StartTimer()
			start := time.Now()
			for n := 0; n < messagesPerRound; {
				out, err := client.ReceiveMessage(b.Context(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
				if err != nil {
					b.Fatal(err)
				}
				for _, m := range out.Messages {
					if _, err := client.DeleteMessage(b.Context(), &awssqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: m.ReceiptHandle}); err != nil {
						b.Fatal(err)
					}
					n++
				}
			}
			drained += time.Since(start)
			total += messagesPerRound
		}
		b.ReportMetric(float64(total)/drained.Seconds(), "events/s")
	})
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			ac := mototest.AWSConfig(b)
			client := awssqs.NewFromConfig(ac)
			logger := slog.New(slog.DiscardHandler)
			var drained time.Duration
			total := 0
			for round := 0; b.Loop(); round++ {
				b.StopTimer()
				q := mototest.CreateQueueWithDLQ(b, client, mototest.Name(b, "bench"), 3, 30*time.Second)
				preload(b, client, q.URL, round, messagesPerRound)
				db, err := sqlite.Open(b.Context(), b.TempDir(), logger)
				if err != nil {
					b.Fatal(err)
				}
				journal := sqlite.NewJournalStore(db)
				ingester := app.NewIngester(journal, sqlite.NewQuarantineStore(db), nil, domain.MappingConfig{}, logger, nil)
				sub, err := sqs.New(sqs.Config{QueueURL: q.URL, WaitTime: time.Second, Concurrency: workers, AWSConfig: ac}, nil, logger)
				if err != nil {
					b.Fatal(err)
				}
				router, err := app.NewRouter(app.RouterConfig{}, app.JournalFeed{}, app.StatusChangeFeed{Subscriber: sub, Redelivers: true},
					app.NewQuarantinePublisher(sqlite.NewQuarantineStore(db), nil), nil, ingester, nil, logger)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				done := make(chan error, 1)
				go func() { done <- router.Run(b.Context()) }()
				poll := time.NewTicker(5 * time.Millisecond)
				for {
					n, err := journal.MaxSeq(b.Context())
					if err != nil {
						b.Fatal(err)
					}
					if n >= messagesPerRound {
						break
					}
					<-poll.C
				}
				poll.Stop()
				drained += time.Since(start)
				total += messagesPerRound
				b.StopTimer()
				b.Logf("round %d: %d events in %s", round, messagesPerRound, time.Since(start))
				if err := router.Close(); err != nil {
					b.Fatal(err)
				}
				<-done
				_ = db.Close()
				b.StartTimer()
			}
			perSecond := float64(total) / drained.Seconds()
			b.ReportMetric(perSecond, "events/s")
			b.ReportMetric(perSecond/float64(workers), "events/s/worker")
		})
	}
}

// preload sends n distinct status changes to url, ten per SendMessageBatch, from a few
// goroutines.
func preload(b *testing.B, client *awssqs.Client, url string, round, n int) {
	b.Helper()
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC).UnixMilli()
	var wg sync.WaitGroup
	errs := make(chan error, n/10+1)
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i += 10 {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var entries []sqstypes.SendMessageBatchRequestEntry
			for j := i; j < min(i+10, n); j++ {
				sc := statusChange{StateMachineArn: "arn:aws:states:us-east-1:123456789012:stateMachine:bench-agent",
					Name: fmt.Sprintf("r%d-e%d", round, j), Status: "RUNNING", StartMs: t0 + int64(j)}
				entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(sc.envelope("bench"))})
			}
			out, err := client.SendMessageBatch(b.Context(), &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
			if err == nil && len(out.Failed) > 0 {
				err = fmt.Errorf("%d entries failed", len(out.Failed))
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
