package httpapi_test

import (
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/app"
)

func TestParseLogLink(t *testing.T) {
	for _, tt := range []struct {
		in, label, url, err string
	}{
		{in: "Lambda logs=https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/$252Faws$252Flambda$252Finvoker",
			label: "Lambda logs", url: "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/$252Faws$252Flambda$252Finvoker"},
		{in: " Agent = https://logs.example.com/search?q={sessionId}&from={startMs}&to={stopMs} ", label: "Agent", url: "https://logs.example.com/search?q={sessionId}&from={startMs}&to={stopMs}"},
		{in: "https://logs.example.com", err: "must be LABEL=URL"},
		{in: "=https://logs.example.com", err: "label: must not be empty"},
		{in: "Logs=logs.example.com/{sessionId}", err: "must be an absolute http(s) URL"},
		{in: "Logs=https://logs.example.com/{session}", err: "unknown placeholder {session}"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			l, err := httpapi.ParseLogLink(tt.in)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, httpapi.LogLink{Label: tt.label, URL: tt.url}, l)
		})
	}
}

func TestLinkConfig(t *testing.T) {
	bad := httpapi.Config{ConsoleURL: "console/{executionArn}", LogLinks: []httpapi.LogLink{{Label: "x", URL: "https://h/{nope}"}}}
	bad.SetDefaults()
	err := bad.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "console URL")
	assert.Contains(t, err.Error(), `log link "x": url: unknown placeholder {nope}`)
	_, err = httpapi.New(bad, &app.Queries{}, nil, nil, nil, nil)
	require.Error(t, err)

	none := httpapi.Config{ConsoleURL: httpapi.ConsoleURLNone}
	none.SetDefaults()
	require.NoError(t, none.Validate())

	t.Run("the page gets the templates", func(t *testing.T) {
		links := []httpapi.LogLink{{Label: "Lambda logs", URL: "https://logs.example.com/?q={sessionId}&r={region}"}}
		s := newStack(t, stackOptions{config: httpapi.Config{LogLinks: links, ConsoleURL: "https://sfn.example.com/{executionArn}"}})
		a := s.get("/")
		require.Equal(t, http.StatusOK, a.status)
		m := regexp.MustCompile(`<meta name="agentwatch-config" content="([^"]*)">`).FindSubmatch(a.body)
		require.NotNil(t, m, "the config meta tag")
		var conf struct {
			PollMs     int64             `json:"pollMs"`
			ConsoleURL string            `json:"consoleUrl"`
			LogLinks   []httpapi.LogLink `json:"logLinks"`
		}
		require.NoError(t, json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &conf))
		assert.Equal(t, int64(2000), conf.PollMs)
		assert.Equal(t, "https://sfn.example.com/{executionArn}", conf.ConsoleURL)
		assert.Equal(t, links, conf.LogLinks)
	})
}
