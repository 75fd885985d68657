package deployments_test

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/app"
)

// The template-vs-code check. Each check function returns the problems it finds as
// sentences; the tests require none for the real template, and TestCheckerCatchesDrift
// requires every drift it plants in a copy of the template to be reported.

// notForECS are variables the code reads that no task of the stack sets, and why.
var notForECS = map[string]string{
	"AGENTWATCH_DATA_DIR": "the embedded (SQLite) backend's directory; the stack's tasks run --backend aws",
	"AGENTWATCH_AUTH_TOKEN_FILE": "a file in the container; the stack's worker answers only inside the VPC " +
		"(MetricsIngressCidr), and an operator who wants a token mounts the file and sets the variable",
}

// secretVars are variables that must come from Secrets Manager (a container's Secrets),
// never from a plain environment value; they are set only when the operator gives a
// secret.
var secretVars = map[string]bool{"AGENTWATCH_WEBHOOK_SECRET": true}

// workerCommand is the subcommand of the worker's task; its container also runs the
// health check's subcommand. Every other task definition runs operator commands: every
// other subcommand.
const workerCommand = "run"

// Roles of the task definitions.
const (
	roleWorker   = "worker"
	roleOperator = "operator"
)

// operatorOnly are actions the code calls that only operator commands need: the worker's
// task role must not have them.
var operatorOnly = map[string]string{
	"dynamodb:CreateTable":        "migrate, and rebuild's new read-model generation",
	"dynamodb:DeleteTable":        "rebuild drops the old generation",
	"dynamodb:UpdateTable":        "migrate adds a missing index, or the stream of an existing journal table",
	"dynamodb:DescribeTimeToLive": "migrate checks the TTL attribute",
	"dynamodb:UpdateTimeToLive":   "migrate enables the TTL attribute",
	"s3:PutObject":                "`agentwatch export --out s3://...`",
	"s3:AbortMultipartUpload":     "`agentwatch export --out s3://...`",
}

// workerOnly are actions only the worker needs: the operator's task role must not have
// them.
var workerOnly = map[string]string{
	"sqs:DeleteMessage": "only the worker consumes the queue",
	"sns:Publish":       "only the worker's stuck detector sends alerts",
	// Only the worker reads the journal's stream; rebuild and backfill scan and write.
	"dynamodb:DescribeStream":   "the journal feed",
	"dynamodb:GetRecords":       "the journal feed",
	"dynamodb:GetShardIterator": "the journal feed",
	"dynamodb:ListStreams":      "the journal feed",
}

// streamActions read the journal's stream.
var streamActions = map[string]bool{
	"dynamodb:DescribeStream": true, "dynamodb:GetRecords": true, "dynamodb:GetShardIterator": true, "dynamodb:ListStreams": true,
}

// Resource keys of the check: "table:<Tables field>", "generation:<field>" (that
// table's generations 2, 3, ...: <name>-g*), "index:<field>", "generation-index:<field>",
// "stream:Journal", "queue", "dlq", "topic", "statemachines", "sfn-executions".
const (
	keyQueue         = "queue"
	keyDLQ           = "dlq"
	keyTopic         = "topic"
	keyStateMachines = "statemachines"
	keySFNExecutions = "sfn-executions"
	keyJournalStream = "stream:Journal"
	keyExport        = "export-objects"
)

// resourcesFor says on what a role needs an action; ok is false when the check has no
// rule for the action (a new kind of call: decide where the template grants it, and add
// it here).
func (s *stackShape) resourcesFor(role, action string) (keys []string, ok bool) {
	service, op, _ := strings.Cut(action, ":")
	switch service {
	case "dynamodb":
		switch {
		case streamActions[action]:
			return []string{keyJournalStream}, true
		case op == "CreateTable" || op == "DeleteTable":
			return s.generationKeys(), true
		case op == "Query":
			return append(s.tableKeys(), s.indexKeys()...), true
		}
		return s.tableKeys(), true
	case "sqs":
		switch op {
		case "ReceiveMessage":
			if role == roleWorker {
				return []string{keyQueue}, true
			}
			return []string{keyDLQ}, true
		case "DeleteMessage":
			return []string{keyQueue}, true
		case "GetQueueAttributes":
			return []string{keyQueue, keyDLQ}, true
		case "ChangeMessageVisibility":
			// The worker extends the visibility of the messages it handles; `agentwatch
			// dlq` peeks at the dead-letter queue and puts the messages back.
			if role == roleWorker {
				return []string{keyQueue}, true
			}
			return []string{keyDLQ}, true
		case "GetQueueUrl":
			return []string{keyDLQ}, true
		}
	case "sns":
		if op == "Publish" {
			return []string{keyTopic}, true
		}
	case "s3":
		// Export is optional: without ExportBucketName nothing in S3 is granted.
		if op == "PutObject" || op == "AbortMultipartUpload" {
			if s.exportObjects == "" {
				return nil, true
			}
			return []string{keyExport}, true
		}
	case "states":
		switch op {
		case "ListTagsForResource", "ListExecutions":
			return []string{keyStateMachines}, true
		case "DescribeExecution":
			return []string{keySFNExecutions}, true
		}
	}
	return nil, false
}

