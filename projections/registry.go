package projections

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/agentwatch/agentwatch/domain"
)

// Registry holds the registered read models and their tables: what the projector asks
// for changes, what stores create in every generation, what a rebuild derives.
type Registry struct {
	models []ReadModel
	tables []Table
	owner  []string // owner[i] is the read model of tables[i]
}

var modelNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

// NewRegistry checks the read models and their tables and registers them, ordered by
// name.
func NewRegistry(models ...ReadModel) (*Registry, error) {
	r := &Registry{}
	seen := map[string]bool{}
	var errs []error
	models = slices.Clone(models)
	slices.SortFunc(models, func(a, b ReadModel) int { return strings.Compare(a.Name(), b.Name()) })
	for _, m := range models {
		name := m.Name()
		if !modelNameRE.MatchString(name) || seen["model:"+name] {
			errs = append(errs, fmt.Errorf("read model %q: names are unique lower case letters, digits and '_'", name))
			continue
		}
		seen["model:"+name] = true
		for _, t := range m.Tables() {
			if err := t.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("read model %s: %w", name, err))
				continue
			}
			if seen["table:"+t.Name] || t.Name == "sessions" {
				errs = append(errs, fmt.Errorf("read model %s: table %s is declared twice (or is the sessions table)", name, t.Name))
				continue
			}
			seen["table:"+t.Name] = true
			r.tables = append(r.tables, t)
			r.owner = append(r.owner, name)
		}
		r.models = append(r.models, m)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register read models: %w", err)
	}
	return r, nil
}

// Models returns the read models, ordered by name.
func (r *Registry) Models() []ReadModel { return r.models }

// Model returns the read model called name.
func (r *Registry) Model(name string) (ReadModel, bool) {
	for _, m := range r.models {
		if m.Name() == name {
			return m, true
		}
	}
	return nil, false
}

// Names lists the read models' names, ordered.
func (r *Registry) Names() []string {
	out := make([]string, len(r.models))
	for i, m := range r.models {
		out[i] = m.Name()
	}
	return out
}

// Tables returns every table of every read model.
func (r *Registry) Tables() []Table { return r.tables }

// Table returns the table called name.
func (r *Registry) Table(name string) (*Table, bool) {
	for i := range r.tables {
		if r.tables[i].Name == name {
			return &r.tables[i], true
		}
	}
	return nil, false
}

// Owner names the read model of table.
func (r *Registry) Owner(table string) string {
	for i := range r.tables {
		if r.tables[i].Name == table {
			return r.owner[i]
		}
	}
	return ""
}

// Changes appends every read model's changes for a session moving from before to after.
func (r *Registry) Changes(before, after *domain.Session, env Env, out *Changes) {
	for _, m := range r.models {
		m.Changes(before, after, env, out)
	}
}

// Signature names the registered read models and their versions ("name@version,..."):
// a generation built under another signature is out of date.
func (r *Registry) Signature() string {
	parts := make([]string, len(r.models))
	for i, m := range r.models {
		parts[i] = m.Name() + "@" + strconv.Itoa(m.Version())
	}
	return strings.Join(parts, ",")
}
