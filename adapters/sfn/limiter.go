package sfn

import (
	"context"
	"sync"
	"time"
)

// Limiter paces calls to at most a rate per second, letting up to burst go at once
// after a pause (a token bucket, kept as the time the next call is due). It is safe for
// concurrent use; waiters are served in the order they arrived.
type Limiter struct {
	interval time.Duration
	burst    int

	mu sync.Mutex
	// due is when the bucket is next empty-but-for-one: a call may start at
	// due - (burst-1)*interval.
	due   time.Time
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// NewLimiter returns a limiter of perSecond calls a second (> 0) and burst (>= 1).
func NewLimiter(perSecond float64, burst int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	return &Limiter{interval: time.Duration(float64(time.Second) / perSecond), burst: burst, now: time.Now, sleep: sleepCtx}
}

// Interval is the time between two calls at the sustained rate.
func (l *Limiter) Interval() time.Duration { return l.interval }

// Burst is how many calls may go at once.
func (l *Limiter) Burst() int { return l.burst }

// SetClock replaces the clock and the way to wait (tests: a fake clock whose sleep
// advances it).
func (l *Limiter) SetClock(now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now, l.sleep = now, sleep
}

// Wait blocks until a call may start or ctx is done, and returns how long it waited. A
// call whose wait was cancelled keeps its slot: the rate is never exceeded.
func (l *Limiter) Wait(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	now := l.now()
	if l.due.Before(now) {
		l.due = now
	}
	start := l.due.Add(-time.Duration(l.burst-1) * l.interval)
	l.due = l.due.Add(l.interval)
	sleep := l.sleep
	l.mu.Unlock()
	d := start.Sub(now)
	if d <= 0 {
		return 0, nil
	}
	return d, sleep(ctx, d)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