// stackShape is what the check knows of one evaluation of the template: the deployment's
// table names by the code's own naming (adapters/dynamodb.Config.TableRoles), and which
// resources are the status-change queue, its dead-letter queue and the alert topic.
type stackShape struct {
	e       *evaluator
	prefix  string
	tables  map[string]string // table name -> Tables field
	gens    map[string]bool   // Tables fields whose table has generations
	indexed map[string]bool   // Tables fields whose template table has GSIs
	queue   string            // logical names
	dlq     string
	topics  map[string]string // topic ARN -> logical name
	// exportObjects is the S3 resource of the export's objects, "" without an export
	// bucket: arn:aws:s3:::<ExportBucketName>/<ExportPrefix>*.
	exportObjects string
	problems      []string
}

// newStackShape evaluates the template with params.
func newStackShape(tpl cfnTemplate, params map[string]string) *stackShape {
	s := &stackShape{tables: map[string]string{}, gens: map[string]bool{}, indexed: map[string]bool{}, topics: map[string]string{}}
	e, err := newEvaluator(tpl, params)
	if err != nil {
		s.problems = append(s.problems, err.Error())
		return s
	}
	s.e = e
	s.prefix, _ = e.params["TablePrefix"].(string)
	if bucket, _ := e.params["ExportBucketName"].(string); bucket != "" {
		s.exportObjects = "arn:" + e.partition + ":s3:::" + bucket + "/" + fmt.Sprint(e.params["ExportPrefix"]) + "*"
	}
	journal, _ := e.params["JournalTableName"].(string)
	cfg := awdynamodb.Config{TablePrefix: s.prefix, JournalTable: journal}
	cfg.SetDefaults()
	reg, err := app.NewRegistry(app.Config{})
	if err != nil {
		s.problems = append(s.problems, err.Error())
		return s
	}
	g1, g2 := cfg.TableRoles(reg, 1), cfg.TableRoles(reg, 2)
	for role, name := range g1 {
		s.tables[name] = role
		if name != g2[role] {
			s.gens[role] = true
		}
	}
	for _, res := range e.resources("AWS::DynamoDB::Table") {
		name, err := e.stringProperty(res, "TableName")
		if err != nil {
			s.problems = append(s.problems, err.Error())
			continue
		}
		if gsis, _ := e.property(res, "GlobalSecondaryIndexes"); gsis != nil && s.tables[name] != "" {
			s.indexed[s.tables[name]] = true
		}
	}
	// The queue is the SQS target of the EventBridge rule; its dead-letter queue the
	// target of its redrive policy.
	queueByArn := map[string]string{}
	for _, q := range e.resources("AWS::SQS::Queue") {
		arn, err := e.getAtt(q, "Arn")
		if err == nil {
			queueByArn[fmt.Sprint(arn)] = q
		}
	}
	for _, rule := range e.resources("AWS::Events::Rule") {
		targets, _ := e.property(rule, "Targets")
		for _, tg := range asList(targets) {
			if q := queueByArn[fmt.Sprint(asMap(tg)["Arn"])]; q != "" {
				s.queue = q
			}
		}
	}
	if s.queue == "" {
		s.problems = append(s.problems, "no EventBridge rule targets an SQS queue of the stack")
	} else if rp, _ := e.property(s.queue, "RedrivePolicy"); rp != nil {
		s.dlq = queueByArn[fmt.Sprint(asMap(rp)["deadLetterTargetArn"])]
	}
	for _, topic := range e.resources("AWS::SNS::Topic") {
		if arn, err := e.ref(topic); err == nil {
			s.topics[fmt.Sprint(arn)] = topic
		}
	}
	return s
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

// stringsOf reads a string or a list of strings (IAM's Action and Resource).
func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

func (s *stackShape) tableKeys() []string {
	var out []string
	for _, field := range s.tables {
		out = append(out, "table:"+field)
		if s.gens[field] {
			out = append(out, "generation:"+field)
		}
	}
	return out
}

func (s *stackShape) generationKeys() []string {
	var out []string
	for field := range s.gens {
		out = append(out, "generation:"+field)
	}
	return out
}

func (s *stackShape) indexKeys() []string {
	var out []string
	for field := range s.indexed {
		out = append(out, "index:"+field)
		if s.gens[field] {
			out = append(out, "generation-index:"+field)
		}
	}
	return out
}

// classify names the stack resource an IAM resource ARN designates.
func (s *stackShape) classify(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return "", fmt.Errorf("%q is not an ARN", arn)
	}
	service, region, account, res := parts[2], parts[3], parts[4], parts[5]
	if service == "s3" {
		// S3 ARNs name no region or account.
		if s.exportObjects != "" && arn == s.exportObjects {
			return keyExport, nil
		}
		return "", fmt.Errorf("%s is not the export's objects", arn)
	}
	if region != s.e.region || account != s.e.account {
		return "", fmt.Errorf("%s is outside the stack's region and account", arn)
	}
	switch service {
	case "dynamodb":
		rest, ok := strings.CutPrefix(res, "table/")
		if !ok {
			return "", fmt.Errorf("%s is not a table", arn)
		}
		name, sub, _ := strings.Cut(rest, "/")
		field, gen := s.tables[name], false
		if field == "" {
			if base, isGen := strings.CutSuffix(name, "-g*"); isGen && s.gens[s.tables[base]] {
				field, gen = s.tables[base], true
			}
		}
		if field == "" {
			return "", fmt.Errorf("%s is none of agentwatch's tables", arn)
		}
		switch {
		case sub == "" && gen:
			return "generation:" + field, nil
		case sub == "":
			return "table:" + field, nil
		case sub == "index/*" && gen:
			return "generation-index:" + field, nil
		case sub == "index/*":
			return "index:" + field, nil
		case strings.HasPrefix(sub, "stream/") && field == "Journal" && !gen:
			return keyJournalStream, nil
		}
		return "", fmt.Errorf("%s: %q of a table is neither index/* nor the journal's stream", arn, sub)
	case "sqs":
		for key, q := range map[string]string{keyQueue: s.queue, keyDLQ: s.dlq} {
			if q == "" {
				continue
			}
			if a, err := s.e.getAtt(q, "Arn"); err == nil && a == arn {
				return key, nil
			}
		}
	case "sns":
		if s.topics[arn] != "" {
			return keyTopic, nil
		}
	case "states":
		switch res {
		case "stateMachine:*":
			return keyStateMachines, nil
		case "execution:*":
			return keySFNExecutions, nil
		}
	}
	return "", fmt.Errorf("%s is none of the stack's resources", arn)
}

