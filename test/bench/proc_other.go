//go:build !linux

package main

import "os/exec"

// dieWithParent is a no-op where the kernel cannot tie a child's life to
// its parent's; the harness still stops its children on return and on
// SIGINT/SIGTERM.
func dieWithParent(*exec.Cmd) {}
