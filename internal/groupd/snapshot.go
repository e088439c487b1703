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
	// Hello: it announced itself since it joined; the version and start
	// time are from that hello.
	Hello        bool
	HelloVersion uint16
	HelloStart   time.Time
	// StaleHello: it announced itself as the run that failed earlier.
	StaleHello bool
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
	PendingRecovery                   bool
	Reason                            string
}

// Bypass says whether nodeID may skip fencing, and why. Anything unknown
// means no.
func (s *Snapshot) Bypass(nodeID uint32) (allowed bool, reason string) {
	c := s.BypassDetail(nodeID)
	return c.Allowed, c.Reason
}

// BypassDetail is Bypass with each condition spelled out. A node may skip
// fencing only if it is a cluster (cman) member, a groupd group member,
// has announced itself since it last joined the group, and has no pending
// recovery set.
func (s *Snapshot) BypassDetail(nodeID uint32) BypassCheck {
	c := BypassCheck{NodeID: nodeID}
	c.ClusterMember = slices.Contains(s.ClusterMembers, nodeID)
	c.Hello = true
	for _, m := range s.Members {
		if m.NodeID == nodeID {
			c.GroupMember = true
			c.Hello = c.Hello && m.Hello
		}
	}
	c.Hello = c.Hello && c.GroupMember
	for _, r := range s.Recovery {
		if r.NodeID == nodeID && r.State.Pending() {
			c.PendingRecovery = true
		}
	}
	c.Known = s.ClusterKnown && s.Joined
	who := fmt.Sprintf("node %d", nodeID)
	switch {
	case nodeID == 0:
		c.Known = false
		c.Reason = "node id 0 is not a node; fence"
	case !s.ClusterKnown:
		c.Reason = who + " must be fenced: this daemon has no cluster membership yet, so it cannot tell"
	case !s.Joined:
		c.Reason = who + " must be fenced: this daemon is not in the groupd group, so it cannot tell"
	case !c.ClusterMember:
		c.Reason = who + " must be fenced: it is not a cluster member"
	case !c.GroupMember:
		c.Reason = who + " must be fenced: it is not in the groupd group"
	case c.PendingRecovery:
		c.Reason = who + " must be fenced: it has a pending recovery set"
	case !c.Hello:
		c.Reason = who + " must be fenced: it has not announced itself since it joined the groupd group"
	default:
		c.Allowed = true
		c.Reason = who + " may skip fencing: it is a cluster member and a groupd member and announced itself since it joined"
	}
	return c
}