// taskDefinition is one ECS task definition of the stack, evaluated.
type taskDefinition struct {
	name      string // logical
	role      string // roleWorker or roleOperator
	props     map[string]any
	container map[string]any
	command   []string
}

// taskDefinitions returns the stack's task definitions; the worker's is the one whose
// container runs workerCommand.
func (s *stackShape) taskDefinitions() ([]taskDefinition, []string) {
	var out []taskDefinition
	var problems []string
	for _, name := range s.e.resources("AWS::ECS::TaskDefinition") {
		r, _ := s.e.resource(name)
		props, err := s.e.eval(r["Properties"])
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		td := taskDefinition{name: name, props: asMap(props), role: roleOperator}
		containers := asList(td.props["ContainerDefinitions"])
		if len(containers) != 1 {
			problems = append(problems, fmt.Sprintf("%s: want one container, has %d", name, len(containers)))
			continue
		}
		td.container = asMap(containers[0])
		td.command = stringsOf(td.container["Command"])
		if len(td.command) > 0 && td.command[0] == workerCommand {
			td.role = roleWorker
		}
		out = append(out, td)
	}
	var workers int
	for _, td := range out {
		if td.role == roleWorker {
			workers++
		}
	}
	if workers != 1 {
		problems = append(problems, fmt.Sprintf("want one task definition whose container runs %q, have %d", workerCommand, workers))
	}
	return out, problems
}

// roleOf returns the logical name of the role a task definition property names
// (TaskRoleArn or ExecutionRoleArn: Fn::GetAtt [Role, Arn]).
func (s *stackShape) roleOf(td taskDefinition, prop string) string {
	r, _ := s.e.resource(td.name)
	raw := asMap(asMap(r["Properties"])[prop])
	if ga := asList(raw["Fn::GetAtt"]); len(ga) == 2 && ga[1] == "Arn" {
		return fmt.Sprint(ga[0])
	}
	return ""
}

