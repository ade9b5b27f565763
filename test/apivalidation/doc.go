// Package apivalidation proves the Tollgate API is real: its tests start a
// real kube-apiserver and etcd (controller-runtime envtest), install the
// generated CRDs from config/crd/bases and check that every sample in
// config/samples is accepted, that invalid objects are rejected at admission
// with the message their OpenAPI or CEL rule promises, that kubectl discovery
// (category "tollgate", short names, printer columns) works, and that
// config/default applies cleanly.
//
// The tests need KUBEBUILDER_ASSETS pointing at kube-apiserver and etcd
// binaries; `make test` builds and sets them (hack/envtest-assets.sh).
package apivalidation
