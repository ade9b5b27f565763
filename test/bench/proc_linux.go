package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes a child process get SIGKILL when the harness exits,
// however it exits, so no gateway or upstream is left behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