// checkEnvironment checks the environment of every task definition: exactly the
// variables its commands read (a static call graph of cmd/agentwatch says which), AWS_REGION,
// secrets only as secrets, and the values that tie them to the stack's resources.
func checkEnvironment(tpl cfnTemplate, params map[string]string, facts codeFacts) []string {
	s := newStackShape(tpl, params)
	if s.e == nil {
		return s.problems
	}
	problems := slices.Clone(s.problems)
	tds, p := s.taskDefinitions()
	problems = append(problems, p...)
	workerCommands := map[string]bool{workerCommand: true}
	for _, td := range tds {
		if hc := stringsOf(asMap(td.container["HealthCheck"])["Command"]); td.role == roleWorker && len(hc) > 2 {
			workerCommands[hc[2]] = true
		}
	}
	for _, td := range tds {
		reads := maps.Clone(facts.EnvByCommand[""])
		for cmd, vars := range facts.EnvByCommand {
			if cmd != "" && workerCommands[cmd] == (td.role == roleWorker) {
				maps.Copy(reads, vars)
			}
		}
		want := map[string]bool{"AWS_REGION": true}
		for v := range reads {
			if notForECS[v] == "" {
				want[v] = true
			}
		}
		have := map[string]string{}
		for _, kv := range asList(td.container["Environment"]) {
			name := fmt.Sprint(asMap(kv)["Name"])
			have[name] = fmt.Sprint(asMap(kv)["Value"])
			if secretVars[name] {
				problems = append(problems, fmt.Sprintf("%s: %s is a plain environment value: it must come from Secrets", td.name, name))
			}
		}
		secrets := map[string]bool{}
		for _, kv := range asList(td.container["Secrets"]) {
			secrets[fmt.Sprint(asMap(kv)["Name"])] = true
		}
		for v := range want {
			if _, ok := have[v]; !ok && !(secretVars[v] && (secrets[v] || params["AlertWebhookSecretArn"] == "")) {
				problems = append(problems, fmt.Sprintf("%s: environment lacks %s, which the %s task's commands read (%s)", td.name, v, td.role, facts.EnvVars[v]))
			}
		}
		for v := range have {
			if !want[v] {
				why := "which none of its commands reads"
				if reason := notForECS[v]; reason != "" {
					why = "which the stack must not set: " + reason
				}
				problems = append(problems, fmt.Sprintf("%s: environment sets %s, %s", td.name, v, why))
			}
		}
		for v := range secrets {
			if !want[v] || !secretVars[v] {
				problems = append(problems, fmt.Sprintf("%s: secret %s is not a secret the %s task's commands read", td.name, v, td.role))
			}
		}
		problems = append(problems, s.checkEnvValues(td, have)...)
	}
	return problems
}

// checkEnvValues checks the values that must name the stack's own resources.
func (s *stackShape) checkEnvValues(td taskDefinition, env map[string]string) []string {
	var problems []string
	journal := ""
	for name, field := range s.tables {
		if field == "Journal" {
			journal = name
		}
	}
	want := map[string]string{
		"AGENTWATCH_BACKEND":      "aws",
		"AGENTWATCH_LOG_FORMAT":   "json",
		"AGENTWATCH_TABLE_PREFIX": s.prefix,
		// The code's own name for the journal with these parameters.
		"AGENTWATCH_JOURNAL_TABLE": journal,
		"AWS_REGION":               s.e.region,
	}
	if s.queue != "" {
		url, _ := s.e.ref(s.queue)
		want["AGENTWATCH_SFN_QUEUE_URL"] = fmt.Sprint(url)
	}
	if s.dlq != "" {
		url, _ := s.e.ref(s.dlq)
		want["AGENTWATCH_SFN_DLQ_URL"] = fmt.Sprint(url)
	}
	if len(s.topics) == 1 {
		for arn := range s.topics {
			want["AGENTWATCH_ALERT_TOPIC_ARN"] = arn
		}
	}
	var ports []string
	for _, pm := range asList(td.container["PortMappings"]) {
		ports = append(ports, fmt.Sprint(asMap(pm)["ContainerPort"]))
	}
	if addr, ok := env["AGENTWATCH_HTTP_ADDR"]; ok {
		host, port, _ := strings.Cut(addr, ":")
		if host != "0.0.0.0" || !slices.Contains(ports, port) {
			problems = append(problems, fmt.Sprintf("%s: AGENTWATCH_HTTP_ADDR %q must listen on 0.0.0.0 at a mapped container port %v", td.name, addr, ports))
		}
	}
	for name, v := range want {
		if got, ok := env[name]; ok && got != v {
			problems = append(problems, fmt.Sprintf("%s: %s is %q, want %q", td.name, name, got, v))
		}
	}
	return problems
}

// grants are what a role allows: action -> resource keys.
type grants map[string]map[string]bool

func (g grants) add(action, key string) {
	if g[action] == nil {
		g[action] = map[string]bool{}
	}
	g[action][key] = true
}

