package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
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
	DefaultLiveInterval      = 300 * time.Millisecond
	DefaultMaxLiveClients    = 100
)

// ConsoleURLNone as Config.ConsoleURL turns the console link off.
const ConsoleURLNone = "none"

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
	// when it has no live stream (GET /v1/live), and a tenth as often when it has one.
	// Default 2s.
	PollInterval time.Duration
	// LiveInterval is how often the live hub reads the newest executions and alerts from
	// the store while streams are open (one reader for every stream). Default 300ms.
	LiveInterval time.Duration
	// MaxLiveClients caps the open live streams; one more is answered 503 and its page
	// polls instead. Default 100.
	MaxLiveClients int
	// ConsoleURL is the template of the History page's link from an execution to the
	// Step Functions console (placeholders as in LogLink.URL). Empty: the console of the
	// ARN's partition and region; "none": no link.
	ConsoleURL string
	// LogLinks are the History page's links from an execution to its logs.
	LogLinks []LogLink
}

// LogLink is a link from an execution to its logs that the History page shows beside
// the execution (seed 002 sends people from a failure to CloudWatch Logs).
type LogLink struct {
	// Label names the link, e.g. "Lambda logs".
	Label string `json:"label"`
	// URL is an absolute http(s) URL template. {region} (from the execution's ARN),
	// {executionArn}, {sessionId}, {executionName}, {agentName}, {startMs} and {stopMs}
	// (epoch milliseconds; the stop is "now" while the execution runs) are replaced with
	// the execution's values, percent-encoded except for ':' and '/'.
	URL string `json:"url"`
}

// linkPlaceholders are the names a link template may use.
var linkPlaceholders = []string{"region", "executionArn", "sessionId", "executionName", "agentName", "startMs", "stopMs"}

// placeholder matches {name} in a template.
var placeholder = regexp.MustCompile(`\{([^{}]*)\}`)

// ParseLogLink reads "Label=URL template", the form of the --log-link flag.
func ParseLogLink(s string) (LogLink, error) {
	label, tmpl, ok := strings.Cut(strings.TrimSpace(s), "=")
	l := LogLink{Label: strings.TrimSpace(label), URL: strings.TrimSpace(tmpl)}
	if !ok {
		return l, fmt.Errorf("log link %q: must be LABEL=URL, e.g. \"Lambda logs=https://{region}.console.aws.amazon.com/...\"", s)
	}
	return l, l.Validate()
}

// Validate checks the label and the template: an absolute http(s) URL once its
// placeholders are filled, with no placeholder it does not know.
func (l *LogLink) Validate() error {
	var errs []error
	if l.Label == "" {
		errs = append(errs, errors.New("label: must not be empty"))
	}
	if err := validateLinkTemplate(l.URL); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("log link %q: %w", l.Label, err)
	}
	return nil
}

// validateLinkTemplate checks a link template (see LogLink.URL).
func validateLinkTemplate(tmpl string) error {
	var errs []error
	for _, m := range placeholder.FindAllStringSubmatch(tmpl, -1) {
		if !slices.Contains(linkPlaceholders, m[1]) {
			errs = append(errs, fmt.Errorf("url: unknown placeholder {%s}; use one of {%s}", m[1], strings.Join(linkPlaceholders, "}, {")))
		}
	}
	filled := placeholder.ReplaceAllString(tmpl, "x")
	u, err := url.Parse(filled)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("url %q: %w", tmpl, err))
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		errs = append(errs, fmt.Errorf("url %q: must be an absolute http(s) URL", tmpl))
	}
	return errors.Join(errs...)
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
	if c.LiveInterval == 0 {
		c.LiveInterval = DefaultLiveInterval
	}
	if c.MaxLiveClients == 0 {
		c.MaxLiveClients = DefaultMaxLiveClients
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
	if c.LiveInterval < 50*time.Millisecond {
		errs = append(errs, fmt.Errorf("live interval %s: must be at least 50ms", c.LiveInterval))
	}
	if c.MaxLiveClients < 0 {
		errs = append(errs, fmt.Errorf("max live clients %d: must not be negative", c.MaxLiveClients))
	}
	if c.ConsoleURL != "" && c.ConsoleURL != ConsoleURLNone {
		if err := validateLinkTemplate(c.ConsoleURL); err != nil {
			errs = append(errs, fmt.Errorf("console URL: %w", err))
		}
	}
	for i := range c.LogLinks {
		if err := c.LogLinks[i].Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
