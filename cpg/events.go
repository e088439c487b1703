package cpg

import "fmt"

// Event is one item of a Handle's event stream: *Message, *ConfChg,
// *TotemConfChg or *Terminated.
type Event interface{ isEvent() }

// Message is a multicast delivered to the group (cpg_deliver_fn_t).
type Message struct {
	Group  string // with any trailing NUL the sender's group name has
	NodeID uint32 // the sender's node
	PID    uint32 // the sender's process on that node
	Data   []byte // Go memory, owned by the receiver until Release

	pooled *[]byte // the pool's handle on Data, if Data came from one
}

// ConfChg is a change of the group's membership (cpg_confchg_fn_t).
type ConfChg struct {
	Group   string
	Members []Address // the group after the change
	Left    []Address // with the reason each one left
	Joined  []Address // with the reason each one joined
}

// TotemConfChg is a change of the totem ring, the cluster-wide membership
// of corosync nodes (cpg_totem_confchg_fn_t). Every handle gets one at
// each ring change, in a group or not. After a handle's join, corosync
// also sends it the current ring once
// (CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF): usually right after the
// join's *ConfChg, but before it if corosync reports another group's
// change in between.
type TotemConfChg struct {
	Ring    RingID
	Members []uint32 // node ids
}

// Terminated is the last event of a stream that ended because corosync went
// away or the connection failed. A stream ended by Close has no Terminated
// event. When corosync went away Err wraps a cs.Error, typically
// ErrLibrary; a failure to wait for the connection's descriptor, or a
// panic inside the binding's callbacks, gives other errors.
type Terminated struct {
	Err error
}

func (*Message) isEvent()      {}
func (*ConfChg) isEvent()      {}
func (*TotemConfChg) isEvent() {}
func (*Terminated) isEvent()   {}

// Address is one process in a membership list (struct cpg_address).
type Address struct {
	NodeID uint32
	PID    uint32
	Reason Reason // why it joined or left; ReasonUndefined in member lists
}

// RingID names a totem ring (struct cpg_ring_id): the representative node
// and a sequence number that grows with each new ring.
type RingID struct {
	NodeID uint32
	Seq    uint64
}

// String formats the ring id as corosync's tools do ("a.5": both in hex).
func (r RingID) String() string { return fmt.Sprintf("%x.%x", r.NodeID, r.Seq) }

// Reason says why a process joined or left a group (cpg_reason_t).
type Reason uint32

// The cpg_reason_t values.
const (
	ReasonUndefined Reason = 0 // CPG_REASON_UNDEFINED
	ReasonJoin      Reason = 1 // CPG_REASON_JOIN: the process called cpg_join
	ReasonLeave     Reason = 2 // CPG_REASON_LEAVE: the process called cpg_leave
	ReasonNodeDown  Reason = 3 // CPG_REASON_NODEDOWN: its node left the ring
	ReasonNodeUp    Reason = 4 // CPG_REASON_NODEUP: its node joined the ring
	ReasonProcDown  Reason = 5 // CPG_REASON_PROCDOWN: it exited or lost its connection
)

// String returns the reason's name (join, leave, nodedown, nodeup,
// procdown, undefined), or "reason(N)" for a value corosync does not
// define.
func (r Reason) String() string {
	switch r {
	case ReasonUndefined:
		return "undefined"
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

// Guarantee is the delivery guarantee asked of a multicast
// (cpg_guarantee_t). Corosync 3 delivers every CPG message in agreed
// order, whatever was asked: all members see all messages, and membership
// changes, in one total order.
type Guarantee uint32

// The cpg_guarantee_t values.
const (
	Unordered Guarantee = 0 // CPG_TYPE_UNORDERED (not implemented by corosync)
	FIFO      Guarantee = 1 // CPG_TYPE_FIFO (same as Agreed)
	Agreed    Guarantee = 2 // CPG_TYPE_AGREED: total order
	Safe      Guarantee = 3 // CPG_TYPE_SAFE (not implemented by corosync)
)

// String returns the guarantee's name in lower case, or "guarantee(N)".
func (g Guarantee) String() string {
	switch g {
	case Unordered:
		return "unordered"
	case FIFO:
		return "fifo"
	case Agreed:
		return "agreed"
	case Safe:
		return "safe"
	}
	return fmt.Sprintf("guarantee(%d)", uint32(g))
}

// GroupMember is one process of one group, as the iteration calls report
// it (struct cpg_iteration_description_t).
type GroupMember struct {
	Group  string
	NodeID uint32
	PID    uint32
}