// checkIAM checks the task roles against the actions the code calls: each role grants
// exactly the actions its tasks' commands need, each on exactly the resources
// resourcesFor names, with no wildcard action and no "*" resource; and the execution
// role can pull the image and write the logs, and nothing else.
func checkIAM(tpl cfnTemplate, params map[string]string, facts codeFacts) []string {
	s := newStackShape(tpl, params)
	if s.e == nil {
		return s.problems
	}
	problems := slices.Clone(s.problems)
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group"} {
		if res := s.e.resources(typ); len(res) > 0 {
			problems = append(problems, fmt.Sprintf("%v: %s is not checked here: keep the task roles' policies inline", res, typ))
		}
	}
	tds, p := s.taskDefinitions()
	problems = append(problems, p...)
	checkedRoles := map[string]string{}
	execRoles := map[string]bool{}
	for _, td := range tds {
		role := s.roleOf(td, "TaskRoleArn")
		if role == "" {
			problems = append(problems, fmt.Sprintf("%s: TaskRoleArn must be the Arn of a role of the stack", td.name))
			continue
		}
		if prev, ok := checkedRoles[role]; ok && prev != td.role {
			problems = append(problems, fmt.Sprintf("role %s serves both the %s and the %s task", role, prev, td.role))
		}
		checkedRoles[role] = td.role
		if er := s.roleOf(td, "ExecutionRoleArn"); er != "" {
			execRoles[er] = true
		} else {
			problems = append(problems, fmt.Sprintf("%s: ExecutionRoleArn must be the Arn of a role of the stack", td.name))
		}
		have, p := s.roleGrants(role)
		problems = append(problems, p...)
		want := grants{}
		for action, where := range facts.Actions {
			if td.role == roleWorker && operatorOnly[action] != "" || td.role == roleOperator && workerOnly[action] != "" {
				continue
			}
			keys, ok := s.resourcesFor(td.role, action)
			if !ok {
				problems = append(problems, fmt.Sprintf("the code calls %s (%s), and the check has no rule for where to grant it: add one to resourcesFor", action, where))
				continue
			}
			for _, k := range keys {
				want.add(action, k)
			}
		}
		problems = append(problems, compareGrants(role, td.role, have, want, facts)...)
	}
	for role := range execRoles {
		if checkedRoles[role] != "" {
			problems = append(problems, fmt.Sprintf("role %s is both a task role and an execution role", role))
		}
		problems = append(problems, s.checkExecutionRole(role, params)...)
	}
	for _, role := range s.e.resources("AWS::IAM::Role") {
		if checkedRoles[role] == "" && !execRoles[role] {
			problems = append(problems, fmt.Sprintf("role %s is neither a task role nor an execution role of the stack", role))
		}
		problems = append(problems, s.checkTrust(role)...)
	}
	return problems
}

func compareGrants(role, kind string, have, want grants, facts codeFacts) []string {
	var problems []string
	for _, action := range slices.Sorted(maps.Keys(want)) {
		if have[action] == nil {
			problems = append(problems, fmt.Sprintf("%s (%s task role) lacks %s, which the code calls at %s", role, kind, action, facts.Actions[action]))
			continue
		}
		if missing := sortedKeys(minus(want[action], have[action])); len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("%s (%s task role) grants %s without %v", role, kind, action, missing))
		}
		if extra := sortedKeys(minus(have[action], want[action])); len(extra) > 0 {
			problems = append(problems, fmt.Sprintf("%s (%s task role) grants %s on %v too, which the code does not need", role, kind, action, extra))
		}
	}
	for _, action := range slices.Sorted(maps.Keys(have)) {
		if want[action] != nil {
			continue
		}
		why := "which the code does not call"
		if _, called := facts.Actions[action]; called {
			why = "which only the other task's commands call"
		}
		problems = append(problems, fmt.Sprintf("%s (%s task role) grants %s, %s", role, kind, action, why))
	}
	return problems
}

func minus(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		if !b[k] {
			out[k] = true
		}
	}
	return out
}

// statements returns the evaluated statements of a role's inline policies.
func (s *stackShape) statements(role string) ([]map[string]any, []string) {
	var problems []string
	r, ok := s.e.resource(role)
	if !ok {
		return nil, []string{fmt.Sprintf("no role %s", role)}
	}
	if r["Type"] != "AWS::IAM::Role" {
		return nil, []string{fmt.Sprintf("%s is a %v, not an AWS::IAM::Role", role, r["Type"])}
	}
	props := asMap(r["Properties"])
	if props["ManagedPolicyArns"] != nil || props["PermissionsBoundary"] != nil {
		problems = append(problems, fmt.Sprintf("%s: managed policies are not checked here: keep its policies inline", role))
	}
	policies, err := s.e.eval(props["Policies"])
	if err != nil {
		return nil, append(problems, fmt.Sprintf("%s: %v", role, err))
	}
	var out []map[string]any
	for _, pol := range asList(policies) {
		for _, st := range asList(asMap(asMap(pol)["PolicyDocument"])["Statement"]) {
			out = append(out, asMap(st))
		}
	}
	return out, problems
}

// roleGrants reads what a task role allows.
func (s *stackShape) roleGrants(role string) (grants, []string) {
	stmts, problems := s.statements(role)
	g := grants{}
	for i, st := range stmts {
		where := fmt.Sprintf("%s statement %d", role, i+1)
		if sid, ok := st["Sid"]; ok {
			where = fmt.Sprintf("%s statement %v", role, sid)
		}
		for _, k := range []string{"NotAction", "NotResource", "NotPrincipal"} {
			if st[k] != nil {
				problems = append(problems, fmt.Sprintf("%s: %s grants everything but a list: not allowed", where, k))
			}
		}
		if st["Effect"] != "Allow" {
			problems = append(problems, fmt.Sprintf("%s: Effect %v (only Allow statements are expected)", where, st["Effect"]))
			continue
		}
		var keys []string
		for _, res := range stringsOf(st["Resource"]) {
			if res == "*" {
				problems = append(problems, fmt.Sprintf("%s: Resource \"*\"", where))
				continue
			}
			key, err := s.classify(res)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", where, err))
				continue
			}
			keys = append(keys, key)
		}
		for _, a := range stringsOf(st["Action"]) {
			if strings.Contains(a, "*") {
				problems = append(problems, fmt.Sprintf("%s: wildcard action %q", where, a))
				continue
			}
			for _, k := range keys {
				g.add(a, k)
			}
		}
	}
	return g, problems
}

