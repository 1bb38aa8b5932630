//go:build !linux

package childproc

import "syscall"

func attr(syscall.Signal) *syscall.SysProcAttr { return nil }
