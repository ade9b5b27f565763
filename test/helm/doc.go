// Package helm tests the packaging: charts/tollgate lints and renders for
// default and non-default values, every rendered manifest is accepted by a
// real kube-apiserver (envtest) in a server-side dry run, the pods it would
// create pass the "restricted" Pod Security Standard, config/default builds
// with kustomize and matches the chart, and the Grafana dashboard only
// queries metrics the code defines.
//
// helm is built once from the Go module proxy by hack/helm.sh and cached
// under ~/.cache/tollgate/bin (set HELM to use another binary). The API
// server tests need KUBEBUILDER_ASSETS (`make test` sets it, see
// hack/envtest-assets.sh) and are skipped with a message without it.
package helm
