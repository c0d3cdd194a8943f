// Package controlplane starts the upstream components as child processes of this binary: the binary is
// multi-call (cmd/cluster/main.go), so `cluster kube-apiserver ...` runs upstream's own kube-apiserver
// command with the flags a real control-plane node would pass. Each component gets its own process (its
// global flags, feature gates, metrics registries and log settings stay its own) and its own log file.
package controlplane

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Proc is a running component.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// Start runs this binary as component name with args, its stdout and stderr appended to logDir/<name>.log.
// The child gets SIGTERM if this process dies, so nothing outlives the cluster.
func Start(name string, args []string, logDir string) (*Proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{}), log: log}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// ExitError says how the process ended (after Done).
func (p *Proc) ExitError() error {
	if p.err == nil {
		return fmt.Errorf("%s exited", p.Name)
	}
	return fmt.Errorf("%s: %w", p.Name, p.err)
}

// Stop sends SIGTERM and waits up to grace for the exit, then kills the process.
func (p *Proc) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1. They are free when returned; a component
// binds them a moment later (the same approach as upstream's test servers' createListenerOnFreePort,
// except that a child process has to bind the port itself).
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		addr, ok := l.Addr().(*net.TCPAddr)
		if !ok {
			return nil, errors.New("not a TCP address")
		}
		ports = append(ports, addr.Port)
	}
	return ports, nil
}
