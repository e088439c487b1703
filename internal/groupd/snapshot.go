package groupd

import (
	"fmt"
	"slices"
	"time"
)

// Snapshot is the daemon state at one moment. It is never modified after
// it is made, so any goroutine may read it.
type Snapshot struct {
	// Time is when the snapshot was taken: after the last change.
	Time      time.Time
	OurNodeID uint32
	OurName   string
	OurPID    uint32
	Start     time.Time
	Phase     Phase

	ClusterKnown   bool // a cman membership has been received
	Quorate        bool
	Ring           RingID
	ClusterMembers []uint32 // sorted
	// ClusterNames names the cluster members, as far as Namer knew them.
	ClusterNames map[uint32]string

	Joined   bool          // our process is in the groupd group
	Members  []GroupMember // sorted by node id, pid
	Recovery []RecoverySet // open sets (and acked ones awaiting their confchg), by node id
	Closed   []RecoverySet // recently closed sets, oldest first
}

// GroupMember is one process in the groupd group.
type GroupMember struct {
	NodeID uint32
	PID    uint32
	Name   string
	Since  time.Time // when we saw it join (or saw it first)
	// JoinReason is how we saw it join: ReasonJoin, ReasonNodeUp (it
	// merged back with its node after a partition), or 0 if it was already
	// a member when we joined.
	JoinReason Reason
	// Hello: it announced itself since it joined, and that counts; the
	// version and start time are from that hello.
	Hello        bool
	HelloVersion uint16
	HelloStart   time.Time
	// StaleHello: no hello from it counts until it leaves the group and
	// joins again: it merged back after a partition into our side while
	// it was quorate; it is a run that failed earlier; its node left the
	// cluster while it was listed; or another member's daemon distrusts
	// it.
	StaleHello bool
	// Awaited: it was in the group when we joined, or it merged into our
	// side while ours was not quorate, or was in the group then, and we
	// have not heard its answer (a hello written after it saw that join
	// or merge), which may name runs its daemon distrusts.
	Awaited bool
}

// BypassCheck is the bypass rule worked out for one node.
type BypassCheck struct {
	NodeID uint32
	// Allowed: the node may skip fencing.
	Allowed bool
	// Known is false when our own view is incomplete (no cman membership
	// yet, or we are not in the groupd group), so nothing can be said:
	// the node must be fenced, and a tool can report "could not tell".
	Known                             bool
	ClusterMember, GroupMember, Hello bool
	// Merged: a process of the node came into the group with a partition
	// healing (reason nodeup), not by joining, and its hello does not
	// count: it merged into our side while it was quorate, so it may hold
	// old state.
	// (Nodes merging into a side that was not quorate otherwise may be
	// the side that could act, and are marked only if they are a run we
	// hold a recovery set for, or another daemon distrusts them.)
	Merged          bool
	PendingRecovery bool
	Reason          string
}

// Bypass says whether nodeID may skip fencing, and why. Anything unknown
// means no.
func (s *Snapshot) Bypass(nodeID uint32) (allowed bool, reason string) {
	c := s.BypassDetail(nodeID)
	return c.Allowed, c.Reason
}

// BypassDetail is Bypass with each condition spelled out. A node may skip
// fencing only if it is a cluster (cman) member, a groupd group member,
// has no pending recovery set, and each of its runs in the group has
// announced itself in a hello that counts since it last joined the group.
// A hello counts from a run that joined by a cpg join, or merged back
// after a partition into our side when it was not quorate; never from a
// run we saw fail, or one
// another daemon distrusts. Until the members we await (those in the
// group when we joined, and after a merge into our side while it was not
// quorate, those there or merging in) have answered with a hello written
// after they saw that, nothing can be said.
func (s *Snapshot) BypassDetail(nodeID uint32) BypassCheck {
	v := bypassView{
		phase: s.Phase, clusterKnown: s.ClusterKnown, joined: s.Joined,
		clusterMember: slices.Contains(s.ClusterMembers, nodeID),
	}
	for _, m := range s.Members {
		if m.NodeID == nodeID {
			v.members = append(v.members, m)
		}
		if m.Awaited {
			v.awaiting++
		}
	}
	for _, r := range s.Recovery {
		if r.NodeID == nodeID && r.State.Pending() {
			v.pending = true
		}
	}
	return bypassRule(nodeID, v)
}

// bypassView is what the bypass rule looks at, from a Snapshot or from the
// Machine itself.
type bypassView struct {
	phase                               Phase
	clusterKnown, joined, clusterMember bool
	members                             []GroupMember // the node's processes in the group
	pending                             bool          // it has a pending recovery set
	// awaiting counts the members we await (see GroupMember.Awaited):
	// until they answer, any member may be distrusted by one of them
	// without our knowing.
	awaiting int
}

// bypassRule is the bypass rule: the one place it is written down, used
// for queries and for closing the set of a node that is back.
func bypassRule(nodeID uint32, v bypassView) BypassCheck {
	c := BypassCheck{NodeID: nodeID, ClusterMember: v.clusterMember, PendingRecovery: v.pending}
	c.GroupMember = len(v.members) > 0
	c.Hello = c.GroupMember
	stale := false
	for _, m := range v.members {
		c.Hello = c.Hello && m.Hello
		c.Merged = c.Merged || (m.JoinReason == ReasonNodeUp && m.StaleHello)
		stale = stale || m.StaleHello
	}
	c.Known = v.phase != PhaseStopped && v.clusterKnown && v.joined && v.awaiting == 0
	who := fmt.Sprintf("node %d", nodeID)
	switch {
	case nodeID == 0:
		c.Known = false
		c.Reason = "node id 0 is not a node; fence"
	case v.phase == PhaseStopped:
		c.Reason = who + " must be fenced: this daemon has stopped, so it cannot tell"
	case !v.clusterKnown:
		c.Reason = who + " must be fenced: this daemon has no cluster membership yet, so it cannot tell"
	case !v.joined:
		c.Reason = who + " must be fenced: this daemon is not in the groupd group, so it cannot tell"
	case v.awaiting > 0:
		c.Reason = fmt.Sprintf("%s must be fenced: this daemon waits for the hellos of %d member(s), in the groupd group when it joined or at a merge after a partition, which say what runs their daemons distrust, so it cannot tell yet", who, v.awaiting)
	case !c.ClusterMember:
		c.Reason = who + " must be fenced: it is not a cluster member"
	case !c.GroupMember:
		c.Reason = who + " must be fenced: it is not in the groupd group"
	case c.PendingRecovery:
		c.Reason = who + " must be fenced: it has a pending recovery set"
	case c.Merged:
		c.Reason = who + " must be fenced: it merged back into the groupd group after a partition (nodeup) and may hold state from before; it has not left and rejoined since"
	case stale:
		c.Reason = who + " must be fenced: its groupd run was seen failing and has not left and rejoined the group since"
	case !c.Hello:
		c.Reason = who + " must be fenced: it has not announced itself since it joined the groupd group"
	default:
		c.Allowed = true
		c.Reason = who + " may skip fencing: it is a cluster member and a groupd member and announced itself since it joined"
	}
	return c
}
