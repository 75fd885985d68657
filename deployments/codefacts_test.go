package deployments_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// repoRoot is the module root, seen from this package's directory (where go test runs).
const repoRoot = ".."

// codePatterns are the packages whose calls and environment reads the template must
// serve: everything the binary links of ours.
var codePatterns = []string{"./cmd/...", "./app/...", "./adapters/...", "./domain/...", "./projections/..."}

// sdkService maps the AWS SDK for Go v2 service packages to their IAM service prefix.
var sdkService = map[string]string{
	"github.com/aws/aws-sdk-go-v2/service/dynamodb":        "dynamodb",
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams": "dynamodb",
	"github.com/aws/aws-sdk-go-v2/service/sqs":             "sqs",
	"github.com/aws/aws-sdk-go-v2/service/sns":             "sns",
	"github.com/aws/aws-sdk-go-v2/service/sfn":             "states",
	"github.com/aws/aws-sdk-go-v2/service/s3":              "s3",
}

// iamActionOf maps operations whose IAM action has another name: SQS authorizes its
// batch calls with the single-message actions; DynamoDB has no TransactWriteItems
// action (each item is authorized as PutItem, UpdateItem, DeleteItem or
// ConditionCheckItem, which transactItemActions finds) nor TransactGetItems (GetItem);
// S3 authorizes the parts of a multipart upload as PutObject.
var iamActionOf = map[string][]string{
	"sqs:ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
	"sqs:DeleteMessageBatch":           {"sqs:DeleteMessage"},
	"sqs:SendMessageBatch":             {"sqs:SendMessage"},
	"dynamodb:TransactWriteItems":      nil,
	"dynamodb:TransactGetItems":        {"dynamodb:GetItem"},
	"s3:CreateMultipartUpload":         {"s3:PutObject"},
	"s3:UploadPart":                    {"s3:PutObject"},
	"s3:CompleteMultipartUpload":       {"s3:PutObject"},
}

// transactItemActions are the IAM actions of the members of
// dynamodb/types.TransactWriteItem.
var transactItemActions = map[string]string{
	"Put":            "dynamodb:PutItem",
	"Update":         "dynamodb:UpdateItem",
	"Delete":         "dynamodb:DeleteItem",
	"ConditionCheck": "dynamodb:ConditionCheckItem",
}

// libraryCalls are the AWS calls that libraries make on our behalf, by the constructor
// our code calls. They are listed by hand from the library's source, for the
// configuration our code gives it:
//
//   - watermill-aws v1.0.3 sqs.NewSubscriber: ReceiveMessage, and DeleteMessage on ack.
//     adapters/sqs gives it a fixed QueueUrlResolver and DoNotCreateQueueIfNotExists, so
//     its GetQueueUrl (default resolver), CreateQueue and GetQueueAttributes (queue
//     creation, GetQueueArn) paths are never taken; its nack makes no call (the message
//     waits for its visibility timeout), so no ChangeMessageVisibility either.
//   - watermill-aws v1.0.3 sns.NewPublisher (the SNS alert sink, when it exists):
//     Publish. Its topic resolution must be configured not to create topics
//     (CreateTopic is not granted).
var libraryCalls = map[string][]string{
	"github.com/ThreeDotsLabs/watermill-aws/sqs.NewSubscriber": {"sqs:ReceiveMessage", "sqs:DeleteMessage"},
	"github.com/ThreeDotsLabs/watermill-aws/sns.NewPublisher":  {"sns:Publish"},
}

// codeFacts is what the code does that the template must serve.
type codeFacts struct {
	// Actions are the IAM actions of the AWS API operations the code calls, with one
	// call site each (for messages).
	Actions map[string]string
	// UnmappedCalls are calls of AWS SDK services this test does not map to IAM.
	UnmappedCalls []string
	// EnvVars are the AGENTWATCH_* environment variables the code reads, with one
	// place each.
	EnvVars map[string]string
	// EnvByCommand are the variables each subcommand reads, by its name ("run",
	// "migrate", ...), from a static call graph of cmd/agentwatch; "" holds those every
	// subcommand reads (the root command's persistent flags, and reads outside
	// cmd/agentwatch).
	EnvByCommand map[string]map[string]bool
	// Metrics are the names of the Prometheus metrics the code defines, with one place
	// each: its *Opts literals (Namespace_Subsystem_Name), its NewDesc calls, and
	// Watermill's router metrics under the namespace and subsystem it gives them.
	Metrics map[string]string
}

