package cs

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Waiter.Wait once the Waiter is closed.
var ErrClosed = errors.New("corosync waiter closed")

// Waiter blocks a goroutine until a corosync library's file descriptor (from
// cpg_fd_get, quorum_fd_get, ...) is readable or hung up, or until the
// Waiter is closed.
//
// The descriptor belongs to libqb, which must keep it blocking, so it is not
// handed to the Go runtime directly. Instead it sits in an epoll set of our
// own, and that epoll descriptor, which is ours to make non-blocking, is
// what the runtime's poller watches. So no OS thread waits in C or in a
// syscall, and nothing polls on a timer.
type Waiter struct {
	ep     *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	// For the one goroutine in Wait: made once, so waiting allocates
	// nothing.
	ready  func(fd uintptr) bool
	events [1]unix.EpollEvent
	err    error
}

// NewWaiter watches fd for readability. fd stays owned by the caller's
// library; Close the Waiter before that library closes it.
func NewWaiter(fd int) (*Waiter, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl add fd %d: %w", fd, err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	f := os.NewFile(uintptr(epfd), "corosync-fd-waiter")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	w := &Waiter{ep: f, rc: rc}
	w.ready = w.poll
	return w, nil
}

// poll is called by the runtime's poller with the epoll descriptor: true
// when the watched descriptor is ready (or on an error, kept in w.err).
func (w *Waiter) poll(epfd uintptr) bool {
	n, err := unix.EpollWait(int(epfd), w.events[:], 0)
	if err == unix.EINTR {
		return false
	}
	if err != nil {
		w.err = fmt.Errorf("epoll_wait: %w", err)
		return true
	}
	return n > 0
}

// Wait returns nil as soon as the descriptor is readable or hung up (the
// caller then dispatches, which reports the hang-up as an error), and
// ErrClosed once Close has been called, also while it is waiting. Only one
// goroutine may Wait at a time.
func (w *Waiter) Wait() error {
	w.err = nil
	err := w.rc.Read(w.ready)
	if w.closed.Load() {
		return ErrClosed
	}
	if err != nil {
		return err
	}
	return w.err
}

// Close wakes a pending Wait, which returns ErrClosed. It may be called from
// any goroutine, more than once.
func (w *Waiter) Close() error {
	if w.closed.Swap(true) {
		return nil
	}
	return w.ep.Close()
}
