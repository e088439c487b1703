package cpg

/*
#cgo LDFLAGS: -lcpg
#include "glue.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/cgo"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/groupd-go/groupd/cs"
	"golang.org/x/sys/unix"
)

const (
	// MaxNameLength is the longest group name, in bytes (CPG_MAX_NAME_LENGTH).
	MaxNameLength = C.CPG_MAX_NAME_LENGTH
	// MaxBuffers is the most buffers one Multicast takes: libcpg copies
	// them, after its own header, into an array of 64 iovecs.
	MaxBuffers = 63
	// MaxMessageSize is the largest message: the 32-bit length field of
	// corosync's fragmentation protocol. Messages above MaxAtomicMsgSize
	// (about 1 MiB) are cut into fragments by libcpg and reassembled, in
	// memory, by every receiver.
	MaxMessageSize = math.MaxUint32
	// MaxMembers is corosync's limit on processes in one membership list
	// (PROCESSOR_COUNT_MAX), which MembershipGet's buffer holds.
	MaxMembers = C.GLUE_MEMBERS_MAX
)

// The corosync errors callers of this package most often test for, with
// errors.Is. All cs_error_t values are in package cs.
var (
	ErrTryAgain  = cs.ErrTryAgain
	ErrLibrary   = cs.ErrLibrary
	ErrExist     = cs.ErrExist
	ErrNotExist  = cs.ErrNotExist
	ErrTooBig    = cs.ErrTooBig
	ErrBadHandle = cs.ErrBadHandle
)

// ErrClosed is returned by calls on a Handle after Close.
var ErrClosed = errors.New("cpg handle is closed")

// Handle is one connection to corosync's CPG service (cpg_handle_t) and
// the stream of events delivered on it.
//
// All methods are safe for concurrent use. Calls that talk to corosync
// (Join, Leave, Multicast and the queries) may run while events are being
// delivered, and while another goroutine calls Close; after Close they
// return ErrClosed.
type Handle struct {
	handle C.cpg_handle_t
	ctx    cgo.Handle
	waiter *cs.Waiter
	q      *queue
	events chan Event

	stop       chan struct{} // closed by Close: the pump gives up
	readerDone chan struct{}
	pumpDone   chan struct{}
	closeOnce  sync.Once
	closed     atomic.Bool
	terminated atomic.Pointer[error]

	// sendMu keeps multicasts whole: libcpg sends a large message as a
	// series of fragments, and two series on one connection must not mix.
	// It also guards sent.
	sendMu sync.Mutex
	// Pacing (see Multicast): bytes this handle has multicast, and bytes
	// of its own messages delivered back to it.
	sent       uint64
	paceWaits  uint64 // times pace waited; of those waits, how many
	paceWoken  uint64 // were ended by returned messages waking it, and
	paceGaveUp uint64 // how many by paceStall
	// interrupted counts the times a fragmented message was sent again
	// because the group's membership changed while it went out.
	interrupted uint64
	paceTimer   *time.Timer
	returned    atomic.Uint64
	paceTarget  atomic.Uint64 // returned value a waiting multicast wants; 0: none
	paceWake    chan struct{} // capacity 1
	self        Address       // this process, to recognise its own messages

	// groupMu serializes Join and Leave, and guards group and left; it is
	// held while they wait out CS_ERR_TRY_AGAIN. member is the group while
	// the handle is in it, else nil (set by Join, cleared as Leave starts),
	// read by Group and Multicast without the lock.
	groupMu sync.Mutex
	group   string
	left    bool // the handle left its group: it cannot join again
	member  atomic.Pointer[string]
	// joining is set from the join request until corosync delivers the
	// join's confchg, the first confchg a handle gets (cleared by the
	// confchg trampoline). Corosync answers CS_ERR_BUSY to a leave while
	// its join is under way, and libcpg then resends the leave in a loop,
	// inside C, for as long as that lasts; Leave waits here instead, in
	// Go, honouring its context.
	joining atomic.Bool

	// reqMu serializes the calls that send corosync a request and wait
	// for its reply (everything but cpg_dispatch, which reads the event
	// channel): libcpg does not, and two at once on one connection would
	// garble the request ring or take each other's replies. It is held
	// per call, never across a back-off, and cpg_finalize runs under it
	// (finalized then set), so Close waits for a call inside corosync.
	reqMu     sync.Mutex
	finalized bool

	// progress wakes multicasts waiting out flow control whenever
	// corosync delivered something, which is when its queues drain.
	progress notifier

	// dispatchMu is held around cpg_dispatch, by the dispatch goroutine or
	// by a multicast delivering what is ready (see Multicast), and guards
	// what the callbacks write.
	dispatchMu sync.Mutex
	dispatched uint64 // events collected so far
	batch      []Event
	lastGroup  string
	panicked   error
}

// New connects to corosync (cpg_model_initialize with CPG_MODEL_V1, the
// totem confchg callback and CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF) and
// starts delivering events to Events. Corosync sends the current ring, as
// a *TotemConfChg, when the handle joins a group, usually right after the
// join's *ConfChg (see TotemConfChg).
func New() (*Handle, error) {
	h := &Handle{
		events:     make(chan Event, 1024),
		paceWake:   make(chan struct{}, 1),
		stop:       make(chan struct{}),
		readerDone: make(chan struct{}),
		pumpDone:   make(chan struct{}),
	}
	h.q = newQueue(h.events)
	h.ctx = cgo.NewHandle(h)
	if err := cs.Result(int(C.glue_initialize(&h.handle, C.uintptr_t(h.ctx)))); err != nil {
		h.ctx.Delete()
		if errors.Is(err, cs.ErrLibrary) {
			return nil, fmt.Errorf("cpg initialize: cannot reach corosync (is it running?): %w", err)
		}
		return nil, fmt.Errorf("cpg initialize: %w", err)
	}
	var fd C.int
	err := cs.Result(int(C.cpg_fd_get(h.handle, &fd)))
	if err == nil {
		h.waiter, err = cs.NewWaiter(int(fd))
	}
	if err != nil {
		C.cpg_finalize(h.handle)
		h.ctx.Delete()
		return nil, fmt.Errorf("cpg fd get: %w", err)
	}
	var id C.uint
	if err := cs.Result(int(C.cpg_local_get(h.handle, &id))); err != nil {
		h.waiter.Close()
		C.cpg_finalize(h.handle)
		h.ctx.Delete()
		return nil, fmt.Errorf("cpg local get: %w", err)
	}
	h.self = Address{NodeID: uint32(id), PID: uint32(os.Getpid())}
	go h.dispatchLoop()
	go func() {
		defer close(h.pumpDone)
		h.q.pump(h.stop)
	}()
	return h, nil
}

// Events returns the handle's one ordered stream of *Message, *ConfChg and
// *TotemConfChg events, in the order corosync delivered them (see the
// package doc on virtual synchrony and buffering). If corosync goes away
// the last event is a *Terminated; then the channel is closed. Close also
// closes it; events still queued beyond the channel's buffer are then
// discarded (see Close).
func (h *Handle) Events() <-chan Event { return h.events }

// Err returns the error that ended the stream (the one in the Terminated
// event), or nil while the stream runs or when it was ended by Close.
func (h *Handle) Err() error {
	if p := h.terminated.Load(); p != nil {
		return *p
	}
	return nil
}

// Pending returns how many events are queued and not yet received from
// Events.
func (h *Handle) Pending() int { return h.q.len() }

// dispatchBatch is how many events are collected before they are handed to
// the consumer, so that a long burst is not held back until it ends. It is
// also the most the dispatch goroutine delivers before it lets go of
// dispatchMu and checks for Close: under a steady flood there is always
// more, and Close waits for the dispatch goroutine.
const dispatchBatch = 256

func (h *Handle) dispatchLoop() {
	defer close(h.readerDone)
	var fd C.int
	C.cpg_fd_get(h.handle, &fd)
	for {
		if err := h.waiter.Wait(); err != nil {
			if !errors.Is(err, cs.ErrClosed) {
				h.terminate(fmt.Errorf("cpg: waiting for corosync: %w", err))
			}
			return
		}
		if gate := dispatchGate.Load(); gate != nil {
			(*gate)(h)
		}
		h.dispatchMu.Lock()
		if h.Err() != nil {
			h.dispatchMu.Unlock()
			return // a multicast ended the stream (a panicking trampoline)
		}
		before := h.dispatched
		err := h.dispatchSome(dispatchBatch)
		idle := h.dispatched == before
		h.dispatchMu.Unlock()
		if err != nil {
			return // dispatchSome ended the stream
		}
		if idle {
			// Woken with nothing to deliver: either a fragment of a
			// larger message, or corosync hung up.
			if hungUp(int(fd)) {
				h.terminate(fmt.Errorf("cpg dispatch: corosync closed the connection: %w", cs.ErrLibrary))
				return
			}
		}
	}
}

// inlineDispatchMax is the most events a Multicast delivers itself after
// sending. It is enough to keep up with the sender's own messages, and few
// enough that other members' traffic cannot hold the sender up: under a
// steady inbound flood more is always ready. The dispatch goroutine takes
// the rest.
const inlineDispatchMax = 64

// dispatchGate, when set (tests only), is called by the dispatch goroutine
// of every handle each time it wakes, before it dispatches.
var dispatchGate atomic.Pointer[func(*Handle)]

// dispatchSome runs the callbacks for at most max of the events already
// received, one cpg_dispatch (CS_DISPATCH_ONE_NONBLOCKING) each, and
// flushes them. A fragment of a larger message counts as one. An error
// (a panicking trampoline's, or libcpg's, which may have consumed an
// event it could not deliver) ends the stream, before dispatchMu is let
// go: another dispatcher must not deliver what came after the lost
// event. Called with dispatchMu held.
func (h *Handle) dispatchSome(max int) error {
	// One call into C for them all. After a panic the trampolines drop
	// what follows, and the stream ends with the panic.
	err := cs.Result(int(C.glue_dispatch(h.handle, C.int(max))))
	switch {
	case h.panicked != nil:
		err = h.panicked
	case errors.Is(err, cs.ErrTryAgain):
		err = nil // nothing more is ready
	case err != nil:
		err = fmt.Errorf("cpg dispatch failed, so the stream ends (corosync went away, or libcpg could not go on): %w", err)
	}
	h.flush()
	if err != nil {
		h.terminateLocked(err)
	}
	return err
}

// flush hands the collected events to the consumer's queue, and wakes
// multicasts waiting for corosync to move or for their own messages.
func (h *Handle) flush() {
	if len(h.batch) > 0 {
		h.q.push(h.batch, false)
		clear(h.batch)
		h.batch = h.batch[:0]
	}
	h.wakePacer()
	h.progress.notify()
}

// collect is called by the trampolines for each event, in corosync's order.
// After a trampoline panicked, the stream has a hole where that event was:
// nothing after it is delivered, and the stream ends with the panic.
func (h *Handle) collect(ev Event) {
	if h.panicked != nil {
		return
	}
	h.dispatched++
	h.batch = append(h.batch, ev)
	if len(h.batch) >= dispatchBatch {
		h.flush()
	}
}

// hungUp reports whether corosync has closed its end of fd. Checked only
// when the fd woke us but gave no event, so a dead connection can never
// make the dispatch loop spin.
func hungUp(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
	n, err := unix.Poll(pfd, 0)
	if err != nil || n == 0 {
		return false
	}
	return pfd[0].Revents&(unix.POLLHUP|unix.POLLRDHUP|unix.POLLERR|unix.POLLNVAL) != 0
}

// terminate ends the stream with err, once. It takes dispatchMu, so that a
// multicast delivering what is ready cannot add events after the end (it
// checks Err under dispatchMu), nor the dispatch goroutine (it does too).
// Called by the dispatch goroutine when waiting failed or corosync hung
// up; dispatchSome, which holds dispatchMu, calls terminateLocked.
func (h *Handle) terminate(err error) {
	h.dispatchMu.Lock()
	defer h.dispatchMu.Unlock()
	h.terminateLocked(err)
}

// terminateLocked is terminate with dispatchMu held.
func (h *Handle) terminateLocked(err error) {
	if h.terminated.Load() != nil || h.closed.Load() {
		return // ended already, or Close is ending it
	}
	h.terminated.Store(&err)
	defer h.progress.notify()
	select {
	case h.paceWake <- struct{}{}:
	default:
	}
	h.q.push(append(h.batch, &Terminated{Err: err}), true)
	h.batch = nil
}

// Close leaves corosync (cpg_finalize): it stops event delivery, waits for
// the dispatch goroutine, closes the Events channel and only then
// finalizes the C handle. Events queued beyond the channel's buffer are
// discarded; those already in it (up to its capacity, 1024) can still be
// received. Close may be called from any goroutine, also while events are
// being received, and more than once; later calls return nil. A call
// waiting inside corosync for its reply (a MembershipGet to a frozen
// corosync) delays the return of Close, not the end of the stream: the
// handle is finalized once that call is back.
func (h *Handle) Close() error {
	var err error
	h.closeOnce.Do(func() {
		h.closed.Store(true)
		h.waiter.Close()
		<-h.readerDone
		// A multicast may be dispatching; once it is done, none will
		// start (they check closed under dispatchMu).
		h.dispatchMu.Lock()
		close(h.stop)
		<-h.pumpDone
		h.dispatchMu.Unlock()
		h.progress.notify() // multicasts waiting to retry see the close now
		select {
		case h.paceWake <- struct{}{}:
		default:
		}
		h.reqMu.Lock() // a call inside corosync returns first
		rc := cs.Result(int(C.cpg_finalize(h.handle)))
		h.finalized = true
		h.reqMu.Unlock()
		h.ctx.Delete()
		if rc != nil && h.Err() == nil {
			err = fmt.Errorf("cpg finalize: %w", rc)
		}
	})
	return err
}

func checkName(group string) error {
	if len(group) == 0 {
		return fmt.Errorf("cpg: empty group name: %w", cs.ErrInvalidParam)
	}
	if len(group) > MaxNameLength {
		return fmt.Errorf("cpg: group name of %d bytes is longer than %d: %w",
			len(group), MaxNameLength, cs.ErrNameTooLong)
	}
	return nil
}

// Retry pacing for CS_ERR_TRY_AGAIN: corosync says this while it syncs
// after a membership change, or when its queues are full. A retry comes
// when the back-off expires or, sooner, when corosync delivers an event to
// this handle, as its queues have then moved.
const (
	firstBackoff = 100 * time.Microsecond
	maxBackoff   = 100 * time.Millisecond
)

// call runs one request-side libcpg call under reqMu, or returns
// CS_ERR_BAD_HANDLE once the handle is finalized.
func (h *Handle) call(f func() C.cs_error_t) C.cs_error_t {
	h.reqMu.Lock()
	defer h.reqMu.Unlock()
	if h.finalized {
		return C.CS_ERR_BAD_HANDLE
	}
	return f()
}

// retry calls f (through call) until it returns something other than
// CS_ERR_TRY_AGAIN, or until ctx is done. Giving up, it wraps the
// context's error and not cs.ErrTryAgain: the retrying is done, and a
// caller that looped on errors.Is(err, ErrTryAgain) would spin on its
// done context.
func (h *Handle) retry(ctx context.Context, f func() C.cs_error_t) error {
	b := cs.Backoff{Delay: firstBackoff, Max: maxBackoff}
	defer b.Stop()
	for {
		if h.closed.Load() {
			return ErrClosed
		}
		err := cs.Result(int(h.call(f)))
		if !errors.Is(err, cs.ErrTryAgain) {
			if h.closed.Load() && errors.Is(err, cs.ErrBadHandle) {
				return ErrClosed
			}
			return err
		}
		// A delivery between the call and here is missed, which costs
		// at most one back-off interval.
		if werr := b.Wait(ctx, h.progress.wait()); werr != nil {
			return fmt.Errorf("corosync still answered %v, and gave up: %w", err, werr)
		}
	}
}

// notifier is a broadcast that can be waited for more than once.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed by the next notify.
func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}

func cName(s string) (*C.char, C.uint32_t) {
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s))), C.uint32_t(len(s))
}

// settleJoin waits until corosync has delivered this handle's join (see
// joining), or until ctx is done or the stream ended. Under groupMu.
func (h *Handle) settleJoin(ctx context.Context) error {
	// The back-off only bounds a wait whose wake-up was missed.
	b := cs.Backoff{Delay: maxBackoff, Max: maxBackoff}
	defer b.Stop()
	for h.joining.Load() {
		moved := h.progress.wait()
		if !h.joining.Load() {
			break // delivered before wait
		}
		if h.closed.Load() {
			return ErrClosed
		}
		if err := h.Err(); err != nil {
			return err
		}
		if err := b.Wait(ctx, moved); err != nil {
			return fmt.Errorf("waiting for corosync to deliver this handle's join first: %w", err)
		}
	}
	return nil
}

// confchgSeen clears joining: a confchg delivered while the handle joins
// is its join's, so there is no need to look for our address in it.
// Called by the confchg trampoline, with dispatchMu held.
func (h *Handle) confchgSeen() {
	h.joining.Store(false)
}

// Join joins the process group named group (cpg_join). The name is 1 to
// MaxNameLength bytes and is used exactly as given, NUL bytes included, so
// Pacemaker's groups, whose names end in a NUL, can be joined. A handle is
// in at most one group, and joins once: corosync (3.1) does not let a
// connection that has left a group join again (it answers CS_ERR_EXIST
// for the same group and CS_ERR_BUSY, for ever, for another), so after
// Leave, Join returns an error wrapping ErrExist; use a new Handle.
// CS_ERR_TRY_AGAIN is retried with back-off until ctx is done.
//
// Join returns once corosync has accepted the request, as cpg_join does;
// the join takes effect with its confchg (a ConfChg on the stream with
// this process among Joined). Until that is delivered, MembershipGet and
// GroupMembers may not list this process yet.
func (h *Handle) Join(ctx context.Context, group string) error {
	if err := checkName(group); err != nil {
		return fmt.Errorf("cpg join %q: %w", group, err)
	}
	if h.closed.Load() {
		return fmt.Errorf("cpg join %q: %w", group, ErrClosed)
	}
	h.groupMu.Lock()
	defer h.groupMu.Unlock()
	if h.member.Load() != nil {
		return fmt.Errorf("cpg join %q: this handle is already in group %q (one group per handle): %w",
			group, h.group, cs.ErrExist)
	}
	if h.left {
		return fmt.Errorf("cpg join %q: this handle has left group %q, and corosync does not let it join again: use a new Handle: %w",
			group, h.group, cs.ErrExist)
	}
	name, n := cName(group)
	// Set before the request: its confchg may be dispatched before
	// cpg_join returns.
	h.joining.Store(true)
	err := h.retry(ctx, func() C.cs_error_t { return C.glue_join(h.handle, name, n) })
	runtime.KeepAlive(group)
	if err != nil {
		h.joining.Store(false)
		return fmt.Errorf("cpg join %q: %w", group, err)
	}
	h.group = group
	// Before Multicast may send: nothing of ours is in flight in the new
	// group.
	h.sendMu.Lock()
	h.sent = h.returned.Load()
	h.sendMu.Unlock()
	h.member.Store(&group)
	return nil
}

// Leave leaves the handle's group (cpg_leave). The members, this process
// among them, then see it leave with ReasonLeave. CS_ERR_TRY_AGAIN is
// retried with back-off until ctx is done.
func (h *Handle) Leave(ctx context.Context) error {
	if h.closed.Load() {
		return fmt.Errorf("cpg leave: %w", ErrClosed)
	}
	h.groupMu.Lock()
	defer h.groupMu.Unlock()
	if h.member.Load() == nil {
		return fmt.Errorf("cpg leave: this handle is in no group: %w", cs.ErrNotExist)
	}
	if err := h.settleJoin(ctx); err != nil {
		return fmt.Errorf("cpg leave %q: %w", h.group, err)
	}
	// From here Multicast refuses. One that checked before sends, if at
	// all, before the leave goes out: it checks again under reqMu, which
	// the leave request takes too.
	h.member.Store(nil)
	name, n := cName(h.group)
	err := h.retry(ctx, func() C.cs_error_t { return C.glue_leave(h.handle, name, n) })
	if err != nil {
		h.member.Store(&h.group) // still in the group
		return fmt.Errorf("cpg leave %q: %w", h.group, err)
	}
	h.left = true
	return nil
}

// Group returns the group the handle is in: the one it joined, from the
// return of Join until Leave starts (and again if Leave fails) or Close.
// It does not wait for a Join or Leave under way.
func (h *Handle) Group() (string, bool) {
	if h.closed.Load() {
		return "", false // corosync takes a closed connection out of its group
	}
	if p := h.member.Load(); p != nil {
		return *p, true
	}
	return "", false
}

// Multicast sends one message, the concatenation of bufs, to every member
// of the handle's group (cpg_mcast_joined), this process included. At most
// MaxBuffers buffers and MaxMessageSize bytes in all; corosync delivers
// every message in agreed order whatever g says.
//
// The handle must be in a group, from the return of Join until Leave
// starts; otherwise Multicast returns an error wrapping ErrNotExist. A
// Multicast that overlaps a Leave either is sent before the leave or
// returns that error.
// (Corosync refuses such a message, but libcpg does not wait for its
// answer to one of up to MaxAtomicMsgSize bytes: the message would be
// lost without a word.)
//
// When corosync applies flow control (CS_ERR_TRY_AGAIN), Multicast backs
// off and retries until ctx is done. It also waits while more than 4 MiB
// of this handle's own messages would be on their way back to it, for as
// long as they keep coming back (it gives up once none has for 2 ms),
// which mostly spares corosync from having to apply flow control. The
// buffers may be reused as soon as it returns.
//
// A message above MaxAtomicMsgSize goes out in fragments. If the group's
// membership changes while they are sent (a *ConfChg reaches this handle
// after the first), corosync refuses the rest (CS_ERR_INTERRUPT) and no
// member delivers the part already sent; Multicast then sends the whole
// message again, in the new membership, until ctx is done.
func (h *Handle) Multicast(ctx context.Context, g Guarantee, bufs ...[]byte) error {
	if len(bufs) > MaxBuffers {
		return fmt.Errorf("cpg multicast: %d buffers, at most %d: %w", len(bufs), MaxBuffers, cs.ErrInvalidParam)
	}
	if g > Safe {
		return fmt.Errorf("cpg multicast: unknown guarantee %d: %w", uint32(g), cs.ErrInvalidParam)
	}
	// Summed as uint64: on a 32-bit build an int could wrap (the buffers
	// may all be one large slice) and slip past the check.
	var total uint64
	for _, b := range bufs {
		total += uint64(len(b))
	}
	if total > MaxMessageSize {
		return fmt.Errorf("cpg multicast: message of %d bytes is larger than corosync's limit of %d: %w",
			total, uint64(MaxMessageSize), cs.ErrTooBig)
	}
	if h.closed.Load() {
		return fmt.Errorf("cpg multicast: %w", ErrClosed)
	}
	if h.member.Load() == nil {
		return fmt.Errorf("cpg multicast: not in a group (Join first, or the handle has left): %w", cs.ErrNotExist)
	}
	// libcpg sends an empty first buffer of a message above
	// MaxAtomicMsgSize as a fragment of its own, marked first, and so the
	// next one: every receiver's libcpg starts the message over and leaks
	// what it had assembled. Empty buffers add nothing: drop them.
	if slices.ContainsFunc(bufs, func(b []byte) bool { return len(b) == 0 }) {
		bufs = slices.DeleteFunc(slices.Clone(bufs), func(b []byte) bool { return len(b) == 0 })
	}
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	if err := h.pace(ctx, total); err != nil {
		return fmt.Errorf("cpg multicast: %w", err)
	}
	err := h.send(ctx, g, bufs)
	for errors.Is(err, cs.ErrInterrupt) && ctx.Err() == nil {
		h.interrupted++
		err = h.send(ctx, g, bufs)
	}
	if err != nil {
		switch {
		case errors.Is(err, cs.ErrNotExist):
			return fmt.Errorf("cpg multicast: not in a group (Join first): %w", err)
		case errors.Is(err, cs.ErrInterrupt):
			// Sending again is over because ctx is done: its error is
			// what the caller checks for, as after TRY_AGAIN.
			return fmt.Errorf("cpg multicast: a membership change interrupted the fragmented message (%v), and gave up sending it again: %w", err, ctx.Err())
		}
		return fmt.Errorf("cpg multicast: %w", err)
	}
	h.sent += total
	// Deliver what is ready now, as a single-threaded C client does
	// between two sends, unless the dispatch goroutine is at it: this
	// saves it a wake-up, and keeps corosync's queue to us short. At most
	// inlineDispatchMax events, so that the caller gets its return.
	// An error ends the stream in dispatchSome (the event that failed is
	// gone, and the dispatch goroutine may not wake again).
	if h.dispatchMu.TryLock() {
		if h.Err() == nil && !h.closed.Load() {
			h.dispatchSome(inlineDispatchMax)
		}
		h.dispatchMu.Unlock()
	}
	return nil
}

// inFlightLimit is how many bytes of its own messages a handle lets be on
// their way through corosync before Multicast waits for some to come back.
//
// Corosync queues what it cannot put in a client's IPC ring and meanwhile
// answers that client's multicasts with CS_ERR_TRY_AGAIN, so a sender that
// runs far ahead of its own deliveries spends its time waiting out flow
// control (measured: 64 KiB messages at a tenth of the paced rate). Every
// message a member sends comes back to it, in order, which lets the binding
// keep itself within a few times the size of corosync's IPC ring instead.
// Measured here against 1, 2 and 8 MiB, 4 MiB gave the best throughput from
// 1 KiB to 1 MiB messages.
const inFlightLimit = 4 << 20

// pace waits, under sendMu, until the handle's own messages in flight are
// below inFlightLimit. It waits only while they keep coming back: once
// none has for paceStall, it writes off what is in flight and lets the
// send go ahead.
func (h *Handle) pace(ctx context.Context, size uint64) error {
	if !h.mustWait(size) {
		return nil
	}
	// Once over the limit, wait until no more than half the limit is in
	// flight (none, for a message above half the limit), so the sender
	// wakes once per half window, not once per message.
	var allowed uint64
	if size < inFlightLimit/2 {
		allowed = inFlightLimit / 2
	}
	target := h.sent - allowed // mustWait: more than allowed is in flight
	h.paceWaits++
	if h.paceTimer == nil {
		h.paceTimer = time.NewTimer(paceStall)
	} else {
		h.paceTimer.Reset(paceStall)
	}
	defer h.paceTimer.Stop()
	last := h.returned.Load()
	for h.returned.Load() < target && h.Err() == nil && !h.closed.Load() {
		select {
		case <-h.paceWake: // drop a stale wake-up
		default:
		}
		h.paceTarget.Store(target)
		if h.returned.Load() >= target || h.Err() != nil || h.closed.Load() {
			break // came back before the target was set
		}
		select {
		case <-h.paceWake:
			h.paceWoken++
		case <-h.paceTimer.C:
			if r := h.returned.Load(); r != last {
				last = r // coming back, if slowly
				h.paceTimer.Reset(paceStall)
				continue
			}
			// Nothing came back: give up on what is in flight.
			h.paceGaveUp++
			h.sent = h.returned.Load()
			h.paceTarget.Store(0)
			return nil
		case <-ctx.Done():
			h.paceTarget.Store(0)
			return ctx.Err()
		}
	}
	h.paceTarget.Store(0)
	return nil
}

// ownReturned counts n bytes of this handle's own messages delivered back
// to it. Called by the deliver callback, with dispatchMu held; flush wakes
// a multicast waiting for them.
func (h *Handle) ownReturned(n uint64) {
	h.returned.Add(n)
}

// wakePacer wakes a multicast waiting in pace once enough of its own
// messages came back. Called by flush: mostly after cpg_dispatch has
// returned (a goroutine readied from inside a C call may have to wait
// until the Go runtime takes the processor back from that call), and, in
// a long burst, every dispatchBatch events from inside it.
func (h *Handle) wakePacer() {
	if t := h.paceTarget.Load(); t != 0 && h.returned.Load() >= t {
		h.paceTarget.Store(0)
		select {
		case h.paceWake <- struct{}{}:
		default:
		}
	}
}

// mustWait reports whether sending size more bytes would take the handle's
// own messages in flight over the limit. One message always may go.
// Under sendMu.
func (h *Handle) mustWait(size uint64) bool {
	inFlight := h.inFlight()
	return inFlight > 0 && inFlight+size > inFlightLimit && h.Err() == nil
}

// inFlight returns how many bytes of the handle's own messages are on
// their way back to it. Messages written off (by pace giving up on them,
// or by a new Join) may still come back; they then raise sent to match instead of
// making the count go below zero. Under sendMu.
func (h *Handle) inFlight() uint64 {
	r := h.returned.Load()
	if r > h.sent {
		h.sent = r
	}
	return h.sent - r
}

// paceStall is how long pace waits while none of the handle's own
// messages comes back. Messages are lost in a membership change, and the
// dispatch goroutine can be held up for milliseconds (a garbage collection,
// a loaded machine); either way the sender would sit idle, so after
// paceStall it goes on and leaves it to corosync's flow control to hold it
// back. Measured at 64 KiB: against 50 ms, 2 ms gave about 10% more
// throughput with Message.Release and about 30% more without. A variable for
// tests.
var paceStall = 2 * time.Millisecond

// send hands one message to libcpg, retrying CS_ERR_TRY_AGAIN. Under
// sendMu.
func (h *Handle) send(ctx context.Context, g Guarantee, bufs [][]byte) error {
	switch len(bufs) {
	case 0:
		return h.retry(ctx, h.inGroup(func() C.cs_error_t {
			return C.glue_mcast1(h.handle, C.cpg_guarantee_t(g), nil, 0)
		}))
	case 1:
		p, n := unsafe.Pointer(unsafe.SliceData(bufs[0])), C.size_t(len(bufs[0]))
		defer runtime.KeepAlive(bufs[0])
		return h.retry(ctx, h.inGroup(func() C.cs_error_t {
			return C.glue_mcast1(h.handle, C.cpg_guarantee_t(g), p, n)
		}))
	}
	return h.multicastv(ctx, g, bufs)
}

// inGroup makes a multicast call answer CS_ERR_NOT_EXIST, without calling
// libcpg, once a Leave has begun. It runs under reqMu (through retry), as
// the leave request does: so a message goes out before the leave or not
// at all.
func (h *Handle) inGroup(mcast func() C.cs_error_t) func() C.cs_error_t {
	return func() C.cs_error_t {
		if h.member.Load() == nil {
			return C.CS_ERR_NOT_EXIST
		}
		return mcast()
	}
}

func (h *Handle) multicastv(ctx context.Context, g Guarantee, bufs [][]byte) error {
	// The iovec array lives in Go memory and points at Go buffers; cgo
	// allows that only while those buffers are pinned.
	var pin runtime.Pinner
	defer pin.Unpin()
	iov := make([]C.struct_iovec, len(bufs))
	for i, b := range bufs {
		if len(b) > 0 {
			p := unsafe.SliceData(b)
			pin.Pin(p)
			iov[i].iov_base = unsafe.Pointer(p)
		}
		iov[i].iov_len = C.size_t(len(b))
	}
	return h.retry(ctx, h.inGroup(func() C.cs_error_t {
		return C.cpg_mcast_joined(h.handle, C.cpg_guarantee_t(g), &iov[0], C.uint(len(iov)))
	}))
}

func addressesOf(p *C.struct_cpg_address, n int) []Address {
	if n <= 0 {
		return nil
	}
	src := unsafe.Slice(p, n)
	out := make([]Address, n)
	for i := range src {
		out[i] = Address{NodeID: uint32(src[i].nodeid), PID: uint32(src[i].pid), Reason: Reason(src[i].reason)}
	}
	return out
}

// membersOf is addressesOf for a member list, where corosync does not set
// the reason (it may pass on whatever its buffer held): ReasonUndefined.
func membersOf(p *C.struct_cpg_address, n int) []Address {
	a := addressesOf(p, n)
	for i := range a {
		a[i].Reason = ReasonUndefined
	}
	return a
}

// MembershipGet returns the current members of group (cpg_membership_get),
// from a buffer of MaxMembers entries. libcpg writes as many entries as
// corosync sends, up to corosync's own limit, so a smaller buffer (its
// CPG_MEMBERS_MAX is 128) could overflow.
func (h *Handle) MembershipGet(ctx context.Context, group string) ([]Address, error) {
	if err := checkName(group); err != nil {
		return nil, fmt.Errorf("cpg membership %q: %w", group, err)
	}
	members := make([]C.struct_cpg_address, MaxMembers)
	var count C.int
	name, n := cName(group)
	err := h.retry(ctx, func() C.cs_error_t {
		count = MaxMembers
		return C.glue_membership(h.handle, name, n, &members[0], &count)
	})
	runtime.KeepAlive(group)
	if err != nil {
		return nil, fmt.Errorf("cpg membership %q: %w", group, err)
	}
	return membersOf(&members[0], min(int(count), MaxMembers)), nil
}

// LocalGet returns this node's id (cpg_local_get).
func (h *Handle) LocalGet(ctx context.Context) (uint32, error) {
	var id C.uint
	err := h.retry(ctx, func() C.cs_error_t { return C.cpg_local_get(h.handle, &id) })
	if err != nil {
		return 0, fmt.Errorf("cpg local get: %w", err)
	}
	return uint32(id), nil
}

// MaxAtomicMsgSize returns the largest message corosync sends without
// fragmenting it (cpg_max_atomic_msgsize_get). Larger messages work too,
// up to MaxMessageSize.
func (h *Handle) MaxAtomicMsgSize() (uint32, error) {
	var size C.uint32_t
	// Through retry for its handling of a closed handle; this call does
	// not answer CS_ERR_TRY_AGAIN, so the context is never waited on.
	err := h.retry(context.Background(), func() C.cs_error_t {
		return C.cpg_max_atomic_msgsize_get(h.handle, &size)
	})
	if errors.Is(err, ErrClosed) {
		return 0, ErrClosed
	}
	if err != nil {
		return 0, fmt.Errorf("cpg max atomic msgsize: %w", err)
	}
	return uint32(size), nil
}

// Groups returns the names of all groups in the cluster
// (cpg_iteration_* with CPG_ITERATION_NAME_ONLY).
func (h *Handle) Groups(ctx context.Context) ([]string, error) {
	all, err := h.iterate(ctx, C.CPG_ITERATION_NAME_ONLY, "")
	if err != nil {
		return nil, err
	}
	names := make([]string, len(all))
	for i, m := range all {
		names[i] = m.Group
	}
	return names, nil
}

// Processes returns every process of every group in the cluster
// (cpg_iteration_* with CPG_ITERATION_ALL).
func (h *Handle) Processes(ctx context.Context) ([]GroupMember, error) {
	return h.iterate(ctx, C.CPG_ITERATION_ALL, "")
}

// GroupMembers returns the processes of one group
// (cpg_iteration_* with CPG_ITERATION_ONE_GROUP).
func (h *Handle) GroupMembers(ctx context.Context, group string) ([]GroupMember, error) {
	if err := checkName(group); err != nil {
		return nil, fmt.Errorf("cpg iterate %q: %w", group, err)
	}
	return h.iterate(ctx, C.CPG_ITERATION_ONE_GROUP, group)
}

func (h *Handle) iterate(ctx context.Context, typ C.cpg_iteration_type_t, group string) ([]GroupMember, error) {
	var it C.cpg_iteration_handle_t
	name, n := cName(group)
	err := h.retry(ctx, func() C.cs_error_t {
		it = 0
		rc := C.glue_iteration_initialize(h.handle, typ, name, n, &it)
		if rc != C.CS_OK && it != 0 {
			// libcpg made the iteration handle before corosync's
			// reply said no: do not leak it.
			C.cpg_iteration_finalize(it)
		}
		return rc
	})
	runtime.KeepAlive(group)
	if err != nil {
		return nil, fmt.Errorf("cpg iteration initialize: %w", err)
	}
	defer h.call(func() C.cs_error_t { return C.cpg_iteration_finalize(it) })
	var out []GroupMember
	for {
		var d C.struct_cpg_iteration_description_t
		err := h.retry(ctx, func() C.cs_error_t { return C.cpg_iteration_next(it, &d) })
		if errors.Is(err, cs.ErrNoSections) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cpg iteration next: %w", err)
		}
		l := min(int(d.group.length), MaxNameLength)
		out = append(out, GroupMember{
			Group:  C.GoStringN(&d.group.value[0], C.int(l)),
			NodeID: uint32(d.nodeid),
			PID:    uint32(d.pid),
		})
	}
}
