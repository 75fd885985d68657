package deployments_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/agentwatch/agentwatch/deployments"
)

// cfnTemplate is a parsed CloudFormation template: maps, lists and scalars, with the
// short forms of intrinsic functions (!Ref, !Sub, !GetAtt, ...) turned into their long
// forms ({"Ref": ...}, {"Fn::Sub": ...}, {"Fn::GetAtt": [resource, attribute]}).
type cfnTemplate map[string]any

// parseTemplate parses a YAML template.
func parseTemplate(b []byte) (cfnTemplate, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	v, err := fromNode(&doc)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("parse template: the document is not a mapping")
	}
	return cfnTemplate(m), nil
}

// loadTemplate parses the embedded template (the file an operator deploys).
func loadTemplate(t testing.TB) cfnTemplate {
	t.Helper()
	tpl, err := parseTemplate(deployments.Template)
	require.NoError(t, err)
	return tpl
}

// clone returns a deep copy, for tests that mutate a template.
func (t cfnTemplate) clone() cfnTemplate {
	b, err := json.Marshal(t)
	if err != nil {
		panic(err) // maps, lists and scalars only
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// fromNode converts a YAML node, expanding intrinsic-function tags.
func fromNode(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, errors.New("empty document")
		}
		return fromNode(n.Content[0])
	case yaml.AliasNode:
		return fromNode(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := fromNode(n.Content[i+1])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n.Content[i].Value, err)
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := fromNode(c)
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		v = l
	case yaml.ScalarNode:
		if isIntrinsicTag(n.Tag) {
			v = n.Value
		} else if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	}
	if !isIntrinsicTag(n.Tag) {
		return v, nil
	}
	switch name := strings.TrimPrefix(n.Tag, "!"); name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, _ := strings.Cut(s, ".")
			v = []any{res, attr}
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	default:
		return map[string]any{"Fn::" + name: v}, nil
	}
}

