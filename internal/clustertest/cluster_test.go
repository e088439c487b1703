//go:build cluster

package clustertest

import (
	"fmt"
	"slices"
	"testing"
)

// Every node sees the same members: in the cpg group, in the totem ring and
// through cman, and a message reaches every member.
func TestMembersAgree(t *testing.T) {
	up(t, 3)
	group := uniqueGroup(t)
	ws := watchAll(t, 3, group)
	all := nodeRange(1, 3)

	// The last confchg each probe saw lists the same processes.
	var first []Proc
	for _, w := range ws {
		_, i := w.waitFor(0, changeTimeout, "full group", func(e Event) bool {
			return e.Kind == KindConfChg && len(e.Members) == 3
		})
		members := w.since(i)[0].Members
		if first == nil {
			first = members
		} else if !slices.Equal(members, first) {
			t.Errorf("node%d sees group members %v, node1 sees %v", w.node, members, first)
		}
	}

	for _, w := range ws {
		totem, _ := w.waitFor(0, changeTimeout, "totem ring", func(e Event) bool { return e.Kind == KindTotem })
		if !slices.Equal(sorted(totem.Nodes), all) {
			t.Errorf("node%d: totem ring %s has nodes %v, want %v", w.node, totem.Ring, totem.Nodes, all)
		}
		st, err := status(t, w.node)
		if err != nil {
			t.Fatal(err)
		}
		if st.Node != uint32(w.node) || st.Name != fmt.Sprintf("node%d", w.node) {
			t.Errorf("node%d: cman says it is node %d named %q", w.node, st.Node, st.Name)
		}
		if !st.Quorate || !slices.Equal(st.Members, all) {
			t.Errorf("node%d: cman says quorate=%v members=%v, want quorate with %v", w.node, st.Quorate, st.Members, all)
		}
	}

	marks := make([]int, len(ws))
	for i, w := range ws {
		marks[i] = w.mark()
	}
	ws[0].send("hello from node1")
	for i, w := range ws {
		msg, _ := w.waitFor(marks[i], changeTimeout, "the message from node1", func(e Event) bool { return e.Kind == KindMessage })
		if msg.Data != "hello from node1" || msg.From == nil || msg.From.NodeID != 1 {
			t.Errorf("node%d got message %q from %+v, want %q from node 1", w.node, msg.Data, msg.From, "hello from node1")
		}
	}
}

// expectNodeDown waits until each watcher sees node leave: in a cpg confchg
// with reason nodedown and in cman's left list, leaving members.
func expectNodeDown(t *testing.T, ws []*watcher, marks []int, node uint32, members []uint32) {
	t.Helper()
	for i, w := range ws {
		cc, _ := w.waitFor(marks[i], changeTimeout, fmt.Sprintf("confchg with node %d left", node), func(e Event) bool {
			return e.Kind == KindConfChg && len(e.Left) > 0
		})
		if !hasProc(cc.Left, node, "nodedown") || len(cc.Left) != 1 {
			t.Errorf("node%d: confchg left %+v, want node %d with reason nodedown", w.node, cc.Left, node)
		}
		if got := procNodes(cc.Members); !slices.Equal(got, members) {
			t.Errorf("node%d: group members after the change are on nodes %v, want %v", w.node, got, members)
		}
		m, _ := w.waitFor(marks[i], changeTimeout, fmt.Sprintf("cman membership with node %d left", node), func(e Event) bool {
			return e.Kind == KindMembership && len(e.NodesLeft) > 0
		})
		if !slices.Equal(m.NodesLeft, []uint32{node}) || !slices.Equal(sorted(m.Nodes), members) {
			t.Errorf("node%d: cman membership left %v members %v, want left [%d] members %v", w.node, m.NodesLeft, m.Nodes, node, members)
		}
	}
}

// Killing a node's corosync: the others see it leave with reason nodedown
// and in cman's left list, keep quorum, and see it back after start.
func TestKillNode(t *testing.T) {
	up(t, 3)
	ws := watchAll(t, 3, uniqueGroup(t))
	marks := []int{ws[0].mark(), ws[1].mark()}

	cluster(t, "kill", "node3")
	expectNodeDown(t, ws[:2], marks, 3, []uint32{1, 2})
	// The probe on node3 lost its corosync.
	ws[2].waitFor(0, changeTimeout, "lost corosync", func(e Event) bool { return e.Kind == KindLost })
	for _, node := range []int{1, 2} {
		waitStatus(t, node, "quorum with members [1 2]", func(s Status) bool {
			return s.Quorate && slices.Equal(s.Members, []uint32{1, 2})
		})
	}

	cluster(t, "start", "node3")
	for _, w := range ws[:2] {
		w.waitFor(marks[w.node-1], changeTimeout, "cman membership with node 3 joined", func(e Event) bool {
			return e.Kind == KindMembership && slices.Contains(e.NodesJoined, 3) && slices.Equal(sorted(e.Nodes), nodeRange(1, 3))
		})
	}
	waitStatus(t, 3, "quorum with all three members", func(s Status) bool {
		return s.Quorate && slices.Equal(s.Members, nodeRange(1, 3))
	})
}

