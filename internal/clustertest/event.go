// Package clustertest is the cluster tier of the tests: several real corosync
// nodes in Docker containers (scripts/cluster), which the tests kill, pause,
// cut off and restart, checking from inside the containers what this
// project's cpg and cman packages report.
//
// The tests are behind the build tag "cluster" and need Docker and root:
//
//	./scripts/test-cluster
//
// builds the binaries and the node image and runs them. Inside the containers
// they run groupd-probe (the probe folder), which prints what cpg and cman
// deliver as JSON lines of Event.
package clustertest

import "time"

// Kinds of Event.
const (
	// KindReady: the probe has joined its group, seen itself in it and has
	// cman's initial state; every later change is reported.
	KindReady = "ready"
	// KindConfChg is a cpg group membership change (cpg.ConfChg).
	KindConfChg = "cpg-confchg"
	// KindTotem is a cpg totem ring change (cpg.TotemConfChg).
	KindTotem = "cpg-totem"
	// KindMessage is a message multicast to the group (cpg.Message).
	KindMessage = "cpg-message"
	// KindMembership is a cman membership event.
	KindMembership = "cman-membership"
	// KindQuorum is a cman quorum event.
	KindQuorum = "cman-quorum"
	// KindLost: a stream ended because corosync went away (cpg.Terminated
	// or cman's EventError); Source says which.
	KindLost = "lost"
)

// Proc is one process in a cpg membership list.
type Proc struct {
	NodeID uint32 `json:"nodeid"`
	PID    uint32 `json:"pid"`
	// Reason is cpg.Reason's String ("join", "nodedown", ...), empty in
	// member lists.
	Reason string `json:"reason,omitempty"`
}

// Event is one line printed by `groupd-probe watch`.
type Event struct {
	// Node is the id of the node the probe runs on.
	Node uint32    `json:"node"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	// Source is "cpg" or "cman" for KindLost.
	Source string `json:"source,omitempty"`

	// KindConfChg and KindMessage.
	Group   string `json:"group,omitempty"`
	Members []Proc `json:"members,omitempty"`
	Joined  []Proc `json:"joined,omitempty"`
	Left    []Proc `json:"left,omitempty"`
	// KindMessage: the sender and the data. KindReady: the probe itself.
	From *Proc  `json:"from,omitempty"`
	Data string `json:"data,omitempty"`

	// KindTotem, KindMembership and KindQuorum: the ring and its node ids.
	Ring  string   `json:"ring,omitempty"`
	Nodes []uint32 `json:"nodes,omitempty"`
	// KindMembership: the nodes that joined and left, as corosync said.
	NodesJoined []uint32 `json:"nodes_joined,omitempty"`
	NodesLeft   []uint32 `json:"nodes_left,omitempty"`
	// KindMembership and KindQuorum: the state when the stream started,
	// not a change.
	Initial bool `json:"initial,omitempty"`
	// KindQuorum.
	Quorate bool `json:"quorate,omitempty"`

	// KindLost: why.
	Error string `json:"error,omitempty"`
}

// Status is what `groupd-probe status` prints: one node's view through cman.
type Status struct {
	Node    uint32   `json:"node"`
	Name    string   `json:"name"`
	Quorate bool     `json:"quorate"`
	Members []uint32 `json:"members"`
}