var (
	factsOnce sync.Once
	facts     codeFacts
	factsErr  error
)

// loadCodeFacts type-checks the code (once per test binary) and collects its facts.
func loadCodeFacts(t testing.TB) codeFacts {
	t.Helper()
	factsOnce.Do(func() { facts, factsErr = collectCodeFacts(repoRoot, codePatterns...) })
	require.NoError(t, factsErr)
	return facts
}

// listedPackage is what `go list -json` says of a package.
type listedPackage struct {
	ImportPath string
	Name       string
	Dir        string
	GoFiles    []string
	Export     string
	DepOnly    bool
}

// collectCodeFacts type-checks the non-test Go files of the packages matching patterns
// (imports come from the export data `go list -export` leaves in the build cache) and
// walks their syntax for AWS API calls and environment reads. Test-support packages
// (names ending in "test": dynamotest, mototest, storetest, ...) are skipped: the
// binary does not link them.
func collectCodeFacts(root string, patterns ...string) (codeFacts, error) {
	args := append([]string{"list", "-e", "-export", "-deps", "-json=ImportPath,Name,Dir,GoFiles,Export,DepOnly"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return codeFacts{}, fmt.Errorf("go list: %w: %s", err, stderr.String())
	}
	exports := map[string]string{}
	var targets []listedPackage
	for dec := json.NewDecoder(bytes.NewReader(out)); dec.More(); {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			return codeFacts{}, fmt.Errorf("go list output: %w", err)
		}
		exports[p.ImportPath] = p.Export
		if !p.DepOnly && !strings.HasSuffix(p.Name, "test") {
			targets = append(targets, p)
		}
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f := exports[path]
		if f == "" {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	w := &factWalker{fset: fset, envReaders: map[*types.Func]bool{},
		facts: codeFacts{Actions: map[string]string{}, EnvVars: map[string]string{}, EnvByCommand: map[string]map[string]bool{"": {}},
			Metrics: map[string]string{}}}
	var checked []*checkedPackage
	for _, p := range targets {
		cp, err := typeCheck(fset, imp, p)
		if err != nil {
			return codeFacts{}, err
		}
		checked = append(checked, cp)
	}
	for _, cp := range checked {
		w.findEnvReaders(cp)
	}
	for _, cp := range checked {
		w.walk(cp)
	}
	for _, cp := range checked {
		if cp.name == "main" && strings.HasSuffix(cp.path, "/cmd/agentwatch") {
			if err := w.envByCommand(cp); err != nil {
				return codeFacts{}, err
			}
		}
	}
	slices.Sort(w.facts.UnmappedCalls)
	return w.facts, nil
}

// checkedPackage is a type-checked package.
type checkedPackage struct {
	path  string
	name  string
	files []*ast.File
	info  *types.Info
}

func typeCheck(fset *token.FileSet, imp types.Importer, p listedPackage) (*checkedPackage, error) {
	cp := &checkedPackage{path: p.ImportPath, name: p.Name, info: &types.Info{
		Types: map[ast.Expr]types.TypeAndValue{},
		Uses:  map[*ast.Ident]types.Object{},
		Defs:  map[*ast.Ident]types.Object{},
	}}
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		cp.files = append(cp.files, f)
	}
	conf := types.Config{Importer: imp}
	if _, err := conf.Check(p.ImportPath, fset, cp.files, cp.info); err != nil {
		return nil, fmt.Errorf("type-check %s: %w", p.ImportPath, err)
	}
	return cp, nil
}

// factWalker collects codeFacts.
type factWalker struct {
	fset  *token.FileSet
	facts codeFacts
	// envReaders are our functions that pass their first parameter to os.Getenv or
	// os.LookupEnv (envOr, envList, ...): their constant first arguments are variables
	// the code reads.
	envReaders map[*types.Func]bool
}

func (w *factWalker) pos(p token.Pos) string {
	pos := w.fset.Position(p)
	return fmt.Sprintf("%s:%d", filepath.Base(filepath.Dir(pos.Filename))+"/"+filepath.Base(pos.Filename), pos.Line)
}

// isOSEnvCall reports whether call is os.Getenv or os.LookupEnv.
func isOSEnvCall(info *types.Info, call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	fn, ok := info.Uses[sel.Sel].(*types.Func)
	return ok && fn.Pkg() != nil && fn.Pkg().Path() == "os" && (fn.Name() == "Getenv" || fn.Name() == "LookupEnv")
}

func (w *factWalker) findEnvReaders(cp *checkedPackage) {
	for _, f := range cp.files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil || fd.Type.Params == nil || len(fd.Type.Params.List) == 0 || len(fd.Type.Params.List[0].Names) == 0 {
				continue
			}
			first := cp.info.Defs[fd.Type.Params.List[0].Names[0]]
			fn, _ := cp.info.Defs[fd.Name].(*types.Func)
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || !isOSEnvCall(cp.info, call) || len(call.Args) == 0 {
					return true
				}
				if id, ok := call.Args[0].(*ast.Ident); ok && first != nil && cp.info.Uses[id] == first && fn != nil {
					w.envReaders[fn] = true
				}
				return true
			})
		}
	}
}

