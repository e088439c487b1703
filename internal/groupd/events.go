// Package groupd is the daemon's state: the members of the groupd process
// group, the cluster (cman) membership, recovery sets for failed nodes, and
// the rule that decides whether a node may skip fencing.
//
// It knows nothing of corosync. The daemon adapts cpg and cman callbacks
// into the Event types here (GroupConfChg, GroupMessage, NodeChange) and
// supplies the side effects through small interfaces (Killer, HelloSender,
// Clock, Namer), so the state machine runs from scripted events in tests.
//
// Machine is the state itself and is not safe for concurrent use. Daemon
// runs a Machine in one goroutine that owns it, publishes an immutable
// Snapshot after every change for queries, and performs side effects off
// that goroutine so nothing it does can wait on corosync.
package groupd

import (
	"fmt"
	"time"
)

// Reason is why a member joined or left the groupd group. The values are
// those of corosync's cpg_reason (CPG_REASON_JOIN ... CPG_REASON_PROCDOWN),
// so an adapter can convert with Reason(r).
type Reason uint32

const (
	ReasonJoin     Reason = 1 // the process joined
	ReasonLeave    Reason = 2 // the process left cleanly
	ReasonNodeDown Reason = 3 // the process's node left the corosync membership
	ReasonNodeUp   Reason = 4 // the process's node merged into our membership
	ReasonProcDown Reason = 5 // the process died while its node stayed up
)

func (r Reason) String() string {
	switch r {
	case ReasonJoin:
		return "join"
	case ReasonLeave:
		return "leave"
	case ReasonNodeDown:
		return "nodedown"
	case ReasonNodeUp:
		return "nodeup"
	case ReasonProcDown:
		return "procdown"
	}
	return fmt.Sprintf("reason(%d)", uint32(r))
}

// Member is one process in a groupd group membership change. Reason is set
// in the Left and Joined lists only.
type Member struct {
	NodeID uint32
	PID    uint32
	Reason Reason
}

// Event is an input to the state machine.
type Event interface{ event() }

// GroupConfChg is a membership change of the groupd process group (the cpg
// confchg callback): the whole new membership, and who left and joined.
type GroupConfChg struct {
	Members, Left, Joined []Member
}

// GroupMessage is a message multicast to the groupd group (the cpg deliver
// callback). Data must not be shared with the sender of the event.
type GroupMessage struct {
	NodeID, PID uint32
	Data        []byte
}

// RingID names a corosync membership (ring). Seq grows with every change.
type RingID struct {
	NodeID uint32
	Seq    uint64
}

// String formats the ring as corosync's tools and cman do: hex node id and
// sequence, "1.2c".
func (r RingID) String() string { return fmt.Sprintf("%x.%x", r.NodeID, r.Seq) }

// NodeChange is a cluster (cman) membership change: the full member list of
// the new ring and whether it is quorate; or a quorum notice, with the
// member list of the latest membership change. Joined and Left may be given by
// the adapter; nodes missing from them are worked out by comparing Members
// with the previous change, so an adapter that only has the member list can
// leave them empty.
type NodeChange struct {
	Ring                  RingID
	Members, Joined, Left []uint32
	Quorate               bool
	// QuorumRing is set when the change is corosync's quorum notice, to
	// the ring the notice is for; zero for a membership notice, whose
	// Quorate is the last word we had. Corosync mostly sends a ring's
	// members before its quorum, but the machine takes notices ahead of
	// their ring's members, late, or for a ring whose members never came.
	QuorumRing RingID
}

// Phase is where the daemon is in its life; shown in status.
type Phase string

const (
	PhaseStarting   Phase = "starting"    // startup checks running
	PhaseJoining    Phase = "joining"     // joining the groupd group
	PhaseJoined     Phase = "joined"      // we are in the group's membership
	PhaseStayingOut Phase = "staying-out" // residual state found, policy stay: never joins
	PhaseLeaving    Phase = "leaving"     // shutting down, leaving the group
	// PhaseStopped: Daemon.Run has returned. The last snapshot says so and
	// claims no cluster or group view, so nothing stale is vouched for.
	PhaseStopped Phase = "stopped"
)

// SetPhase tells the machine the daemon moved to another phase. PhaseJoined
// need not be sent: the machine sets it when a confchg lists our process.
type SetPhase struct{ Phase Phase }

// HelloWaitOver tells the machine that the time given to the members it
// awaits (those in the group before we joined, and those a merge into our
// inquorate side made it wait for) to announce themselves has run out (see
// Machine.HelloDeadline). Daemon.Run sends it; a machine driven directly
// is sent it by its driver.
type HelloWaitOver struct{}

func (GroupConfChg) event()  {}
func (GroupMessage) event()  {}
func (NodeChange) event()    {}
func (SetPhase) event()      {}
func (HelloWaitOver) event() {}

// Killer removes a node from the cluster (cman kill), so that fencing
// treats it as failed. reason is a sentence for the log of the killed node.
type Killer interface {
	KillNode(nodeID uint32, reason string) error
}

// HelloSender multicasts data to the groupd group.
type HelloSender interface {
	SendHello(data []byte) error
}

// Clock gives the wall clock and a monotonic clock (CLOCK_MONOTONIC), both
// recorded when a node fails: the wall time for people, the monotonic time
// to compare with kernel and corosync logs across clock steps.
type Clock interface {
	Now() time.Time
	Monotonic() time.Duration
}

// Namer looks up node names. It is called from the state loop, so it must
// answer from memory (a cache of the cman node list), never by asking
// corosync. An unknown node gives "".
type Namer interface {
	NodeName(nodeID uint32) string
}

// Logger is the logging the machine does. logrus's *Logger and *Entry
// satisfy it.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}
