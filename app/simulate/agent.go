package simulate

import (
	"math"
	"math/rand/v2"
	"strconv"
)

// failure is an error an agent component can record.
type failure struct {
	// msg is the journal's ErrorMessage.
	msg string
	// errorType is the Python exception class, for the invoker Lambda's error payload.
	errorType string
}

// Error catalogs, most frequent first. Per agent, the catalogs are rotated so that each
// agent has its own top errors.
var (
	invocationFailures = []failure{
		{"Failed to invoke AgentCore: Timeout", "TimeoutError"},
		{"ClientError: ThrottlingException - Rate exceeded", "ClientError"},
		{`botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL: "https://bedrock-agentcore.{region}.amazonaws.com/runtimes/{agent}/invocations"`, "ReadTimeoutError"},
		{"ClientError: ServiceQuotaExceededException - Too many concurrent sessions for this runtime", "ClientError"},
		{`botocore.exceptions.EndpointConnectionError: Could not connect to the endpoint URL: "https://bedrock-agentcore.{region}.amazonaws.com/runtimes/{agent}/invocations"`, "EndpointConnectionError"},
		{"ClientError: AccessDeniedException - User is not authorized to perform: bedrock-agentcore:InvokeAgentRuntime", "ClientError"},
	}
	entrypointFailures = []failure{
		{"ValueError: Invalid request format", "ValueError"},
		{"KeyError: 'session_id'", "KeyError"},
		{"KeyError: 'prompt'", "KeyError"},
		{"RuntimeError: Missing required environment variable MODEL_ID", "RuntimeError"},
		{"json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)", "JSONDecodeError"},
		{"TypeError: 'NoneType' object is not subscriptable", "TypeError"},
	}
	backgroundFailures = []failure{
		{"ClientError: ThrottlingException - Rate exceeded", "ClientError"},
		{`botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL: "https://bedrock-runtime.{region}.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"`, "ReadTimeoutError"},
		{"ClientError: ValidationException - Input is too long for requested model.", "ClientError"},
		{"ClientError: ExpiredTokenException - The security token included in the request is expired", "ClientError"},
		{"TimeoutError: Tool call 'web_search' exceeded 300 seconds", "TimeoutError"},
		{"ClientError: ModelErrorException - The model returned an invalid response", "ClientError"},
		{"MemoryError", "MemoryError"},
	}
	// retryFailures are the transient invocation failures an invoker retries.
	retryFailures = []failure{
		{"ClientError: ThrottlingException - Rate exceeded", "ClientError"},
		{"Failed to invoke AgentCore: Timeout", "TimeoutError"},
		{`botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL: "https://bedrock-agentcore.{region}.amazonaws.com/runtimes/{agent}/invocations"`, "ReadTimeoutError"},
	}
)

// agentProfile is one agent: its identity, its pace and its failure habits.
type agentProfile struct {
	name            string
	stateMachineArn string
	// execArnPrefix is the execution ARN up to the execution name.
	execArnPrefix string
	// gapScale scales stage gaps.
	gapScale float64
	// taskMedianNs is the median background-task duration.
	taskMedianNs float64
	// cumWeights are the cumulative scenario weights (Scenarios order).
	cumWeights [numScenarios]float64
	// The error catalogs, rotated and with the agent's name and region filled in.
	invocation, entrypoint, background, retry []failure
}

// newAgents builds the agent profiles of a configuration from its seed.
func newAgents(seed uint64, n int, names []string, weights map[Scenario]float64, t *Timing, region, account string) ([]agentProfile, []float64) {
	rng := rand.New(rand.NewPCG(mix(seed, 0xa6e47), mix(seed, 0x5eed)))
	agents := make([]agentProfile, n)
	popularity := make([]float64, n) // cumulative, Zipf-like: a few agents carry most traffic
	total := 0.0
	for i := range agents {
		a := &agents[i]
		switch {
		case i < len(names):
			a.name = names[i]
		case len(names) == 0 && i < len(DefaultAgentNames):
			a.name = DefaultAgentNames[i]
		default:
			a.name = "agent-" + strconv.Itoa(i+1)
		}
		prefix := "arn:aws:states:" + region + ":" + account + ":"
		a.stateMachineArn = prefix + "stateMachine:" + a.name
		a.execArnPrefix = prefix + "execution:" + a.name + ":"
		a.gapScale = logUniform(rng, 0.7, 1.4)
		a.taskMedianNs = logUniform(rng, float64(t.TaskMedian.Min), float64(t.TaskMedian.Max))
		// Reliability: failure scenarios are up to twice as frequent, or half as.
		reliability := logUniform(rng, 0.5, 2)
		cum := 0.0
		for j, s := range Scenarios {
			w := weights[s]
			if s.failing() {
				w *= reliability
			}
			cum += w
			a.cumWeights[j] = cum
		}
		off := rng.IntN(3)
		a.invocation = a.catalog(invocationFailures, off, region)
		a.entrypoint = a.catalog(entrypointFailures, off, region)
		a.background = a.catalog(backgroundFailures, off, region)
		a.retry = a.catalog(retryFailures, off, region)
		total += 1 / math.Pow(float64(i+1), 0.8)
		popularity[i] = total
	}
	return agents, popularity
}