func (w *factWalker) walk(cp *checkedPackage) {
	for _, f := range cp.files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				w.call(cp, x)
			case *ast.CompositeLit:
				w.transactItem(cp, x)
				w.metricOpts(cp, x)
			}
			return true
		})
	}
}

// call records the AWS operations of a call: one whose arguments include an SDK
// operation input (*<service>.<Operation>Input: client methods, our ports' methods,
// paginator constructors, waiters' Wait), a waiter constructor (New<X>Waiter: the
// operation its Wait takes), a library constructor of libraryCalls, and environment
// reads.
func (w *factWalker) call(cp *checkedPackage, call *ast.CallExpr) {
	where := w.pos(call.Pos())
	if sig, ok := cp.info.Types[call.Fun].Type.(*types.Signature); ok {
		for i := range sig.Params().Len() {
			w.operationOf(sig.Params().At(i).Type(), where)
		}
	}
	var fn *types.Func
	switch f := call.Fun.(type) {
	case *ast.Ident:
		fn, _ = cp.info.Uses[f].(*types.Func)
	case *ast.SelectorExpr:
		fn, _ = cp.info.Uses[f.Sel].(*types.Func)
	}
	if fn == nil || fn.Pkg() == nil {
		return
	}
	full := fn.Pkg().Path() + "." + fn.Name()
	for _, a := range libraryCalls[full] {
		w.action(a, where+" ("+full+")")
	}
	if _, isService := sdkService[fn.Pkg().Path()]; isService && strings.HasPrefix(fn.Name(), "New") && strings.HasSuffix(fn.Name(), "Waiter") {
		if res := fn.Type().(*types.Signature).Results(); res.Len() > 0 {
			if wait, _, _ := types.LookupFieldOrMethod(res.At(0).Type(), true, fn.Pkg(), "Wait"); wait != nil {
				ws := wait.Type().(*types.Signature)
				for i := range ws.Params().Len() {
					w.operationOf(ws.Params().At(i).Type(), where)
				}
			}
		}
	}
	switch full {
	case "github.com/prometheus/client_golang/prometheus.NewDesc":
		if name, ok := constString(cp.info, call.Args[0]); ok {
			w.facts.Metrics[name] = where
		}
	case "github.com/ThreeDotsLabs/watermill/components/metrics.NewPrometheusMetricsBuilder":
		ns, _ := constString(cp.info, call.Args[1])
		sub, _ := constString(cp.info, call.Args[2])
		for _, m := range watermillRouterMetrics {
			w.facts.Metrics[metricName(ns, sub, m)] = where + " (Watermill)"
		}
	}
	if (w.envReaders[fn] || isOSEnvCall(cp.info, call)) && len(call.Args) > 0 {
		if tv := cp.info.Types[call.Args[0]]; tv.Value != nil && tv.Value.Kind() == constant.String {
			if name := constant.StringVal(tv.Value); strings.HasPrefix(name, "AGENTWATCH_") {
				if _, seen := w.facts.EnvVars[name]; !seen {
					w.facts.EnvVars[name] = where
				}
				if cp.name != "main" {
					w.facts.EnvByCommand[""][name] = true
				}
			}
		}
	}
}

