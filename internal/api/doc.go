// Package api defines the configuration resources weft accepts — the core/v1
// Service, Gateway API HTTPRoute and GRPCRoute, and weft's own weft.dev/v1alpha1
// kinds — and decodes, defaults and validates them. Every error names the
// document, the object and the offending field.
//
// The +kubebuilder markers on the weft.dev types are read by controller-gen
// (internal/control/kube/crd/generate.sh), which generates their
// CustomResourceDefinitions; they change nothing in this package.
//
// +groupName=weft.dev
// +versionName=v1alpha1
package api