// Freezing a node for longer than the token timeout looks like a node
// failure to the others; after the thaw it merges back, its process still
// in the group.
func TestPauseNode(t *testing.T) {
	up(t, 3)
	ws := watchAll(t, 3, uniqueGroup(t))
	marks := []int{ws[0].mark(), ws[1].mark()}
	ready, _ := ws[2].waitFor(0, readyTimeout, "ready", func(e Event) bool { return e.Kind == KindReady })
	probe3 := *ready.From

	cluster(t, "pause", "node3")
	expectNodeDown(t, ws[:2], marks, 3, []uint32{1, 2})
	after := []int{ws[0].mark(), ws[1].mark()}
	cluster(t, "unpause", "node3")

	for i, w := range ws[:2] {
		w.waitFor(after[i], changeTimeout, "cman membership with node 3 back", func(e Event) bool {
			return e.Kind == KindMembership && slices.Contains(e.NodesJoined, 3) && slices.Equal(sorted(e.Nodes), nodeRange(1, 3))
		})
		cc, _ := w.waitFor(after[i], changeTimeout, "confchg with node 3 back in the group", func(e Event) bool {
			return e.Kind == KindConfChg && slices.ContainsFunc(e.Joined, func(p Proc) bool { return p.NodeID == 3 })
		})
		if !hasProc(cc.Joined, 3, "nodeup") {
			t.Errorf("node%d: node 3 came back with %+v, want reason nodeup", w.node, cc.Joined)
		}
		if !slices.Contains(cc.Members, probe3) {
			t.Errorf("node%d: group members %+v after the thaw lack node 3's probe %+v", w.node, cc.Members, probe3)
		}
	}
	waitStatus(t, 3, "quorum with all three members", func(s Status) bool {
		return s.Quorate && slices.Equal(s.Members, nodeRange(1, 3))
	})
}

// Partition 1|2: the pair keeps quorum, the single node loses it; after the
// heal they merge into one quorate cluster.
func TestPartition(t *testing.T) {
	up(t, 3)
	ws := watchAll(t, 3, uniqueGroup(t))
	marks := []int{ws[0].mark(), ws[1].mark(), ws[2].mark()}

	cluster(t, "partition", "node1")
	ws[0].waitFor(marks[0], changeTimeout, "quorum lost", func(e Event) bool {
		return e.Kind == KindQuorum && !e.Quorate
	})
	m, _ := ws[0].waitFor(marks[0], changeTimeout, "cman membership without nodes 2 and 3", func(e Event) bool {
		return e.Kind == KindMembership && len(e.NodesLeft) > 0
	})
	if !slices.Equal(sorted(m.NodesLeft), []uint32{2, 3}) || !slices.Equal(m.Nodes, []uint32{1}) {
		t.Errorf("node1: cman membership left %v members %v, want left [2 3] members [1]", m.NodesLeft, m.Nodes)
	}
	expectNodeDown(t, ws[1:], marks[1:], 1, []uint32{2, 3})
	for _, w := range ws[1:] {
		st := waitStatus(t, w.node, "membership [2 3]", func(s Status) bool { return slices.Equal(s.Members, []uint32{2, 3}) })
		if !st.Quorate {
			t.Errorf("node%d: the pair lost quorum", w.node)
		}
		for _, e := range w.since(marks[w.node-1]) {
			if e.Kind == KindQuorum && !e.Quorate {
				t.Errorf("node%d: reported quorum lost at %v", w.node, e.Time)
			}
		}
	}
	if st, err := status(t, 1); err != nil || st.Quorate {
		t.Errorf("node1 alone: status %+v, %v; want not quorate", st, err)
	}

	after := []int{ws[0].mark(), ws[1].mark(), ws[2].mark()}
	cluster(t, "heal")
	ws[0].waitFor(after[0], changeTimeout, "quorum regained", func(e Event) bool {
		return e.Kind == KindQuorum && e.Quorate
	})
	for i, w := range ws {
		w.waitFor(after[i], changeTimeout, "cman membership of all three", func(e Event) bool {
			return e.Kind == KindMembership && slices.Equal(sorted(e.Nodes), nodeRange(1, 3))
		})
		w.waitFor(after[i], changeTimeout, "confchg with all three in the group", func(e Event) bool {
			return e.Kind == KindConfChg && slices.Equal(procNodes(e.Members), nodeRange(1, 3))
		})
		waitStatus(t, w.node, "quorum with all three members", func(s Status) bool {
			return s.Quorate && slices.Equal(s.Members, nodeRange(1, 3))
		})
	}
}

// An 8-node cluster forms, and three nodes failing at once are reported to
// the survivors as one change, in cpg and in cman.
func TestEightNodesLoseThree(t *testing.T) {
	const n = 8
	up(t, n)
	ws := watchAll(t, n, uniqueGroup(t))
	survivors := ws[:5]
	marks := make([]int, len(survivors))
	for i, w := range survivors {
		marks[i] = w.mark()
	}

	cluster(t, "kill", "6", "7", "8")
	lost := []uint32{6, 7, 8}
	for i, w := range survivors {
		// The first change after the kill must already hold all three.
		cc, _ := w.waitFor(marks[i], changeTimeout, "confchg with nodes left", func(e Event) bool {
			return e.Kind == KindConfChg && len(e.Left) > 0
		})
		if !slices.Equal(procNodes(cc.Left), lost) {
			t.Errorf("node%d: first confchg after the kill has left %+v, want nodes %v in one change", w.node, cc.Left, lost)
		}
		for _, p := range cc.Left {
			if p.Reason != "nodedown" {
				t.Errorf("node%d: node %d left with reason %s, want nodedown", w.node, p.NodeID, p.Reason)
			}
		}
		m, _ := w.waitFor(marks[i], changeTimeout, "cman membership with nodes left", func(e Event) bool {
			return e.Kind == KindMembership && len(e.NodesLeft) > 0
		})
		if !slices.Equal(sorted(m.NodesLeft), lost) || !slices.Equal(sorted(m.Nodes), nodeRange(1, 5)) {
			t.Errorf("node%d: first cman membership after the kill has left %v members %v, want left %v members [1..5]", w.node, m.NodesLeft, m.Nodes, lost)
		}
	}
	waitStatus(t, 1, "quorate membership [1..5]", func(s Status) bool {
		return s.Quorate && slices.Equal(s.Members, nodeRange(1, 5))
	})
}