// operationOf records the operation of typ if it is an SDK operation input.
func (w *factWalker) operationOf(typ types.Type, where string) {
	if p, ok := typ.(*types.Pointer); ok {
		typ = p.Elem()
	}
	named, ok := typ.(*types.Named)
	if !ok || named.Obj().Pkg() == nil {
		return
	}
	path := named.Obj().Pkg().Path()
	name := named.Obj().Name()
	if !strings.HasPrefix(path, "github.com/aws/aws-sdk-go-v2/service/") || !strings.HasSuffix(name, "Input") || strings.Contains(strings.TrimPrefix(path, "github.com/aws/aws-sdk-go-v2/service/"), "/") {
		return
	}
	prefix, ok := sdkService[path]
	op := strings.TrimSuffix(name, "Input")
	if !ok {
		w.facts.UnmappedCalls = append(w.facts.UnmappedCalls, fmt.Sprintf("%s.%s at %s", path, op, where))
		return
	}
	action := prefix + ":" + op
	actions, renamed := iamActionOf[action]
	if !renamed {
		actions = []string{action}
	}
	for _, a := range actions {
		w.action(a, where)
	}
}

func (w *factWalker) action(a, where string) {
	if _, seen := w.facts.Actions[a]; !seen {
		w.facts.Actions[a] = where
	}
}

// transactItem records the actions of the members a dynamodb/types.TransactWriteItem
// literal sets.
func (w *factWalker) transactItem(cp *checkedPackage, lit *ast.CompositeLit) {
	tv, ok := cp.info.Types[lit]
	if !ok {
		return
	}
	named, ok := tv.Type.(*types.Named)
	if !ok || named.Obj().Name() != "TransactWriteItem" || named.Obj().Pkg() == nil ||
		named.Obj().Pkg().Path() != "github.com/aws/aws-sdk-go-v2/service/dynamodb/types" {
		return
	}
	for _, el := range lit.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		if id, ok := kv.Key.(*ast.Ident); ok {
			if a, ok := transactItemActions[id.Name]; ok {
				w.action(a, w.pos(kv.Pos()))
			}
		}
	}
}

// TestCodeFacts checks what the walk finds against calls it must find, so that a walk
// that silently finds nothing cannot pass the template check: the journal's
// conditional put, the stream reads through the subscriber's port, the paginated
// queries, the waiter of Migrate, the transactions' members, watermill-aws's receive,
// and the environment reads of the root command.
func TestCodeFacts(t *testing.T) {
	f := loadCodeFacts(t)
	for _, a := range []string{"dynamodb:PutItem", "dynamodb:GetRecords", "dynamodb:DescribeStream", "dynamodb:Query",
		"dynamodb:DescribeTable", "dynamodb:ConditionCheckItem", "dynamodb:CreateTable", "sqs:ReceiveMessage",
		"sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "states:ListTagsForResource"} {
		require.Contains(t, f.Actions, a)
	}
	require.NotContains(t, f.Actions, "dynamodb:TransactWriteItems", "not an IAM action")
	require.NotContains(t, f.Actions, "dynamodb:ListTables", "only test support lists tables")
	for _, v := range []string{"AGENTWATCH_BACKEND", "AGENTWATCH_TABLE_PREFIX", "AGENTWATCH_SFN_QUEUE_URL", "AGENTWATCH_AGENT_TAG_KEYS"} {
		require.Contains(t, f.EnvVars, v)
	}
	require.Empty(t, f.UnmappedCalls)
	require.Contains(t, f.EnvByCommand[""], "AGENTWATCH_BACKEND", "a persistent flag of the root command")
	require.Contains(t, f.EnvByCommand["run"], "AGENTWATCH_HTTP_ADDR")
	require.NotContains(t, f.EnvByCommand["migrate"], "AGENTWATCH_HTTP_ADDR")
	for _, c := range slices.Sorted(maps.Keys(f.EnvByCommand)) {
		t.Logf("  env of %-10q %v", c, slices.Sorted(maps.Keys(f.EnvByCommand[c])))
	}
	t.Logf("the code calls %d IAM actions and reads %d AGENTWATCH_* variables", len(f.Actions), len(f.EnvVars))
	for _, a := range slices.Sorted(maps.Keys(f.Actions)) {
		t.Logf("  %-34s %s", a, f.Actions[a])
	}
}

