package httpapi

// LiveClients is how many live streams s has open, for tests.
func LiveClients(s *Server) int { return s.live.clientCount() }

// LivePoll runs one poll of s's live hub from a fresh state (both executions queries,
// the newest alert and the open-alert count), for benchmarks.
func LivePoll(s *Server) error {
	var st pollState
	return s.live.poll(&st, true)
}
