package agentstats

import (
	"strings"
	"unicode"
)

// maxErrorClass caps the length of an error class.
const maxErrorClass = 80

// ErrorClass returns the leading class of an error message, the part worth grouping by:
// "ClientError: ThrottlingException - Rate exceeded" -> "ClientError: ThrottlingException",
// "ValueError: Invalid request format" -> "ValueError",
// "Failed to invoke AgentCore: Timeout" -> "Failed to invoke AgentCore".
// Digits become '#' so that ids and counts do not explode the number of classes.
func ErrorClass(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return ""
	}
	head, rest, found := strings.Cut(msg, ":")
	class := strings.TrimSpace(head)
	if found {
		// A second exception-like word after the first class refines it, as botocore's
		// "ClientError: ThrottlingException - ..." does.
		word := strings.TrimSpace(rest)
		if i := strings.IndexFunc(word, func(r rune) bool { return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_') }); i >= 0 {
			word = word[:i]
		}
		if strings.HasSuffix(word, "Exception") || strings.HasSuffix(word, "Error") || strings.HasSuffix(word, "Fault") {
			class += ": " + word
		}
	} else if i := strings.IndexAny(class, " \t\n("); i > 0 && isIdentifier(class[:i]) {
		class = class[:i]
	}
	var b strings.Builder
	for _, r := range class {
		if unicode.IsDigit(r) {
			r = '#'
		}
		if r == '\n' || r == '\t' {
			r = ' '
		}
		b.WriteRune(r)
		if b.Len() >= maxErrorClass {
			break
		}
	}
	return b.String()
}

func isIdentifier(s string) bool {
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_') {
			return false
		}
	}
	return strings.HasSuffix(s, "Exception") || strings.HasSuffix(s, "Error")
}
