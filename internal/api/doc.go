// Package api defines the configuration resources weft accepts — the core/v1
// Service, Gateway API HTTPRoute and GRPCRoute, and weft's own weft.dev/v1alpha1
// kinds — and decodes, defaults and validates them. Every error names the
// document, the object and the offending field.
package api
