package dynamodbstreams

import (
	"cmp"
	"strings"
)

// compareSequenceNumbers orders two stream sequence numbers: -1 if a < b, 0 if equal,
// +1 if a > b. Sequence numbers are decimal strings of 21 to 40 digits — more than an
// int64 holds — so they are compared as numbers by length and then digit by digit,
// after dropping leading zeros (DynamoDB Local pads them with zeros, AWS does not).
// The empty string sorts before every sequence number.
func compareSequenceNumbers(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// validSequenceNumber reports whether s is a non-empty string of decimal digits.
func validSequenceNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
