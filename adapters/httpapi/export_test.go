package httpapi

// LiveClients is how many live streams s has open, for tests.
func LiveClients(s *Server) int { return s.live.clientCount() }