// checkExecutionRole: the image pull and the log writes, and the webhook secret when
// one is given; "*" only for ecr:GetAuthorizationToken, which has no resource.
func (s *stackShape) checkExecutionRole(role string, params map[string]string) []string {
	stmts, problems := s.statements(role)
	region, account := s.e.region, s.e.account
	repo, _ := s.e.params["ImageRepositoryName"].(string)
	var logGroups []string
	for _, lg := range s.e.resources("AWS::Logs::LogGroup") {
		if arn, err := s.e.getAtt(lg, "Arn"); err == nil {
			logGroups = append(logGroups, fmt.Sprint(arn))
		}
	}
	allowed := map[string][]string{
		"ecr:GetAuthorizationToken":  {"*"},
		"ecr:BatchGetImage":          {"arn:aws:ecr:" + region + ":" + account + ":repository/" + repo},
		"ecr:GetDownloadUrlForLayer": {"arn:aws:ecr:" + region + ":" + account + ":repository/" + repo},
		"logs:CreateLogStream":       logGroups,
		"logs:PutLogEvents":          logGroups,
	}
	if secret := params["AlertWebhookSecretArn"]; secret != "" {
		allowed["secretsmanager:GetSecretValue"] = []string{secret}
	}
	seen := map[string]bool{}
	for i, st := range stmts {
		if st["Effect"] != "Allow" || st["NotAction"] != nil || st["NotResource"] != nil {
			problems = append(problems, fmt.Sprintf("%s statement %d: only plain Allow statements are expected", role, i+1))
			continue
		}
		for _, a := range stringsOf(st["Action"]) {
			ok, found := allowed[a]
			if !found {
				problems = append(problems, fmt.Sprintf("%s (execution role) grants %s: it only pulls the image, writes logs and reads the webhook secret", role, a))
				continue
			}
			seen[a] = true
			for _, res := range stringsOf(st["Resource"]) {
				if !slices.Contains(ok, res) {
					problems = append(problems, fmt.Sprintf("%s (execution role) grants %s on %s, want %v", role, a, res, ok))
				}
			}
		}
	}
	for a := range allowed {
		if !seen[a] {
			problems = append(problems, fmt.Sprintf("%s (execution role) lacks %s", role, a))
		}
	}
	return problems
}

// checkTrust: only ECS tasks assume the stack's roles.
func (s *stackShape) checkTrust(role string) []string {
	r, _ := s.e.resource(role)
	doc, err := s.e.eval(asMap(r["Properties"])["AssumeRolePolicyDocument"])
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", role, err)}
	}
	var problems []string
	for _, st := range asList(asMap(doc)["Statement"]) {
		principal := asMap(asMap(st)["Principal"])
		svc := stringsOf(principal["Service"])
		if len(principal) != 1 || len(svc) != 1 || svc[0] != "ecs-tasks.amazonaws.com" {
			problems = append(problems, fmt.Sprintf("%s: trusts %v; only ecs-tasks.amazonaws.com may assume it", role, asMap(st)["Principal"]))
		}
	}
	return problems
}

