package cman

/*
#cgo pkg-config: libquorum libvotequorum libcmap libcfg
#include "glue.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime/cgo"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/groupd-go/groupd/cs"
	"golang.org/x/sys/unix"
)

// ErrClosed is returned by the methods of a Cluster after Close.
var ErrClosed = errors.New("cman: cluster connection closed")

// Cluster is a connection to the local corosync: one handle each of
// libquorum, libvotequorum, libcmap and libcfg, and a goroutine that
// dispatches the quorum handle's notifications into the Events channel.
//
// All methods may be called from any goroutine. Calls into one corosync
// library are serialized (each takes a few local IPC round trips), calls
// into different libraries are not: a KillNode that waits for a frozen
// corosync holds up neither event delivery nor Quorate, and a long Nodes
// or a Quorate waiting for corosync does not delay events.
type Cluster struct {
	// closed is set first thing by Close: no C call starts after it.
	closed atomic.Bool

	// One lock per C handle. Each serializes the calls on its handle and
	// its finalization, which must not run while a call is inside the
	// library. None is held while waiting for the fd or for the consumer,
	// and none is taken while another is held.
	quorumMu     sync.Mutex // quorum_dispatch: the dispatch goroutine's alone
	quorum       C.quorum_handle_t
	votequorumMu sync.Mutex // votequorum_getinfo (Quorate, Quorum, Nodes)
	votequorum   C.votequorum_handle_t
	cmapMu       sync.Mutex // the cmap iteration and getters of Nodes
	cmap         C.cmap_handle_t
	cfgMu        sync.Mutex // corosync_cfg_kill_node
	cfg          C.corosync_cfg_handle_t
	cfgFD        int // the cfg connection's fd, to see whether it hung up

	self   cgo.Handle // the quorum context: finds c in the trampolines
	nodeID uint32
	fd     int
	waiter *cs.Waiter
	events *queue

	dispatchDone chan struct{}

	// Touched only by the dispatch goroutine (the trampolines run inside
	// its quorum_dispatch call).
	sawMembership, sawQuorum bool
	callbackErr              error

	closeOnce sync.Once
	closeErr  error
}

// notRunning wraps the error of the first call, which fails with
// CS_ERR_LIBRARY when there is no corosync to talk to.
func notRunning(call string, err error) error {
	if errors.Is(err, cs.ErrLibrary) {
		return fmt.Errorf("cman: %s: corosync is not running or not reachable: %w", call, err)
	}
	return fmt.Errorf("cman: %s: %w", call, err)
}

// Open connects to the local corosync. It wraps quorum_model_initialize
// (QUORUM_MODEL_V1), votequorum_initialize, cmap_initialize,
// corosync_cfg_initialize, corosync_cfg_local_get, corosync_cfg_fd_get,
// quorum_fd_get and
// quorum_trackstart(CS_TRACK_CURRENT|CS_TRACK_CHANGES), and starts the
// goroutines that feed Events.
//
// When corosync is not running Open fails with an error wrapping
// cs.ErrLibrary. corosync must use votequorum as its quorum provider.
// Call Close when done, also after corosync went away.
func Open() (*Cluster, error) {
	c := &Cluster{
		events:       newQueue(),
		dispatchDone: make(chan struct{}),
	}
	c.self = cgo.NewHandle(c)
	ok := false
	defer func() {
		if !ok {
			c.finalize()
			c.self.Delete()
		}
	}()

	var quorumType C.uint32_t
	if err := cs.Result(int(C.cman_quorum_open(&c.quorum, C.uintptr_t(c.self), &quorumType))); err != nil {
		c.quorum = 0
		return nil, notRunning("quorum_model_initialize", err)
	}
	// corosync answered: a later failure is not for want of a corosync.
	if err := cs.Result(int(C.votequorum_initialize(&c.votequorum, nil))); err != nil {
		c.votequorum = 0
		return nil, fmt.Errorf("cman: votequorum_initialize: corosync runs, but its votequorum service "+
			"does not answer (the quorum provider must be corosync_votequorum): %w", err)
	}
	if err := cs.Result(int(C.cmap_initialize(&c.cmap))); err != nil {
		c.cmap = 0
		return nil, fmt.Errorf("cman: cmap_initialize: %w", err)
	}
	if err := cs.Result(int(C.corosync_cfg_initialize(&c.cfg, nil))); err != nil {
		c.cfg = 0
		return nil, fmt.Errorf("cman: corosync_cfg_initialize: %w", err)
	}
	var id C.uint
	if err := cs.Result(int(C.corosync_cfg_local_get(c.cfg, &id))); err != nil {
		return nil, fmt.Errorf("cman: corosync_cfg_local_get: %w", err)
	}
	c.nodeID = uint32(id)
	var cfgFD C.int
	if err := cs.Result(int(C.corosync_cfg_fd_get(c.cfg, &cfgFD))); err != nil {
		return nil, fmt.Errorf("cman: corosync_cfg_fd_get: %w", err)
	}
	c.cfgFD = int(cfgFD)

	var fd C.int
	if err := cs.Result(int(C.quorum_fd_get(c.quorum, &fd))); err != nil {
		return nil, fmt.Errorf("cman: quorum_fd_get: %w", err)
	}
	c.fd = int(fd)
	w, err := cs.NewWaiter(c.fd)
	if err != nil {
		return nil, fmt.Errorf("cman: watch the quorum fd: %w", err)
	}
	c.waiter = w
	// CS_TRACK_CURRENT queues the current state (a nodelist and a quorum
	// notification) ahead of any change, so every stream starts with a
	// full picture; CS_TRACK_CHANGES keeps the changes coming.
	if err := cs.Result(int(C.quorum_trackstart(c.quorum, C.CS_TRACK_CURRENT|C.CS_TRACK_CHANGES))); err != nil {
		return nil, fmt.Errorf("cman: quorum_trackstart: %w", err)
	}

	ok = true
	go c.events.run()
	go c.dispatch()
	return c, nil
}

// finalize releases the C handles (quorum_finalize, votequorum_finalize,
// cmap_finalize, corosync_cfg_finalize), each once no call is inside its
// library. The dispatch goroutine must have stopped or never started.
// cfg goes last: a KillNode to a frozen corosync is the likeliest call to
// be still inside its library, and the other handles need not wait for it.
func (c *Cluster) finalize() error {
	c.closed.Store(true)
	if c.waiter != nil {
		c.waiter.Close()
	}
	var errs []error
	fail := func(call string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("cman: %s: %w", call, err))
		}
	}
	c.quorumMu.Lock()
	if c.quorum != 0 {
		fail("quorum_finalize", cs.Result(int(C.quorum_finalize(c.quorum))))
		c.quorum = 0
	}
	c.quorumMu.Unlock()
	c.votequorumMu.Lock()
	if c.votequorum != 0 {
		fail("votequorum_finalize", cs.Result(int(C.votequorum_finalize(c.votequorum))))
		c.votequorum = 0
	}
	c.votequorumMu.Unlock()
	c.cmapMu.Lock()
	if c.cmap != 0 {
		fail("cmap_finalize", cs.Result(int(C.cmap_finalize(c.cmap))))
		c.cmap = 0
	}
	c.cmapMu.Unlock()
	c.cfgMu.Lock()
	if c.cfg != 0 {
		fail("corosync_cfg_finalize", cs.Result(int(C.corosync_cfg_finalize(c.cfg))))
		c.cfg = 0
	}
	c.cfgMu.Unlock()
	return errors.Join(errs...)
}

// Close stops event delivery and disconnects from corosync: it stops the
// dispatch goroutine, waits for it, closes the Events channel (dropping
// events not yet received, without a terminal error event) and only then
// finalizes the C handles.
//
// Close may be called from any goroutine, also while events are being
// delivered or received, and more than once: every call returns after the
// first has finished, with its result. The corosync library's own errors
// from finalizing are returned joined; they leave nothing to clean up.
//
// Calls made after Close has started return ErrClosed. A call already
// inside corosync does not hold up the end of the Events stream, but Close
// finalizes that call's handle only once it has returned: a KillNode
// waiting for a frozen corosync delays the return of Close.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true) // a dispatch or call about to start will not
		c.waiter.Close()     // wakes a dispatch goroutine that waits
		<-c.dispatchDone
		c.events.abandon()
		c.closeErr = c.finalize()
		c.self.Delete()
	})
	return c.closeErr
}

// Events returns the stream of membership and quorum changes, the same
// channel on every call.
//
// It starts with the state at Open: an Initial membership event and an
// Initial quorum event. Then every nodelist and quorum notification of
// corosync follows, in corosync's order, as one stream. Events wait in an
// unbounded queue until received, so a slow consumer loses none and sees
// them in order; memory grows while it lags. A program that never reads
// Events (it only asks Quorate, Nodes or KillNode) keeps every event for
// the life of the Cluster: a few per membership change, so little, but
// without end.
//
// If the connection to corosync is lost (corosync exited or was killed),
// the last event is an EventError whose Err says why (see Event.Err), and
// the channel is closed. After Close the channel is closed with no such event.
func (c *Cluster) Events() <-chan Event { return c.events.out }

// dispatch waits for the quorum fd and runs quorum_dispatch(CS_DISPATCH_ALL)
// until Close or until the connection is lost.
func (c *Cluster) dispatch() {
	defer close(c.dispatchDone)
	for {
		if err := c.waiter.Wait(); err != nil {
			if errors.Is(err, cs.ErrClosed) {
				return
			}
			c.fail(fmt.Errorf("cman: wait for the quorum fd: %w", err))
			return
		}
		if c.enter(&c.quorumMu) != nil {
			return
		}
		err := cs.Result(int(C.quorum_dispatch(c.quorum, C.CS_DISPATCH_ALL)))
		c.quorumMu.Unlock()
		if c.callbackErr != nil {
			c.fail(c.callbackErr)
			return
		}
		if err != nil {
			c.fail(fmt.Errorf("cman: quorum_dispatch failed, events stop: %w", err))
			return
		}
		// A dead corosync leaves the fd hung up for good. Whatever
		// quorum_dispatch made of it, waiting again would wake at once,
		// forever: stop here.
		if hungUp(c.fd) {
			c.fail(fmt.Errorf("cman: quorum fd hung up: corosync connection lost: %w", cs.ErrLibrary))
			return
		}
	}
}

// hungUp reports whether fd has been hung up or is in error, without
// waiting.
func hungUp(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(p, 0)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0 && p[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
	}
}

// fail ends the stream with a terminal error event.
func (c *Cluster) fail(err error) {
	c.events.push(Event{Kind: EventError, Members: []uint32{}, Joined: []uint32{}, Left: []uint32{}, Err: err})
	c.events.finish()
}

// callbackFailed records a trampoline's panic; dispatch ends the stream
// with it once quorum_dispatch returns.
func (c *Cluster) callbackFailed(err error) {
	if c.callbackErr == nil {
		c.callbackErr = err
	}
}

// onNodelist handles a quorum_v1_nodelist_notification_fn_t call.
func (c *Cluster) onNodelist(ring RingID, members, joined, left []uint32) {
	if c.callbackErr != nil {
		return // the stream ends at the first failure: no gaps
	}
	c.events.push(Event{Kind: EventMembership, Initial: !c.sawMembership, Ring: ring,
		Members: members, Joined: joined, Left: left})
	c.sawMembership = true
}

// onQuorum handles a quorum_v1_quorum_notification_fn_t call.
func (c *Cluster) onQuorum(quorate bool, ring RingID, members []uint32) {
	if c.callbackErr != nil {
		return
	}
	c.events.push(Event{Kind: EventQuorum, Initial: !c.sawQuorum, Ring: ring,
		Members: members, Joined: []uint32{}, Left: []uint32{}, Quorate: quorate})
	c.sawQuorum = true
}

// enter takes the lock of a handle for a C call on it, or returns
// ErrClosed. Checking closed under the lock is what keeps a call off a
// finalized handle: finalize runs under the same lock, after closed is set.
// The check before the lock keeps a call made after Close from waiting for
// a call parked in the library.
func (c *Cluster) enter(mu *sync.Mutex) error {
	if c.closed.Load() {
		return ErrClosed
	}
	mu.Lock()
	if c.closed.Load() {
		mu.Unlock()
		return ErrClosed
	}
	return nil
}

// NodeID returns our node id, read with corosync_cfg_local_get at Open.
// Safe from any goroutine, also after Close.
func (c *Cluster) NodeID() uint32 { return c.nodeID }

// Quorate asks corosync whether the cluster is quorate: votequorum's
// quorate flag, from votequorum_getinfo for our node. Safe from any
// goroutine.
//
// It does not use quorum_getquorate: that would share the quorum handle,
// and so its lock, with event delivery, and a Quorate waiting for a
// frozen corosync would hold up the end of the Events stream at Close.
// Votequorum is the quorum provider, so the two agree once membership has
// settled; while corosync syncs a new ring, votequorum's flag may change a
// moment before quorum_getquorate and before the quorum event on Events
// does. Code that must agree with the event stream should follow the
// Quorate of the events.
func (c *Cluster) Quorate() (bool, error) {
	info, err := c.nodeInfo(c.nodeID)
	if err != nil {
		return false, err
	}
	return info.flags&C.VOTEQUORUM_INFO_QUORATE != 0, nil
}

// QuorumInfo is votequorum's view of the cluster's votes, as
// corosync-quorumtool -s shows it.
type QuorumInfo struct {
	Quorate         bool   `json:"quorate"`
	ExpectedVotes   uint32 `json:"expected_votes"`
	HighestExpected uint32 `json:"highest_expected"`
	TotalVotes      uint32 `json:"total_votes"`
	// Quorum is the number of votes needed to be quorate.
	Quorum  uint32 `json:"quorum"`
	TwoNode bool   `json:"two_node"`
}

// Quorum returns votequorum's view of the votes, from votequorum_getinfo
// for our node. Safe from any goroutine.
func (c *Cluster) Quorum() (QuorumInfo, error) {
	info, err := c.nodeInfo(c.nodeID)
	if err != nil {
		return QuorumInfo{}, err
	}
	return QuorumInfo{
		Quorate:         info.flags&C.VOTEQUORUM_INFO_QUORATE != 0,
		ExpectedVotes:   uint32(info.node_expected_votes),
		HighestExpected: uint32(info.highest_expected),
		TotalVotes:      uint32(info.total_votes),
		Quorum:          uint32(info.quorum),
		TwoNode:         info.flags&C.VOTEQUORUM_INFO_TWONODE != 0,
	}, nil
}

// MaxKillReason is the longest reason KillNode takes, in bytes: corosync
// carries it in a cs_name_t (CS_MAX_NAME_LENGTH, its terminating NUL
// included).
const MaxKillReason = C.CS_MAX_NAME_LENGTH - 1

// Back-off for CS_ERR_TRY_AGAIN from KillNode: corosync applies flow
// control to the kill request, which it sends through totem, and answers
// so while it syncs after a membership change.
const (
	killFirstBackoff = 10 * time.Millisecond
	killMaxBackoff   = 500 * time.Millisecond
)

// KillNode asks corosync to remove a node from the cluster: the node's
// corosync exits, logging reason (corosync_cfg_kill_node). Success means
// corosync took the request, not that the node is gone yet: its departure
// comes as a membership event. Killing our own node makes our corosync
// exit; the Events stream then ends with its terminal error.
//
// A node that is not a cluster member now (it left, or was never
// configured) gives an error wrapping cs.ErrNotExist: there is nothing to
// kill. If the connection to corosync is lost before its answer came, the
// error wraps cs.ErrLibrary and says so: the request may or may not have
// reached corosync. (libcfg reports such a call with whatever its unset
// reply buffer held, CS_OK included; KillNode tells it apart, see
// cman_kill_node in glue.h.) CS_ERR_TRY_AGAIN (corosync syncing a new
// ring, or its queues full), and a request that got no answer on a live
// connection (libqb's flow control kept it back), are retried with
// back-off until ctx is done (the error then wraps ctx's error, not
// cs.ErrTryAgain); no request is sent once ctx is done, the first one
// included, as a kill cannot be taken back. The
// context does not bound a request corosync has taken and not answered
// (corosync's IPC has no timeout): against a frozen corosync, KillNode
// returns when it resumes or goes away. Node id 0 and a reason that holds a
// NUL byte or is longer than MaxKillReason are refused before anything is
// sent. Safe from any goroutine.
func (c *Cluster) KillNode(ctx context.Context, nodeID uint32, reason string) error {
	switch {
	case nodeID == 0:
		return fmt.Errorf("cman: kill node: node id 0 is not a node: %w", cs.ErrInvalidParam)
	case len(reason) > MaxKillReason:
		return fmt.Errorf("cman: kill node %d: reason of %d bytes, at most %d: %w", nodeID, len(reason), MaxKillReason, cs.ErrInvalidParam)
	case strings.IndexByte(reason, 0) >= 0:
		return fmt.Errorf("cman: kill node %d: reason holds a NUL byte: %w", nodeID, cs.ErrInvalidParam)
	}
	cr := C.CString(reason)
	defer C.free(unsafe.Pointer(cr))
	b := cs.Backoff{Delay: killFirstBackoff, Max: killMaxBackoff}
	defer b.Stop()
	for {
		// The lock is held per attempt, not across the back-off, so that
		// Close never waits for one.
		if err := c.enter(&c.cfgMu); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil { // it may have ended while we waited for the lock
			c.cfgMu.Unlock()
			return fmt.Errorf("cman: kill node %d: not sent: %w", nodeID, err)
		}
		rc := C.cman_kill_node(c.cfg, C.uint(nodeID), cr)
		// A failed call on a connection that hung up says nothing
		// (libqb may have written part of the reply buffer): only
		// corosync's CS_OK is taken at its word then.
		lost := rc != C.CS_OK && hungUp(c.cfgFD)
		c.cfgMu.Unlock()
		var err error
		switch {
		case lost:
			return fmt.Errorf("cman: corosync_cfg_kill_node node %d: no answer, the connection to corosync is lost "+
				"(whether corosync took the request is unknown): %w", nodeID, cs.ErrLibrary)
		case rc == C.CMAN_NO_REPLY:
			// The connection is up and the request got no answer:
			// libqb did not send it (its flow control).
			err = fmt.Errorf("no answer: %w", cs.ErrTryAgain)
		default:
			err = cs.Result(int(rc))
		}
		if !errors.Is(err, cs.ErrTryAgain) {
			if err != nil {
				return fmt.Errorf("cman: corosync_cfg_kill_node node %d: %w", nodeID, err)
			}
			return nil
		}
		if werr := b.Wait(ctx, nil); werr != nil {
			return fmt.Errorf("cman: corosync_cfg_kill_node node %d: corosync still answered %v, and gave up: %w", nodeID, err, werr)
		}
	}
}

// Nodes returns every node of the cmap nodelist (nodelist.node.X.*), in
// nodelist order, with votequorum's state and votes for each
// (votequorum_getinfo). Safe from any goroutine.
//
// A node is a Member when votequorum counts it as one. For a node
// votequorum has never seen, Votes is its configured quorum_votes (1 when
// not set). Names fall back as documented on Node.
//
// The cmap and votequorum reads are separate calls, not one snapshot: a
// membership change while Nodes runs may show in some nodes and not others.
func (c *Cluster) Nodes() ([]Node, error) {
	keys, err := c.cmapPrefix("nodelist.")
	if err != nil {
		return nil, err
	}
	nodes, err := parseNodelist(keys, c.nodeID)
	if err != nil {
		return nil, err
	}
	for i := range nodes {
		n := &nodes[i]
		n.Local = n.Local || n.ID == c.nodeID
		if n.ID == 0 {
			continue
		}
		info, err := c.nodeInfo(n.ID)
		switch {
		case err == nil:
			n.Member = info.node_state == C.VOTEQUORUM_NODESTATE_MEMBER
			n.Votes = uint32(info.node_votes)
		case errors.Is(err, cs.ErrNotExist):
			// Configured, never seen: keep the configured votes.
		default:
			return nil, err
		}
	}
	return nodes, nil
}

// nodeInfo calls votequorum_getinfo for one node.
func (c *Cluster) nodeInfo(id uint32) (C.struct_votequorum_info, error) {
	var info C.struct_votequorum_info
	if err := c.enter(&c.votequorumMu); err != nil {
		return info, err
	}
	defer c.votequorumMu.Unlock()
	if err := cs.Result(int(C.votequorum_getinfo(c.votequorum, C.uint(id), &info))); err != nil {
		return info, fmt.Errorf("cman: votequorum_getinfo node %d: %w", id, err)
	}
	return info, nil
}

// LocalNode returns our entry of Nodes. If the nodelist has no entry with
// our id, it returns a Node with our id and the fallback name.
// Safe from any goroutine.
func (c *Cluster) LocalNode() (Node, error) {
	nodes, err := c.Nodes()
	if err != nil {
		return Node{}, err
	}
	for _, n := range nodes {
		if n.Local && n.ID == c.nodeID {
			return n, nil
		}
	}
	return Node{ID: c.nodeID, Name: fallbackName(c.nodeID), Addresses: []string{}, Local: true}, nil
}

// vanished reports whether a cmap get failed because the key went away
// (CS_ERR_NOT_EXIST) or changed type (CS_ERR_INVALID_PARAM) after the
// iteration listed it, as a configuration reload that drops or rewrites a
// node does: such a key is skipped, not an error.
func vanished(err error) bool {
	return errors.Is(err, cs.ErrNotExist) || errors.Is(err, cs.ErrInvalidParam)
}

// cmapPrefix reads every key under prefix with its value formatted as text
// (integers in decimal), using cmap_iter_init, cmap_iter_next,
// cmap_get_string and the cmap_get_* integer getters, all under one hold
// of the cmap lock.
func (c *Cluster) cmapPrefix(prefix string) (map[string]string, error) {
	if err := c.enter(&c.cmapMu); err != nil {
		return nil, err
	}
	defer c.cmapMu.Unlock()
	cprefix := C.CString(prefix)
	defer C.free(unsafe.Pointer(cprefix))
	var iter C.cmap_iter_handle_t
	if err := cs.Result(int(C.cmap_iter_init(c.cmap, cprefix, &iter))); err != nil {
		return nil, fmt.Errorf("cman: cmap_iter_init %q: %w", prefix, err)
	}
	defer C.cmap_iter_finalize(c.cmap, iter)

	buf := (*C.char)(C.malloc(C.CMAP_KEYNAME_MAXLEN + 1))
	defer C.free(unsafe.Pointer(buf))
	out := make(map[string]string)
	for {
		var size C.size_t
		var typ C.cmap_value_types_t
		err := cs.Result(int(C.cmap_iter_next(c.cmap, iter, buf, &size, &typ)))
		if errors.Is(err, cs.ErrNoSections) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cman: cmap_iter_next %q: %w", prefix, err)
		}
		key := C.GoString(buf)
		switch typ {
		case C.CMAP_VALUETYPE_STRING:
			var s *C.char
			if err := cs.Result(int(C.cmap_get_string(c.cmap, buf, &s))); vanished(err) {
				continue
			} else if err != nil {
				return nil, fmt.Errorf("cman: cmap_get_string %q: %w", key, err)
			}
			out[key] = C.GoString(s)
			C.free(unsafe.Pointer(s))
		case C.CMAP_VALUETYPE_INT8, C.CMAP_VALUETYPE_UINT8, C.CMAP_VALUETYPE_INT16, C.CMAP_VALUETYPE_UINT16,
			C.CMAP_VALUETYPE_INT32, C.CMAP_VALUETYPE_UINT32, C.CMAP_VALUETYPE_INT64, C.CMAP_VALUETYPE_UINT64:
			var v C.int64_t
			if err := cs.Result(int(C.cman_cmap_get_int(c.cmap, buf, typ, &v))); vanished(err) {
				continue
			} else if err != nil {
				return nil, fmt.Errorf("cman: cmap_get %q: %w", key, err)
			}
			if typ == C.CMAP_VALUETYPE_UINT64 {
				out[key] = strconv.FormatUint(uint64(v), 10)
			} else {
				out[key] = strconv.FormatInt(int64(v), 10)
			}
		default:
			// Floats and binary values are not part of a nodelist entry
			// this package reads.
		}
	}
}