// envByCommand attributes cmd/agentwatch's environment reads to subcommands: a read in
// the function that builds the root command (its persistent flags) is every
// subcommand's; a read in the functions a subcommand's constructor calls, directly or
// not, is that subcommand's. Constructors are the functions the root's builder calls
// that hold a cobra.Command literal; a subcommand is named by that literal's Use.
func (w *factWalker) envByCommand(cp *checkedPackage) error {
	type fnInfo struct {
		callees map[*types.Func]bool
		reads   map[string]bool
		use     string // first word of the Use of a cobra.Command literal in it
	}
	fns := map[*types.Func]*fnInfo{}
	for _, f := range cp.files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			obj, _ := cp.info.Defs[fd.Name].(*types.Func)
			if obj == nil {
				continue
			}
			fi := &fnInfo{callees: map[*types.Func]bool{}, reads: map[string]bool{}}
			fns[obj] = fi
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.CallExpr:
					var callee *types.Func
					switch fun := x.Fun.(type) {
					case *ast.Ident:
						callee, _ = cp.info.Uses[fun].(*types.Func)
					case *ast.SelectorExpr:
						callee, _ = cp.info.Uses[fun.Sel].(*types.Func)
					}
					if callee != nil && callee.Pkg() != nil && callee.Pkg().Path() == cp.path {
						fi.callees[callee] = true
					}
					if (w.envReaders[callee] || isOSEnvCall(cp.info, x)) && len(x.Args) > 0 {
						if tv := cp.info.Types[x.Args[0]]; tv.Value != nil && tv.Value.Kind() == constant.String {
							if name := constant.StringVal(tv.Value); strings.HasPrefix(name, "AGENTWATCH_") {
								fi.reads[name] = true
							}
						}
					}
				case *ast.CompositeLit:
					named, ok := cp.info.Types[x].Type.(*types.Named)
					if !ok || named.Obj().Name() != "Command" || named.Obj().Pkg() == nil || named.Obj().Pkg().Path() != "github.com/spf13/cobra" || fi.use != "" {
						return true
					}
					for _, el := range x.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if id, ok := kv.Key.(*ast.Ident); ok && id.Name == "Use" {
								if tv := cp.info.Types[kv.Value]; tv.Value != nil && tv.Value.Kind() == constant.String {
									fi.use, _, _ = strings.Cut(constant.StringVal(tv.Value), " ")
								}
							}
						}
					}
				}
				return true
			})
		}
	}
	var root *fnInfo
	for _, fi := range fns {
		if fi.use == "agentwatch" {
			root = fi
		}
	}
	if root == nil {
		return errors.New("cmd/agentwatch: no function builds the root command (cobra.Command{Use: \"agentwatch\"})")
	}
	for v := range root.reads {
		w.facts.EnvByCommand[""][v] = true
	}
	for ctor := range root.callees {
		fi := fns[ctor]
		if fi == nil || fi.use == "" {
			continue
		}
		reads := map[string]bool{}
		seen := map[*types.Func]bool{}
		var visit func(f *types.Func)
		visit = func(f *types.Func) {
			if seen[f] || fns[f] == nil {
				return
			}
			seen[f] = true
			maps.Copy(reads, fns[f].reads)
			for c := range fns[f].callees {
				visit(c)
			}
		}
		visit(ctor)
		w.facts.EnvByCommand[fi.use] = reads
	}
	return nil
}

// watermillRouterMetrics are the metrics Watermill v1.5's PrometheusMetricsBuilder adds
// to a router (components/metrics: handler.go, builder.go), under its namespace and
// subsystem.
var watermillRouterMetrics = []string{"handler_execution_time_seconds", "subscriber_messages_received_total", "publish_time_seconds"}

func metricName(parts ...string) string {
	var nonEmpty []string
	for _, p := range parts {
		if p != "" {
			nonEmpty = append(nonEmpty, p)
		}
	}
	return strings.Join(nonEmpty, "_")
}

// constString is the value of a constant string expression.
func constString(info *types.Info, e ast.Expr) (string, bool) {
	if tv := info.Types[e]; tv.Value != nil && tv.Value.Kind() == constant.String {
		return constant.StringVal(tv.Value), true
	}
	return "", false
}

// metricOpts records the metric a prometheus.*Opts literal defines.
func (w *factWalker) metricOpts(cp *checkedPackage, lit *ast.CompositeLit) {
	named, ok := cp.info.Types[lit].Type.(*types.Named)
	if !ok || named.Obj().Pkg() == nil || named.Obj().Pkg().Path() != "github.com/prometheus/client_golang/prometheus" ||
		!strings.HasSuffix(named.Obj().Name(), "Opts") {
		return
	}
	fields := map[string]string{}
	for _, el := range lit.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok {
				fields[id.Name], _ = constString(cp.info, kv.Value)
			}
		}
	}
	if fields["Name"] != "" {
		w.facts.Metrics[metricName(fields["Namespace"], fields["Subsystem"], fields["Name"])] = w.pos(lit.Pos())
	}
}
