package domain

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by ports and adapters; adapters translate vendor errors into
// these at their edge.
var (
	// ErrDuplicate: the item is already there (an idempotent append found it).
	ErrDuplicate = errors.New("duplicate")
	// ErrConflict: a conditional write lost to a concurrent or newer write.
	ErrConflict = errors.New("conflict")
	// ErrNotFound: no such item.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the input is malformed; the wrapping FieldError says where and why.
	ErrInvalid = errors.New("invalid input")
)

var (
	errEmpty  = errors.New("is empty")
	errNotISO = errors.New("is not an ISO 8601 timestamp")
)

// FieldError says which field of an input is wrong and why. It matches ErrInvalid with
// errors.Is.
type FieldError struct {
	// Field is a dotted path into the input, e.g. "detail.startDate".
	Field string
	// Reason says what is wrong, e.g. "must be epoch milliseconds (a number)".
	Reason string
	// Err is an underlying error, if any.
	Err error
}

func (e *FieldError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Field, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Reason)
}

// Unwrap lets errors.Is find ErrInvalid and the underlying error.
func (e *FieldError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// fieldErr builds a FieldError.
func fieldErr(field, reason string) error { return &FieldError{Field: field, Reason: reason} }