// checkTaskDefinitions checks what ties the worker's task to the binary: its command
// is the worker subcommand, ECS waits longer than --shutdown-timeout between SIGTERM
// and SIGKILL, the health check runs the image's entrypoint, and the service runs it.
func checkTaskDefinitions(tpl cfnTemplate, params map[string]string, entrypoint string) []string {
	s := newStackShape(tpl, params)
	if s.e == nil {
		return s.problems
	}
	tds, problems := s.taskDefinitions()
	for _, td := range tds {
		c := td.container
		if c["ReadonlyRootFilesystem"] != true {
			problems = append(problems, fmt.Sprintf("%s: ReadonlyRootFilesystem must be true (agentwatch writes nothing to disk in aws mode)", td.name))
		}
		if c["Privileged"] == true || c["User"] == "root" || c["User"] == "0" {
			problems = append(problems, fmt.Sprintf("%s: runs privileged or as root", td.name))
		}
		stop, err := strconv.Atoi(fmt.Sprint(c["StopTimeout"]))
		if err != nil || stop < 1 || stop > 120 {
			problems = append(problems, fmt.Sprintf("%s: StopTimeout %v must be 1 to 120 seconds (Fargate's limit)", td.name, c["StopTimeout"]))
		}
		if td.role != roleWorker {
			// export writes its NDJSON to os.TempDir() before uploading it to S3.
			var tmp bool
			for _, mp := range asList(c["MountPoints"]) {
				tmp = tmp || asMap(mp)["ContainerPath"] == "/tmp" && asMap(mp)["ReadOnly"] != true
			}
			if !tmp {
				problems = append(problems, fmt.Sprintf("%s: a read-only root filesystem needs a writable volume at /tmp (export's temporary file)", td.name))
			}
			continue
		}
		shutdown := 30 * time.Second // run's default
		for i, a := range td.command {
			v, isFlag := "", false
			switch {
			case a == "--shutdown-timeout" && i+1 < len(td.command):
				v, isFlag = td.command[i+1], true
			case strings.HasPrefix(a, "--shutdown-timeout="):
				v, isFlag = strings.TrimPrefix(a, "--shutdown-timeout="), true
			}
			if isFlag {
				if shutdown, err = time.ParseDuration(v); err != nil {
					problems = append(problems, fmt.Sprintf("%s: --shutdown-timeout %q: %v", td.name, v, err))
				}
			}
		}
		if margin := time.Duration(stop)*time.Second - shutdown; margin < 5*time.Second {
			problems = append(problems, fmt.Sprintf("%s: StopTimeout %ds leaves %s after --shutdown-timeout %s: ECS would SIGKILL the worker before its graceful shutdown ends (want at least 5s)",
				td.name, stop, margin, shutdown))
		}
		hc := stringsOf(asMap(c["HealthCheck"])["Command"])
		if len(hc) < 3 || hc[0] != "CMD" || hc[1] != entrypoint || hc[2] != "healthcheck" {
			problems = append(problems, fmt.Sprintf("%s: HealthCheck.Command %v, want [CMD %s healthcheck ...] (distroless has no shell or curl)", td.name, hc, entrypoint))
		}
		var served bool
		for _, svc := range s.e.resources("AWS::ECS::Service") {
			r, _ := s.e.resource(svc)
			if ref := asMap(asMap(r["Properties"])["TaskDefinition"])["Ref"]; ref == td.name {
				served = true
			}
		}
		if !served {
			problems = append(problems, fmt.Sprintf("%s: no ECS service runs the worker's task definition", td.name))
		}
	}
	return problems
}

// tableSchema is one table as the check compares it.
type tableSchema struct {
	Key     string            // "HASH PK S, RANGE SK S"
	Indexes map[string]string // name -> "HASH agentName S, RANGE startDate S; ALL"
	Stream  string            // view type; "" without a stream
	TTL     string            // TTL attribute; "" without TTL
	Billing string
}

func (a tableSchema) diff(b tableSchema) []string {
	var out []string
	if a.Key != b.Key {
		out = append(out, fmt.Sprintf("key is %q, the code's is %q", a.Key, b.Key))
	}
	for _, ix := range slices.Sorted(maps.Keys(b.Indexes)) {
		switch got, ok := a.Indexes[ix]; {
		case !ok:
			out = append(out, fmt.Sprintf("lacks index %s (%s)", ix, b.Indexes[ix]))
		case got != b.Indexes[ix]:
			out = append(out, fmt.Sprintf("index %s is %q, the code's is %q", ix, got, b.Indexes[ix]))
		}
	}
	for _, ix := range slices.Sorted(maps.Keys(a.Indexes)) {
		if _, ok := b.Indexes[ix]; !ok {
			out = append(out, fmt.Sprintf("has index %s, which the code does not create", ix))
		}
	}
	if a.Stream != b.Stream {
		out = append(out, fmt.Sprintf("stream is %q, the code's is %q", a.Stream, b.Stream))
	}
	if a.TTL != b.TTL {
		out = append(out, fmt.Sprintf("TTL attribute is %q, the code's is %q", a.TTL, b.TTL))
	}
	if a.Billing != b.Billing {
		out = append(out, fmt.Sprintf("billing mode is %q, the code's is %q", a.Billing, b.Billing))
	}
	return out
}

// templateTables reads the tables of the template evaluated with the prefix.
func templateTables(tpl cfnTemplate, prefix string) (map[string]tableSchema, []string) {
	params := requiredParams()
	params["TablePrefix"] = prefix
	e, err := newEvaluator(tpl, params)
	if err != nil {
		return nil, []string{err.Error()}
	}
	out := map[string]tableSchema{}
	var problems []string
	for _, res := range e.resources("AWS::DynamoDB::Table") {
		r, _ := e.resource(res)
		p, err := e.eval(r["Properties"])
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", res, err))
			continue
		}
		props := asMap(p)
		types := map[string]string{}
		for _, d := range asList(props["AttributeDefinitions"]) {
			types[fmt.Sprint(asMap(d)["AttributeName"])] = fmt.Sprint(asMap(d)["AttributeType"])
		}
		keyOf := func(ks any) string {
			var parts []string
			for _, k := range asList(ks) {
				name := fmt.Sprint(asMap(k)["AttributeName"])
				parts = append(parts, fmt.Sprintf("%s %s %s", asMap(k)["KeyType"], name, types[name]))
			}
			return strings.Join(parts, ", ")
		}
		ts := tableSchema{Key: keyOf(props["KeySchema"]), Indexes: map[string]string{}, Billing: fmt.Sprint(props["BillingMode"])}
		for _, g := range asList(props["GlobalSecondaryIndexes"]) {
			gm := asMap(g)
			ts.Indexes[fmt.Sprint(gm["IndexName"])] = keyOf(gm["KeySchema"]) + "; " + fmt.Sprint(asMap(gm["Projection"])["ProjectionType"])
		}
		if ss := asMap(props["StreamSpecification"]); ss != nil {
			ts.Stream = fmt.Sprint(ss["StreamViewType"])
		}
		if ttl := asMap(props["TimeToLiveSpecification"]); ttl != nil && ttl["Enabled"] == true {
			ts.TTL = fmt.Sprint(ttl["AttributeName"])
		}
		name := fmt.Sprint(props["TableName"])
		if _, dup := out[name]; dup {
			problems = append(problems, fmt.Sprintf("two tables are named %s", name))
		}
		out[name] = ts
	}
	return out, problems
}

