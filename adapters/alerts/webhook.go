package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/agentwatch/agentwatch/app"
)

// SignatureHeader carries the webhook body's HMAC-SHA256, hex, as "sha256=<hex>".
const SignatureHeader = "X-Agentwatch-Signature"

// WebhookConfig configures a WebhookSink.
type WebhookConfig struct {
	// URL receives a POST of the alert as JSON.
	URL string
	// Secret, if set, signs each body with HMAC-SHA256 in SignatureHeader.
	Secret string
	// Timeout of one attempt.
	Timeout time.Duration
	// Attempts per Send (with exponential backoff between them).
	Attempts int
	// Backoff is the first wait between attempts.
	Backoff time.Duration
}

// SetDefaults fills zero fields.
func (c *WebhookConfig) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Attempts == 0 {
		c.Attempts = 3
	}
	if c.Backoff == 0 {
		c.Backoff = 200 * time.Millisecond
	}
}

// Validate checks the configuration.
func (c *WebhookConfig) Validate() error {
	if c.URL == "" {
		return errors.New("webhook url: is empty")
	}
	return nil
}

// WebhookSink posts alerts as JSON to an HTTP endpoint, retrying with backoff.
// Receivers deduplicate on the Idempotency-Key header (session id and kind).
type WebhookSink struct {
	cfg    WebhookConfig
	client *http.Client
}

var _ app.AlertSink = (*WebhookSink)(nil)

// NewWebhookSink returns a webhook sink.
func NewWebhookSink(cfg WebhookConfig) (*WebhookSink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &WebhookSink{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}}, nil
}

// Name is "webhook".
func (s *WebhookSink) Name() string { return "webhook" }

// Send posts the alert, retrying 5xx answers and transport errors.
func (s *WebhookSink) Send(ctx context.Context, a app.Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	wait := s.cfg.Backoff
	var last error
	for attempt := 1; attempt <= s.cfg.Attempts; attempt++ {
		retry, err := s.post(ctx, a, body)
		if err == nil {
			return nil
		}
		last = err
		if !retry || attempt == s.cfg.Attempts {
			break
		}
		select {
		case <-time.After(wait):
			wait *= 2
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return last
}

func (s *WebhookSink) post(ctx context.Context, a app.Alert, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", a.SessionID+"/"+string(a.Kind))
	req.Header.Set("X-Agentwatch-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	if s.cfg.Secret != "" {
		mac := hmac.New(sha256.New, []byte(s.cfg.Secret))
		mac.Write(body)
		req.Header.Set(SignatureHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return false, fmt.Errorf("webhook answered %s", resp.Status)
	}
}
