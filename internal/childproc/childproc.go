// Package childproc holds the process attributes weft gives the processes it
// starts (the app under `weft run`, the demo's children), so that they do not
// outlive weft.
package childproc

import "syscall"

// Attr returns the attributes for a child that must receive sig when weft
// dies, even by SIGKILL. On Linux this is the parent-death signal; elsewhere
// it is not available and the child is only stopped by weft's own shutdown.
func Attr(sig syscall.Signal) *syscall.SysProcAttr { return attr(sig) }
