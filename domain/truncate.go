package domain

import "unicode/utf8"

// Truncate cuts s to at most max bytes on a UTF-8 boundary, and says whether it cut.
func Truncate(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}
