package localenv

// PID is the operating-system process ID of the running binary, 0 when it
// was never started. Benchmarks read /proc/<pid>/status with it to report
// the binary's resident memory.
func (p *Process) PID() int {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}
