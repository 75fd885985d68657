package sfn

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultTagKeys are the state-machine tag keys tried, in order, for an agent name.
var DefaultTagKeys = []string{"agentName", "AgentName", "agent"}

// Config configures a TagResolver.
type Config struct {
	// TagKeys are the tag keys tried, in order, for the agent name; the first that the
	// state machine carries with a non-empty value wins. Keys match case-sensitively, as
	// AWS compares them. Default: DefaultTagKeys.
	TagKeys []string
	// CacheTTL is how long an answer is kept: a name, or the absence of any TagKeys tag.
	// Tags change rarely; a retag is seen within CacheTTL. Default: 10 minutes.
	CacheTTL time.Duration
	// FailureTTL is how long a failed lookup (throttled, denied, timed out) is kept, so
	// that a failing API costs one call per state machine per FailureTTL rather than one
	// per event. Events in that window get the fallback agent name. Default: 1 minute.
	FailureTTL time.Duration
	// Timeout bounds one ListTagsForResource call, retries included, so that a slow API
	// never holds ingest up for long. Default: 2 seconds.
	Timeout time.Duration
}

// SetDefaults fills the fields left zero.
func (c *Config) SetDefaults() {
	if len(c.TagKeys) == 0 {
		c.TagKeys = append([]string(nil), DefaultTagKeys...)
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = 10 * time.Minute
	}
	if c.FailureTTL == 0 {
		c.FailureTTL = time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
}

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	if len(c.TagKeys) == 0 {
		errs = append(errs, errors.New("sfn: TagKeys is empty"))
	}
	for i, k := range c.TagKeys {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, fmt.Errorf("sfn: TagKeys[%d] is blank", i))
		}
	}
	if c.CacheTTL < 0 {
		errs = append(errs, fmt.Errorf("sfn: CacheTTL must not be negative, is %s", c.CacheTTL))
	}
	if c.FailureTTL < 0 {
		errs = append(errs, fmt.Errorf("sfn: FailureTTL must not be negative, is %s", c.FailureTTL))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("sfn: Timeout must be positive, is %s", c.Timeout))
	}
	return errors.Join(errs...)
}