// checkTables compares the template's tables, evaluated with the prefix, with the
// tables the code creates under it (code, by name).
func checkTables(tpl cfnTemplate, prefix string, code map[string]tableSchema) []string {
	tmpl, problems := templateTables(tpl, prefix)
	for _, name := range slices.Sorted(maps.Keys(code)) {
		got, ok := tmpl[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("table %s: the code creates it, the template has no such table", name))
			continue
		}
		for _, d := range got.diff(code[name]) {
			problems = append(problems, fmt.Sprintf("table %s: %s", name, d))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(tmpl)) {
		if _, ok := code[name]; !ok {
			problems = append(problems, fmt.Sprintf("table %s: the template creates it, the code uses no such table", name))
		}
	}
	return problems
}

// checkQueuePolicies: EventBridge may send to the status-change queue, and to the
// dead-letter queue when the rule names it as its own dead-letter target, only from the
// stack's rule (aws:SourceArn), and nobody else may do anything. moto skips
// AWS::SQS::QueuePolicy, so this check is all the queue policy gets here.
func checkQueuePolicies(tpl cfnTemplate, params map[string]string) []string {
	s := newStackShape(tpl, params)
	if s.e == nil {
		return s.problems
	}
	problems := slices.Clone(s.problems)
	// Which queues each rule sends to (targets and their dead-letter targets).
	senders := map[string][]string{} // queue ARN -> rule ARNs
	for _, rule := range s.e.resources("AWS::Events::Rule") {
		ruleArn, err := s.e.getAtt(rule, "Arn")
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		targets, _ := s.e.property(rule, "Targets")
		for _, tg := range asList(targets) {
			for _, arn := range []any{asMap(tg)["Arn"], asMap(asMap(tg)["DeadLetterConfig"])["Arn"]} {
				if a := fmt.Sprint(arn); strings.HasPrefix(a, "arn:aws:sqs:") {
					senders[a] = append(senders[a], fmt.Sprint(ruleArn))
				}
			}
		}
	}
	allowed := map[string][]string{} // queue ARN -> rule ARNs its policies allow
	for _, pol := range s.e.resources("AWS::SQS::QueuePolicy") {
		queues, err := s.e.property(pol, "Queues")
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		doc, err := s.e.property(pol, "PolicyDocument")
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, st := range asList(asMap(doc)["Statement"]) {
			stm := asMap(st)
			svc := stringsOf(asMap(stm["Principal"])["Service"])
			actions := stringsOf(stm["Action"])
			src := stringsOf(asMap(asMap(stm["Condition"])["ArnEquals"])["aws:SourceArn"])
			if stm["Effect"] != "Allow" || len(svc) != 1 || svc[0] != "events.amazonaws.com" || len(asMap(stm["Principal"])) != 1 ||
				!slices.Equal(actions, []string{"sqs:SendMessage"}) || len(src) != 1 {
				problems = append(problems, fmt.Sprintf("%s: a statement allows %v to %v (%v): only events.amazonaws.com may sqs:SendMessage, from one rule (aws:SourceArn)",
					pol, stm["Principal"], actions, stm["Condition"]))
				continue
			}
			for _, res := range stringsOf(stm["Resource"]) {
				var inQueues bool
				for _, q := range asList(queues) {
					for _, name := range s.e.resources("AWS::SQS::Queue") {
						url, _ := s.e.ref(name)
						arn, _ := s.e.getAtt(name, "Arn")
						if url == q && arn == res {
							inQueues = true
						}
					}
				}
				if !inQueues {
					problems = append(problems, fmt.Sprintf("%s: resource %s is not one of its queues", pol, res))
				}
				allowed[res] = append(allowed[res], src[0])
			}
		}
	}
	for queue, rules := range senders {
		for _, r := range rules {
			if !slices.Contains(allowed[queue], r) {
				problems = append(problems, fmt.Sprintf("queue %s: rule %s sends to it, and no queue policy lets it", queue, r))
			}
		}
	}
	for queue, rules := range allowed {
		for _, r := range rules {
			if !slices.Contains(senders[queue], r) {
				problems = append(problems, fmt.Sprintf("queue %s: its policy lets %s send, which is not a rule sending to it", queue, r))
			}
		}
	}
	return problems
}
