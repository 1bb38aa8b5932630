package api

import (
	"fmt"
	"strings"
)

// FieldError is one problem with one field.
type FieldError struct {
	// Field is the path of the field, e.g. "spec.rules[0].backendRefs[1].weight".
	Field string
	// Detail says what is wrong, e.g. "must be between 0 and 1000000".
	Detail string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Detail }

// InvalidError reports every problem found in one object.
type InvalidError struct {
	// Kind and Name identify the object.
	Kind, Name string
	// Errors lists the problems, at least one.
	Errors []FieldError
}

func (e *InvalidError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	return fmt.Sprintf("%s %q: %s", e.Kind, e.Name, strings.Join(msgs, "; "))
}

// fieldPath builds field paths.
type fieldPath string

func (p fieldPath) child(name string) fieldPath {
	if p == "" {
		return fieldPath(name)
	}
	return p + "." + fieldPath(name)
}

func (p fieldPath) index(i int) fieldPath { return fieldPath(fmt.Sprintf("%s[%d]", p, i)) }

// errs collects FieldErrors.
type errs []FieldError

func (e *errs) add(p fieldPath, format string, args ...any) {
	*e = append(*e, FieldError{Field: string(p), Detail: fmt.Sprintf(format, args...)})
}
