package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultAddr              = "127.0.0.1:8080"
	DefaultMaxBodyBytes      = 10 << 20
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultWriteTimeout      = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultReadyTimeout      = 5 * time.Second
	DefaultPollInterval      = 2 * time.Second
)

// Config configures the HTTP server.
type Config struct {
	// Addr is the TCP address to listen on, host:port. Port 0 picks a free port; Addr
	// on the Server says which. Default 127.0.0.1:8080: loopback only. Listening
	// beyond loopback without AuthToken logs a warning.
	Addr string
	// AuthToken, when set, is the bearer token that every /v1 endpoint requires
	// ("Authorization: Bearer TOKEN", or the cookie that POST /auth/login sets for the
	// History page). At least MinAuthTokenBytes of visible ASCII. Empty: no
	// authentication (cross-origin writes are refused all the same).
	AuthToken string
	// AuthOps also requires the token on /healthz, /readyz and /metrics, which are
	// otherwise open (health checks and scrapers often cannot send a token).
	AuthOps bool
	// MaxBodyBytes caps a request body (POST /v1/events above all); a larger body is
	// answered 413 naming the limit. Default 10 MiB.
	MaxBodyBytes int64
	// BaseURL is the server's address as its users reach it, e.g.
	// "https://agentwatch.example.com", used in links and logs. Empty: derived from the
	// listening address. It should equal the detector's BaseURL so that alert links
	// ("{BaseURL}/?session=ID") open this server's History page.
	BaseURL string
	// ReadHeaderTimeout bounds reading a request's headers (slowloris). Default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. Default 1m.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response. Default 1m.
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive connection waits for its next request.
	// Default 2m.
	IdleTimeout time.Duration
	// ReadyTimeout bounds one call of the readiness check behind /readyz. Default 5s.
	ReadyTimeout time.Duration
	// PollInterval is how often the History page refreshes its executions and alerts
	// (live updates). Default 2s.
	PollInterval time.Duration
}

// SetDefaults fills zero fields with their defaults.
func (c *Config) SetDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
}

// Validate reports every invalid field, joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: must be host:port: %w", c.Addr, err))
	}
	if c.AuthToken != "" {
		if err := checkToken(c.AuthToken); err != nil {
			errs = append(errs, fmt.Errorf("auth token: %w", err))
		}
	} else if c.AuthOps {
		errs = append(errs, errors.New("auth ops: requires an auth token"))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("max body bytes %d: must be positive", c.MaxBodyBytes))
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("base URL %q: %w", c.BaseURL, err))
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
			errs = append(errs, fmt.Errorf("base URL %q: must be an absolute http(s) URL", c.BaseURL))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"read header timeout", c.ReadHeaderTimeout},
		{"read timeout", c.ReadTimeout},
		{"write timeout", c.WriteTimeout},
		{"idle timeout", c.IdleTimeout},
		{"ready timeout", c.ReadyTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative", d.name, d.v))
		}
	}
	if c.PollInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("poll interval %s: must be at least 100ms", c.PollInterval))
	}
	return errors.Join(errs...)
}