func isIntrinsicTag(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

// section returns a top-level section (Parameters, Resources, ...).
func (t cfnTemplate) section(name string) map[string]any {
	m, _ := t[name].(map[string]any)
	return m
}

// noValue is what AWS::NoValue evaluates to: the enclosing property or list element
// disappears.
type noValue struct{}

// evaluator evaluates a template's intrinsic functions for one set of parameter values,
// rendering references and attributes the way CloudFormation does for the resource
// types the template uses (a queue's Ref is its URL, a table's Arn attribute its ARN,
// ...), so that IAM resources, environment values and outputs can be compared as the
// strings AWS would see.
type evaluator struct {
	t                          cfnTemplate
	params                     map[string]any // string, or []string for list types
	conds                      map[string]bool
	region, account, partition string
	stack                      string
}

// Pseudo parameters of evaluations: moto's account and region.
const (
	evalRegion  = "us-east-1"
	evalAccount = "123456789012"
)

// newEvaluator evaluates t with the parameter values given (defaults for the others).
func newEvaluator(t cfnTemplate, params map[string]string) (*evaluator, error) {
	e := &evaluator{t: t, params: map[string]any{}, conds: map[string]bool{},
		region: evalRegion, account: evalAccount, partition: "aws", stack: "agentwatch-test"}
	for name, raw := range t.section("Parameters") {
		p, _ := raw.(map[string]any)
		val, ok := params[name]
		if !ok {
			def, hasDefault := p["Default"]
			if !hasDefault {
				return nil, fmt.Errorf("parameter %s has no default and no value", name)
			}
			val = fmt.Sprint(def)
		}
		typ, _ := p["Type"].(string)
		if strings.HasPrefix(typ, "List<") || typ == "CommaDelimitedList" {
			e.params[name] = strings.Split(val, ",")
		} else {
			e.params[name] = val
		}
	}
	for name := range params {
		if _, ok := e.params[name]; !ok {
			return nil, fmt.Errorf("no parameter %s in the template", name)
		}
	}
	for name := range t.section("Conditions") {
		if _, err := e.condition(name, nil); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// condition evaluates a named condition.
func (e *evaluator) condition(name string, seen []string) (bool, error) {
	if v, ok := e.conds[name]; ok {
		return v, nil
	}
	if slices.Contains(seen, name) {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	def, ok := e.t.section("Conditions")[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	v, err := e.condExpr(def, append(seen, name))
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	e.conds[name] = v
	return v, nil
}

func (e *evaluator) condExpr(expr any, seen []string) (bool, error) {
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("not a condition function: %v", expr)
	}
	for fn, arg := range m {
		args, _ := arg.([]any)
		switch fn {
		case "Condition":
			return e.condition(fmt.Sprint(arg), seen)
		case "Fn::Equals":
			if len(args) != 2 {
				return false, errors.New("Fn::Equals takes two values")
			}
			a, err := e.eval(args[0])
			if err != nil {
				return false, err
			}
			b, err := e.eval(args[1])
			if err != nil {
				return false, err
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		case "Fn::Not", "Fn::And", "Fn::Or":
			var vals []bool
			for _, a := range args {
				v, err := e.condExpr(a, seen)
				if err != nil {
					return false, err
				}
				vals = append(vals, v)
			}
			switch {
			case fn == "Fn::Not" && len(vals) == 1:
				return !vals[0], nil
			case fn == "Fn::And":
				return !slices.Contains(vals, false), nil
			case fn == "Fn::Or":
				return slices.Contains(vals, true), nil
			}
			return false, fmt.Errorf("%s: bad arguments", fn)
		}
		return false, fmt.Errorf("unsupported condition function %s", fn)
	}
	panic("unreachable")
}

// resource returns a resource's definition if it exists under the evaluation's
// conditions.
func (e *evaluator) resource(name string) (map[string]any, bool) {
	r, ok := e.t.section("Resources")[name].(map[string]any)
	if !ok {
		return nil, false
	}
	if c, ok := r["Condition"].(string); ok {
		if v, err := e.condition(c, nil); err != nil || !v {
			return nil, false
		}
	}
	return r, true
}

// resources returns the names of the resources of a type that exist under the
// evaluation's conditions, sorted.
func (e *evaluator) resources(typ string) []string {
	var out []string
	for name := range e.t.section("Resources") {
		if r, ok := e.resource(name); ok && r["Type"] == typ {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// property evaluates one property of a resource.
func (e *evaluator) property(res, prop string) (any, error) {
	r, ok := e.resource(res)
	if !ok {
		return nil, fmt.Errorf("no resource %s", res)
	}
	props, _ := r["Properties"].(map[string]any)
	v, err := e.eval(props[prop])
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", res, prop, err)
	}
	return v, nil
}

func (e *evaluator) stringProperty(res, prop string) (string, error) {
	v, err := e.property(res, prop)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s.%s is %T, not a string", res, prop, v)
	}
	return s, nil
}

// eval evaluates every intrinsic function in v.
func (e *evaluator) eval(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for fn, arg := range x {
				if fn == "Ref" || strings.HasPrefix(fn, "Fn::") {
					return e.intrinsic(fn, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			ev, err := e.eval(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, drop := ev.(noValue); !drop {
				out[k] = ev
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, val := range x {
			ev, err := e.eval(val)
			if err != nil {
				return nil, err
			}
			if _, drop := ev.(noValue); !drop {
				out = append(out, ev)
			}
		}
		return out, nil
	}
	return v, nil
}

func (e *evaluator) intrinsic(fn string, arg any) (any, error) {
	args, _ := arg.([]any)
	switch fn {
	case "Ref":
		return e.ref(fmt.Sprint(arg))
	case "Fn::GetAtt":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::GetAtt %v: want [resource, attribute]", arg)
		}
		return e.getAtt(fmt.Sprint(args[0]), fmt.Sprint(args[1]))
	case "Fn::If":
		if len(args) != 3 {
			return nil, fmt.Errorf("Fn::If %v: want [condition, then, else]", arg)
		}
		c, err := e.condition(fmt.Sprint(args[0]), nil)
		if err != nil {
			return nil, err
		}
		if c {
			return e.eval(args[1])
		}
		return e.eval(args[2])
	case "Fn::Sub":
		return e.sub(arg)
	case "Fn::Join":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Join %v: want [separator, list]", arg)
		}
		l, err := e.eval(args[1])
		if err != nil {
			return nil, err
		}
		list, _ := l.([]any)
		parts := make([]string, len(list))
		for i, p := range list {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, fmt.Sprint(args[0])), nil
	}
	return nil, fmt.Errorf("unsupported intrinsic function %s", fn)
}

var subVar = regexp.MustCompile(`\$\{([^}]+)\}`)

func (e *evaluator) sub(arg any) (any, error) {
	var (
		format string
		vars   map[string]any
	)
	switch x := arg.(type) {
	case string:
		format = x
	case []any:
		if len(x) != 2 {
			return nil, fmt.Errorf("Fn::Sub %v: want a string or [string, variables]", arg)
		}
		format = fmt.Sprint(x[0])
		vars, _ = x[1].(map[string]any)
	default:
		return nil, fmt.Errorf("Fn::Sub %v: want a string or [string, variables]", arg)
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(format, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		var (
			v   any
			err error
		)
		if val, ok := vars[name]; ok {
			v, err = e.eval(val)
		} else if res, attr, isAtt := strings.Cut(name, "."); isAtt {
			v, err = e.getAtt(res, attr)
		} else {
			v, err = e.ref(name)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return fmt.Sprint(v)
	})
	if firstErr != nil {
		return nil, fmt.Errorf("Fn::Sub %q: %w", format, firstErr)
	}
	return out, nil
}

// ref renders Ref of a parameter, pseudo parameter or resource.
func (e *evaluator) ref(name string) (any, error) {
	switch name {
	case "AWS::Region":
		return e.region, nil
	case "AWS::AccountId":
		return e.account, nil
	case "AWS::Partition":
		return e.partition, nil
	case "AWS::StackName":
		return e.stack, nil
	case "AWS::NoValue":
		return noValue{}, nil
	}
	if v, ok := e.params[name]; ok {
		if l, isList := v.([]string); isList {
			out := make([]any, len(l))
			for i, s := range l {
				out[i] = s
			}
			return out, nil
		}
		return v, nil
	}
	r, ok := e.resource(name)
	if !ok {
		return nil, fmt.Errorf("Ref %s: no such parameter, or no such resource under these conditions", name)
	}
	arnPrefix := "arn:" + e.partition + ":%s:" + e.region + ":" + e.account + ":"
	switch r["Type"] {
	case "AWS::DynamoDB::Table":
		return e.stringProperty(name, "TableName")
	case "AWS::SQS::Queue":
		q, err := e.stringProperty(name, "QueueName")
		return "https://sqs." + e.region + ".amazonaws.com/" + e.account + "/" + q, err
	case "AWS::SNS::Topic":
		topic, err := e.stringProperty(name, "TopicName")
		return fmt.Sprintf(arnPrefix, "sns") + topic, err
	case "AWS::Events::Rule":
		return e.stringProperty(name, "Name")
	case "AWS::Logs::LogGroup":
		return e.stringProperty(name, "LogGroupName")
	case "AWS::ECS::Cluster":
		return e.stringProperty(name, "ClusterName")
	case "AWS::ECS::TaskDefinition":
		family, err := e.stringProperty(name, "Family")
		return fmt.Sprintf(arnPrefix, "ecs") + "task-definition/" + family + ":1", err
	case "AWS::IAM::Role":
		return e.stack + "-" + name, nil
	}
	return "ref-" + name, nil
}

// getAtt renders Fn::GetAtt.
func (e *evaluator) getAtt(name, attr string) (any, error) {
	r, ok := e.resource(name)
	if !ok {
		return nil, fmt.Errorf("GetAtt %s.%s: no such resource under these conditions", name, attr)
	}
	arnPrefix := "arn:" + e.partition + ":%s:" + e.region + ":" + e.account + ":"
	typ := fmt.Sprint(r["Type"])
	switch typ + "." + attr {
	case "AWS::DynamoDB::Table.Arn":
		table, err := e.stringProperty(name, "TableName")
		return fmt.Sprintf(arnPrefix, "dynamodb") + "table/" + table, err
	case "AWS::DynamoDB::Table.StreamArn":
		table, err := e.stringProperty(name, "TableName")
		return fmt.Sprintf(arnPrefix, "dynamodb") + "table/" + table + "/stream/2026-01-01T00:00:00.000", err
	case "AWS::SQS::Queue.Arn":
		q, err := e.stringProperty(name, "QueueName")
		return fmt.Sprintf(arnPrefix, "sqs") + q, err
	case "AWS::SQS::Queue.QueueName":
		return e.stringProperty(name, "QueueName")
	case "AWS::Events::Rule.Arn":
		rule, err := e.stringProperty(name, "Name")
		return fmt.Sprintf(arnPrefix, "events") + "rule/" + rule, err
	case "AWS::Logs::LogGroup.Arn":
		group, err := e.stringProperty(name, "LogGroupName")
		return fmt.Sprintf(arnPrefix, "logs") + "log-group:" + group + ":*", err
	case "AWS::IAM::Role.Arn":
		return "arn:" + e.partition + ":iam::" + e.account + ":role/" + e.stack + "-" + name, nil
	case "AWS::EC2::SecurityGroup.GroupId":
		return "sg-" + strings.ToLower(name), nil
	case "AWS::ECS::Service.Name":
		return e.stringProperty(name, "ServiceName")
	}
	return nil, fmt.Errorf("GetAtt %s.%s: attribute %s of %s not modelled", name, attr, attr, typ)
}

// TestTemplateParses checks that the evaluator understands every expression of the
// template under each combination of its conditions' inputs: every resource, property
// and output evaluates.
func TestTemplateParses(t *testing.T) {
	tpl := loadTemplate(t)
	for _, params := range templateVariants() {
		t.Run(variantName(params), func(t *testing.T) {
			e, err := newEvaluator(tpl, params)
			require.NoError(t, err)
			for name := range tpl.section("Resources") {
				if r, ok := e.resource(name); ok {
					_, err := e.eval(r["Properties"])
					require.NoError(t, err, name)
				}
			}
			_, err = e.eval(map[string]any(tpl.section("Outputs")))
			require.NoError(t, err)
		})
	}
}

// requiredParams are values for the parameters without a default.
func requiredParams() map[string]string {
	return map[string]string{
		"ContainerImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/agentwatch:test",
		"VpcId":          "vpc-0123456789abcdef0",
		"Subnets":        "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
	}
}

// templateVariants are parameter sets that flip every condition of the template: the
// defaults (a new journal table, no e-mail, no webhook secret, no ingress), and an
// existing journal table with every optional setting.
func templateVariants() []map[string]string {
	defaults := requiredParams()
	everything := requiredParams()
	maps.Copy(everything, map[string]string{
		"JournalTableName":      "agents-table-dev",
		"AlertEmail":            "oncall@example.com",
		"AlertWebhookUrl":       "https://hooks.example.com/agentwatch",
		"AlertWebhookSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:agentwatch-webhook-AbCdEf",
		"MetricsIngressCidr":    "10.0.0.0/8",
		"BaseUrl":               "https://agentwatch.example.com",
		"ExportBucketName":      "analytics-example",
		"ReconcileInterval":     "15m",
		"ReconcileStateMachineArns": "arn:aws:states:us-east-1:123456789012:stateMachine:agent-a," +
			"arn:aws:states:us-east-1:123456789012:stateMachine:agent-b",
	})
	return []map[string]string{defaults, everything}
}

func variantName(params map[string]string) string {
	if params["JournalTableName"] != "" {
		return "existing-journal-all-options"
	}
	return "defaults"
}