// catalog rotates c by off and fills in the agent and region.
func (a *agentProfile) catalog(c []failure, off int, region string) []failure {
	out := make([]failure, len(c))
	for i := range c {
		f := c[(i+off)%len(c)]
		f.msg = expand(f.msg, a.name, region)
		out[i] = f
	}
	return out
}

// expand fills the {agent} and {region} placeholders of a catalog message.
func expand(s, agent, region string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '{' && len(s) >= i+7 && s[i:i+7] == "{agent}":
			b = append(b, agent...)
			i += 6
		case s[i] == '{' && len(s) >= i+8 && s[i:i+8] == "{region}":
			b = append(b, region...)
			i += 7
		default:
			b = append(b, s[i])
		}
	}
	return string(b)
}

// pickScenario draws a scenario from the agent's weights.
func (a *agentProfile) pickScenario(rng *rand.Rand) Scenario {
	x := rng.Float64() * a.cumWeights[numScenarios-1]
	for j, c := range a.cumWeights {
		if x < c {
			return Scenarios[j]
		}
	}
	// Float rounding at the very top: the last scenario with a weight.
	for j := numScenarios - 1; j > 0; j-- {
		if a.cumWeights[j] > a.cumWeights[j-1] {
			return Scenarios[j]
		}
	}
	return Scenarios[0]
}

// pickFailure draws from a catalog, earlier entries more often (weights 1/(k+1)).
func pickFailure(rng *rand.Rand, c []failure) failure {
	// Harmonic weights: the cumulative sum of 1/(k+1) for k < len(c).
	var cum [8]float64
	total := 0.0
	for k := range c {
		total += 1 / float64(k+1)
		cum[k] = total
	}
	x := rng.Float64() * total
	for k := range c {
		if x < cum[k] {
			return c[k]
		}
	}
	return c[len(c)-1]
}

// pickAgent draws an agent by popularity.
func pickAgent(rng *rand.Rand, popularity []float64) int {
	x := rng.Float64() * popularity[len(popularity)-1]
	lo, hi := 0, len(popularity)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if x < popularity[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// logUniform draws from [lo, hi] so that every factor of the range is equally likely.
func logUniform(rng *rand.Rand, lo, hi float64) float64 {
	if hi <= lo {
		return lo
	}
	return lo * math.Exp(rng.Float64()*math.Log(hi/lo))
}

// sampler draws durations log-uniformly from a DurationRange, with the logarithm
// computed once.
type sampler struct{ lo, span float64 }

// newSampler returns the sampler of r.
func newSampler(r DurationRange) sampler {
	return sampler{lo: float64(r.Min), span: math.Log(float64(r.Max) / float64(r.Min))}
}

// draw draws a duration, in nanoseconds.
func (s sampler) draw(rng *rand.Rand) int64 {
	return int64(s.lo * math.Exp(rng.Float64()*s.span))
}

// pace holds a sampler per duration range of a Timing.
type pace struct {
	initiation, stageGap, retryBackoff, executionTimeout, lateCompletion, longRunning,
	redriveAfter, abortAfter, deliveryLatency, reorderDelay, redeliveryDelay sampler
}

// newPace returns the samplers of t.
func newPace(t *Timing) pace {
	return pace{
		initiation:       newSampler(t.Initiation),
		stageGap:         newSampler(t.StageGap),
		retryBackoff:     newSampler(t.RetryBackoff),
		executionTimeout: newSampler(t.ExecutionTimeout),
		lateCompletion:   newSampler(t.LateCompletion),
		longRunning:      newSampler(t.LongRunning),
		redriveAfter:     newSampler(t.RedriveAfter),
		abortAfter:       newSampler(t.AbortAfter),
		deliveryLatency:  newSampler(t.DeliveryLatency),
		reorderDelay:     newSampler(t.ReorderDelay),
		redeliveryDelay:  newSampler(t.RedeliveryDelay),
	}
}

// mix derives a well-spread 64-bit value from a seed and a stream number, so that
// neighbouring sessions get unrelated random streams.
func mix(seed, stream uint64) uint64 {
	return splitmix(seed ^ splitmix(stream+0x632be59bd9b4e019))
}

// splitmix is SplitMix64's finalizer.
func splitmix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
