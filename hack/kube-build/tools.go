//go:build tools

// Package tools pins the module versions of the binaries built from other
// modules' main packages (helm), so that go.sum covers them.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
