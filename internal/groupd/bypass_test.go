package groupd

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBypassTable(t *testing.T) {
	tests := []struct {
		cman, group, hello bool
		allowed            bool
		reason             string
	}{
		{cman: true, group: true, hello: true, allowed: true, reason: "may skip fencing"},
		{cman: true, group: true, hello: false, reason: "has not announced itself"},
		{cman: true, group: false, hello: true, reason: "not in the groupd group"},
		{cman: true, group: false, hello: false, reason: "not in the groupd group"},
		{cman: false, group: true, hello: true, reason: "not a cluster member"},
		{cman: false, group: true, hello: false, reason: "not a cluster member"},
		{cman: false, group: false, hello: true, reason: "not a cluster member"},
		{cman: false, group: false, hello: false, reason: "not a cluster member"},
	}
	for _, tt := range tests {
		h := newHarness(t, true)
		cluster := []uint32{1}
		if tt.cman {
			cluster = append(cluster, 2)
		}
		h.nodes(cluster...)
		h.join(us, ourPID)
		h.sayHello(us, ourPID)
		if tt.group || tt.hello {
			h.join(2, pidOf(2))
		}
		if tt.hello {
			h.sayHello(2, pidOf(2))
		}
		if !tt.group && tt.hello {
			// it said hello, then left the group cleanly: the hello
			// belonged to that membership only
			h.leave(2, pidOf(2), ReasonLeave)
		}
		s := h.snap()
		ok, reason := s.Bypass(2)
		if ok != tt.allowed || !strings.Contains(reason, tt.reason) {
			t.Errorf("cman=%v group=%v hello=%v: Bypass = %v %q, want %v and %q",
				tt.cman, tt.group, tt.hello, ok, reason, tt.allowed, tt.reason)
		}
		d := s.BypassDetail(2)
		if !d.Known || d.ClusterMember != tt.cman || d.GroupMember != tt.group || d.Hello != (tt.group && tt.hello) {
			t.Errorf("cman=%v group=%v hello=%v: detail %+v", tt.cman, tt.group, tt.hello, d)
		}
		if len(s.Recovery) != 0 {
			t.Errorf("cman=%v group=%v hello=%v: unexpected sets %+v", tt.cman, tt.group, tt.hello, s.Recovery)
		}
	}
}

// Without its own full view the daemon cannot vouch for anyone.
func TestBypassUnknownView(t *testing.T) {
	tests := []struct {
		name   string
		script func(h *harness)
		reason string
	}{
		{"before any cluster membership", func(h *harness) {
			h.join(us, ourPID)
			h.join(2, pidOf(2))
			h.sayHello(2, pidOf(2))
		}, "no cluster membership yet"},
		{"before we joined the group", func(h *harness) {
			h.nodes(1, 2)
			h.join(2, pidOf(2))
		}, "not in the groupd group, so it cannot tell"},
		{"node id 0", func(h *harness) {
			h.up([]uint32{1, 2}, 1, 2)
		}, "not a node"},
	}
	for _, tt := range tests {
		h := newHarness(t, true)
		tt.script(h)
		node := uint32(2)
		if tt.name == "node id 0" {
			node = 0
		}
		d := h.snap().BypassDetail(node)
		if d.Allowed || d.Known || !strings.Contains(d.Reason, tt.reason) {
			t.Errorf("%s: %+v, want not allowed, not known, reason %q", tt.name, d, tt.reason)
		}
	}
}

func TestBypassRefusedWhilePendingSet(t *testing.T) {
	h := newHarness(t, false)
	h.up([]uint32{1, 2}, 1, 2)
	// node 2's groupd died; killing is off, so node 2 stays in the cluster
	h.leave(2, pidOf(2), ReasonProcDown)
	// the same pid cannot come back, but another run on node 2 that is
	// in the group without a hello must not count
	h.join(2, 4242)
	if ok, _ := h.snap().Bypass(2); ok {
		t.Error("bypass allowed with a pending set and no hello")
	}
	h.sayHello(2, 4242) // a clean start closes the set
	if ok, why := h.snap().Bypass(2); !ok {
		t.Errorf("bypass after a clean restart of node 2's groupd refused: %s", why)
	}
}

// A node that merges back after a partition (cpg reason nodeup) may hold
// dlm/gfs state from before it; its hellos, which members re-send on every
// confchg with joiners, must not vouch for it until it leaves and rejoins.
func TestMergedBackNodeNotBypassable(t *testing.T) {
	tests := []struct {
		name   string
		script func(h *harness)
	}{
		{"its set was already acked", func(h *harness) {
			h.up([]uint32{1, 2}, 1, 2)
			h.leave(2, pidOf(2), ReasonNodeDown)
			h.nodes(1)
			if _, err := h.m.Ack(2); err != nil {
				t.Fatal(err)
			}
			h.wantSets()
			h.nodes(1, 2)
			h.joinWith(2, pidOf(2), ReasonNodeUp)
			h.sayHello(2, pidOf(2))
		}},
		{"we started during the partition", func(h *harness) {
			h.up([]uint32{1}, 1)
			h.nodes(1, 2)
			h.joinWith(2, pidOf(2), ReasonNodeUp)
			h.sayHello(2, pidOf(2))
		}},
		{"a new run started during the partition", func(h *harness) {
			h.up([]uint32{1, 2}, 1, 2)
			h.leave(2, pidOf(2), ReasonNodeDown)
			h.nodes(1)
			h.nodes(1, 2)
			h.joinWith(2, 3002, ReasonNodeUp)
			h.sayHelloStart(2, 3002, t0.Add(time.Minute))
			h.wantSets("2:waiting-for-fencing")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, true)
			tt.script(h)
			d := h.snap().BypassDetail(2)
			why := "merged back"
			if d.PendingRecovery {
				why = "pending recovery set"
			}
			if d.Allowed || !d.Known || !d.Merged || d.Hello || !strings.Contains(d.Reason, why) {
				t.Fatalf("merged-back node 2: %+v, want refused because it merged back", d)
			}
			for _, m := range h.snap().Members {
				if m.NodeID == 2 && (m.JoinReason != ReasonNodeUp || !m.StaleHello) {
					t.Errorf("member %+v: want join reason nodeup and its hello shown as not counted", m)
				}
			}
			// The hello is sent again on every confchg with joiners.
			h.join(4, pidOf(4))
			h.sayHello(2, h.snap().Members[1].PID)
			if ok, _ := h.snap().Bypass(2); ok {
				t.Fatal("a repeated hello made the merged-back node bypassable")
			}

			// Its groupd restarts: it leaves, and joins by cpg_join.
			old := h.snap().Members[1].PID
			h.leave(2, old, ReasonLeave)
			h.join(2, 5002)
			h.sayHelloStart(2, 5002, t0.Add(time.Hour))
			if ok, why := h.snap().Bypass(2); !ok {
				t.Errorf("after a clean restart of node 2's groupd: bypass refused: %s", why)
			}
			h.wantSets()
		})
	}
}

// Members that were there before we joined carry no join reason; their
// hello counts as before.
func TestMembersBeforeUsAreVouchedByHello(t *testing.T) {
	h := newHarness(t, true)
	h.nodes(1, 2)
	h.join(2, pidOf(2))
	h.join(us, ourPID) // node 2 is listed, not in Joined
	for _, m := range h.snap().Members {
		if m.NodeID == 2 && m.JoinReason != ReasonJoin {
			t.Errorf("member %+v, want the join reason it joined with", m)
		}
	}
	h.sayHello(2, pidOf(2))
	if ok, why := h.snap().Bypass(2); !ok {
		t.Errorf("bypass refused: %s", why)
	}

	// As seen by a daemon that joins after node 2: no reason known.
	h = newHarness(t, true)
	h.nodes(1, 2)
	h.members = []Member{{NodeID: 2, PID: pidOf(2)}}
	h.join(us, ourPID)
	h.sayHello(2, pidOf(2))
	if ok, why := h.snap().Bypass(2); !ok {
		t.Errorf("member present when we joined: bypass refused: %s", why)
	}
}

// The machine closes a set by the same rule the queries use: without its
// own group view it cannot tell that a node is back with a clean start.
func TestSetNotClosedWithoutOurGroupView(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonNodeDown)
	h.nodes(1)
	h.nodes(1, 2)
	// we drop out of the group in the same confchg that brings node 2 back
	h.members = []Member{{NodeID: 2, PID: 3002}}
	h.handle(GroupConfChg{
		Members: slices.Clone(h.members),
		Left:    []Member{{NodeID: us, PID: ourPID, Reason: ReasonLeave}},
		Joined:  []Member{{NodeID: 2, PID: 3002, Reason: ReasonJoin}},
	})
	h.sayHelloStart(2, 3002, t0.Add(time.Hour))
	h.wantSets("2:waiting-for-fencing")
	if d := h.snap().BypassDetail(2); d.Allowed || d.Known {
		t.Errorf("bypass while we are not in the group: %+v", d)
	}
}

// When our side was not quorate before a merge, the nodes merging in are
// the side that held the cluster: their groupd runs count as announced
// once they say hello, whichever of cpg and cman reports the merge first.
// (Nodes booting together, or a lone survivor meeting the others again.)
func TestMergeIntoInquorateSideCounts(t *testing.T) {
	for _, cpgFirst := range []bool{false, true} {
		t.Run(map[bool]string{false: "cman first", true: "cpg first"}[cpgFirst], func(t *testing.T) {
			h := newHarness(t, true)
			h.nodesQuorate(false, 1)
			h.join(us, ourPID)
			h.sayHello(us, ourPID)
			if cpgFirst {
				h.joinWith(2, pidOf(2), ReasonNodeUp)
				h.nodes(1, 2)
			} else {
				h.nodes(1, 2)
				h.joinWith(2, pidOf(2), ReasonNodeUp)
			}
			h.sayHello(2, pidOf(2))
			if ok, why := h.snap().Bypass(2); !ok {
				t.Fatalf("node 2 merged into our inquorate side and said hello: refused (%s)", why)
			}
			// From then on we are the quorate side: a later merge of
			// node 3 is one from outside it.
			h.nodes(1, 2, 3)
			h.joinWith(3, pidOf(3), ReasonNodeUp)
			h.sayHello(3, pidOf(3))
			if ok, _ := h.snap().Bypass(3); ok {
				t.Fatal("node 3 merged into our quorate side and may bypass")
			}
		})
	}
}

// A partition leaves us alone and not quorate while nodes 2 and 3 keep
// the cluster; we open sets for them. When they merge back as the same
// runs, theirs was the side that could act: our sets for them close and
// they may bypass fencing once they say hello, so that a fence tool on our
// node does not fence the side that held quorum.
func TestMergeFromQuorateSideClosesOurSets(t *testing.T) {
	for _, cpgFirst := range []bool{false, true} {
		t.Run(map[bool]string{false: "cman first", true: "cpg first"}[cpgFirst], func(t *testing.T) {
			h := newHarness(t, true)
			h.up([]uint32{1, 2, 3}, 1, 2, 3)
			h.leave(2, pidOf(2), ReasonNodeDown)
			h.leave(3, pidOf(3), ReasonNodeDown)
			h.nodesQuorate(false, 1)
			h.quorumNotice(false) // corosync's word for the ring they left in
			h.wantSets("2:waiting-for-fencing", "3:waiting-for-fencing")
			if cpgFirst {
				h.joinWith(2, pidOf(2), ReasonNodeUp)
				h.joinWith(3, pidOf(3), ReasonNodeUp)
				h.nodes(1, 2, 3)
			} else {
				h.nodes(1, 2, 3)
				h.joinWith(2, pidOf(2), ReasonNodeUp)
				h.joinWith(3, pidOf(3), ReasonNodeUp)
			}
			h.sayHello(2, pidOf(2)) // the same runs that we saw fail
			h.sayHello(3, pidOf(3))
			h.wantSets()
			for _, id := range []uint32{2, 3} {
				if ok, why := h.snap().Bypass(id); !ok {
					t.Errorf("node %d of the quorate side merged back: refused (%s)", id, why)
				}
			}
			closed := h.snap().Closed
			if len(closed) != 2 || closed[0].State != StateQuorateSide || closed[1].State != StateQuorateSide {
				t.Errorf("closed sets %+v, want two closed as quorate-side", closed)
			}
		})
	}
}

// A daemon that starts after node 3 merged back as the run that failed
// hears node 3's hello like anyone's; node 2's daemon, which saw the
// merge, says in its own hello that it distrusts that run. Either order,
// the new daemon then does not vouch for node 3 (and still does for 2).
func TestDistrustedRunIsNotVouchedFor(t *testing.T) {
	for _, distrustFirst := range []bool{false, true} {
		t.Run(map[bool]string{false: "its hello first", true: "distrust first"}[distrustFirst], func(t *testing.T) {
			h := newHarness(t, true)
			h.nodes(1, 2, 3)
			h.members = []Member{{NodeID: 2, PID: pidOf(2)}, {NodeID: 3, PID: pidOf(3)}}
			h.join(us, ourPID)
			start3 := t0.Add(-3 * time.Hour) // as sayHello gives it
			fromTwo := Hello{Version: 2, NodeID: 2, Start: t0.Add(-2 * time.Hour),
				Distrusted: []Run{{NodeID: 3, PID: pidOf(3), Start: start3}}}
			if distrustFirst {
				h.handle(GroupMessage{NodeID: 2, PID: pidOf(2), Data: fromTwo.Marshal()})
				h.sayHello(3, pidOf(3))
			} else {
				h.sayHello(3, pidOf(3))
				h.handle(GroupMessage{NodeID: 2, PID: pidOf(2), Data: fromTwo.Marshal()})
			}
			if ok, _ := h.snap().Bypass(3); ok {
				t.Error("node 3, distrusted by node 2's daemon, may bypass fencing")
			}
			if ok, why := h.snap().Bypass(2); !ok {
				t.Errorf("node 2 refused: %s", why)
			}
			// We pass it on to whoever joins after us.
			h.join(4, pidOf(4))
			sent, err := ParseHello(h.hello.sent[len(h.hello.sent)-1])
			if err != nil || !reflect.DeepEqual(sent.Distrusted, []Run{{NodeID: 3, PID: pidOf(3), Start: start3}}) {
				t.Errorf("our hello %+v, %v: want node 3's run distrusted", sent, err)
			}
		})
	}
}

// A daemon that has just joined cannot tell about any node until every
// member that was in the group before it has announced itself: any of
// them may distrust a run (it saw it merge back) and says so only in its
// hello. Here node 3's hello comes first; node 2's, which would name node
// 3's run if node 2 distrusted it, comes later, or node 2 goes without one.
func TestWaitsForEarlierMembersHellos(t *testing.T) {
	for _, twoLeaves := range []bool{false, true} {
		t.Run(map[bool]string{false: "node 2 announces itself", true: "node 2 leaves"}[twoLeaves], func(t *testing.T) {
			h := newHarness(t, true)
			h.nodes(1, 2, 3)
			h.members = []Member{{NodeID: 2, PID: pidOf(2)}, {NodeID: 3, PID: pidOf(3)}}
			h.join(us, ourPID)
			h.sayHello(us, ourPID)
			h.sayHello(3, pidOf(3))
			for _, id := range []uint32{us, 3} {
				c := h.snap().BypassDetail(id)
				if c.Allowed || c.Known || !strings.Contains(c.Reason, "waits for the hellos of 1 member") {
					t.Errorf("node %d before node 2's hello: %+v, want could not tell", id, c)
				}
			}
			if twoLeaves {
				h.leave(2, pidOf(2), ReasonLeave)
			} else {
				h.sayHello(2, pidOf(2))
				if ok, why := h.snap().Bypass(2); !ok {
					t.Errorf("node 2 refused: %s", why)
				}
			}
			for _, id := range []uint32{us, 3} {
				if ok, why := h.snap().Bypass(id); !ok {
					t.Errorf("node %d refused once node 2 spoke or left: %s", id, why)
				}
			}
			// Members that join after us are not waited for.
			h.join(4, pidOf(4))
			if ok, why := h.snap().Bypass(3); !ok {
				t.Errorf("node 3 refused while a later member has not spoken: %s", why)
			}
		})
	}
}

// A member that was in the group before us and never announces itself (a
// process that is no groupd, say) is waited for helloWait, not for ever:
// then the daemon answers again, and says in its log that it does so
// without that member's view.
func TestSilentEarlierMemberGivenUp(t *testing.T) {
	h := newHarness(t, true)
	h.nodes(1, 2, 3)
	h.members = []Member{{NodeID: 2, PID: pidOf(2)}, {NodeID: 3, PID: pidOf(3)}}
	h.join(us, ourPID)
	joined := h.clock.Now()
	h.sayHello(us, ourPID)
	h.sayHello(3, pidOf(3))
	if at, ok := h.m.HelloDeadline(); !ok || !at.Equal(joined.Add(helloWait)) {
		t.Fatalf("HelloDeadline = %v, %v; want %v", at, ok, joined.Add(helloWait))
	}
	h.clock.advance(helloWait - time.Second)
	h.handle(HelloWaitOver{}) // early: changes nothing
	if c := h.snap().BypassDetail(3); c.Known {
		t.Errorf("node 3 before the wait is over: %+v, want could not tell", c)
	}
	h.clock.advance(time.Second)
	h.handle(HelloWaitOver{})
	if ok, why := h.snap().Bypass(3); !ok {
		t.Errorf("node 3 refused once the wait for node 2 is over: %s", why)
	}
	if _, ok := h.m.HelloDeadline(); ok {
		t.Error("still a hello deadline once nobody is waited for")
	}
	warned := false
	for _, n := range h.notices {
		warned = warned || (n.Kind == "hello-missing" && n.NodeID == 2)
	}
	if !warned {
		t.Error("no warning that node 2 was given up on")
	}
}

// A distrusted run that leaves and joins again is a new run: a hello from
// it counts, and distrust of the old run does not carry over.
func TestDistrustEndsWithTheRun(t *testing.T) {
	h := newHarness(t, true)
	h.nodes(1, 2, 3)
	h.members = []Member{{NodeID: 2, PID: pidOf(2)}, {NodeID: 3, PID: pidOf(3)}}
	h.join(us, ourPID)
	distrust := Hello{Version: 2, NodeID: 2, Start: t0, Distrusted: []Run{{NodeID: 3, PID: pidOf(3)}}}.Marshal()
	h.handle(GroupMessage{NodeID: 2, PID: pidOf(2), Data: distrust})
	h.leave(3, pidOf(3), ReasonLeave)
	h.join(3, 3999)
	h.sayHelloStart(3, 3999, t0.Add(time.Minute))
	// The old distrust again (node 2 sends the same hello): about a run
	// that is gone.
	h.handle(GroupMessage{NodeID: 2, PID: pidOf(2), Data: distrust})
	if ok, why := h.snap().Bypass(3); !ok {
		t.Errorf("node 3's new run refused: %s", why)
	}
}

// Node 3 is cut off while we hold quorum: its set must be fenced. Later
// node 2 goes too and we lose quorum, and node 3, alone all along, merges
// back as the same run. We were not quorate just before the merge, but we
// were when node 3 left: we may have recovered its locks, so its set stays
// and it may not bypass fencing.
func TestMergeAfterLosingQuorumKeepsSetOpenedWhileQuorate(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3)
	h.nodes(1, 2)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.wantSets("3:waiting-for-fencing")
	h.nodesQuorate(false, 1)
	h.leave(2, pidOf(2), ReasonNodeDown)
	h.nodes(1, 3)
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	h.sayHello(3, pidOf(3)) // the very run that failed
	if ok, _ := h.snap().Bypass(3); ok {
		t.Error("node 3, gone while we were quorate and never fenced, may skip fencing")
	}
	if s := h.set(3); !s.State.Pending() {
		t.Errorf("node 3's set %+v, want it still pending", s)
	}
}

// Corosync reports a ring's members before its quorum: the set of a node
// gone in the ring where we lost quorum takes the later quorum notice.
func TestQuorumNoticeAfterMembersCounts(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3)
	h.leave(2, pidOf(2), ReasonNodeDown)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.ringMembers(1)      // members first, with the quorum we had
	h.quorumNotice(false) // then the ring's quorum
	h.nodes(1, 2, 3)
	h.joinWith(2, pidOf(2), ReasonNodeUp)
	h.sayHello(2, pidOf(2))
	if ok, why := h.snap().Bypass(2); !ok {
		t.Errorf("node 2 merged back after a partition in which we were not quorate: refused (%s)", why)
	}
}

// The first quorum notice of a ring settles whether we were quorate when
// a node was seen gone in it: quorum lost later in the same ring (a quorum
// device's vote, expected votes raised) came after the node was gone, and
// the same run merging back must still be fenced.
func TestQuorumLostLaterInRingKeepsSet(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3)
	h.leave(2, pidOf(2), ReasonNodeDown)
	h.nodes(1, 3)
	h.quorumNotice(true)  // the ring's own notice: quorate
	h.quorumNotice(false) // later, in the same ring
	h.nodes(1, 2, 3)
	h.joinWith(2, pidOf(2), ReasonNodeUp)
	h.sayHello(2, pidOf(2)) // the very run that failed
	if ok, _ := h.snap().Bypass(2); ok {
		t.Error("node 2, gone while we were quorate, may skip fencing after quorum was lost later in that ring")
	}
	if s := h.set(2); !s.State.Pending() || !s.QuorateWhenGone {
		t.Errorf("node 2's set %+v, want it pending and quorate when gone", s)
	}
}

// Quorum held for a while in the middle of a partition, in the ring the
// node was seen gone in or a later one, was a time our side could act on
// its absence: the same run merging back must be fenced.
func TestQuorateWhileGoneKeepsSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		gone func(h *harness)
	}{
		{"later in the same ring", func(h *harness) {
			h.ringMembers(1, 2)
			h.quorumNotice(false)
			h.quorumNotice(true) // a quorum device's vote
			h.quorumNotice(false)
		}},
		{"in a later ring", func(h *harness) {
			h.ringMembers(1, 2)
			h.quorumNotice(false)
			h.ringMembers(1, 2, 4) // node 4, not in the group, joins our side
			h.quorumNotice(true)
			h.ringMembers(1, 2)
			h.quorumNotice(false)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, true)
			h.up([]uint32{1, 2, 3, 4}, 1, 2, 3)
			h.leave(3, pidOf(3), ReasonNodeDown)
			tc.gone(h)
			h.mergeBackRefused(3, 1, 2, 3, 4)
		})
	}
}

// A group confchg that comes after the ring's quorum notices (the two
// streams are read apart) opens the set with every word of the ring the
// node has been gone in: quorate in any of them counts.
func TestLateConfchgTakesRingsQuorum(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3, 4}, 1, 2, 3)
	h.ringMembers(1, 2, 3) // node 4 gone before its groupd's join reached us
	h.quorumNotice(true)
	h.quorumNotice(false)
	h.joinWith(4, pidOf(4), ReasonJoin)
	h.leave(4, pidOf(4), ReasonNodeDown)
	if s := h.set(4); !s.QuorateWhenGone {
		t.Errorf("node 4's set %+v, want quorate when gone", s)
	}
	h.mergeBackRefused(4, 1, 2, 3, 4)
}

// A group confchg that comes a ring late still counts a quorate notice of
// a ring the node was already out of the cluster in.
func TestLateConfchgEarlierRingQuorate(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3, 4}, 1, 2, 3)
	h.ringMembers(1, 2, 3) // node 4 gone before its groupd's join reached us
	h.quorumNotice(true)
	h.ringMembers(1, 2, 3)
	h.quorumNotice(false)
	h.joinWith(4, pidOf(4), ReasonJoin)
	h.leave(4, pidOf(4), ReasonNodeDown)
	h.mergeBackRefused(4, 1, 2, 3, 4)
}

// The word a ring's members come with is the ring before's: it does not
// make a node that leaves in that ring count as gone while we were
// quorate (here it is this departure that costs us quorum).
func TestCarriedWordNotQuorateWhileGone(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3, 4}, 1, 2, 3)
	h.ringMembers(1, 2)
	h.quorumNotice(false)
	h.leave(3, pidOf(3), ReasonNodeDown) // gone while we are not quorate
	h.ringMembers(1, 2, 3)               // back in the cluster, without its groupd
	h.quorumNotice(true)
	h.ringMembers(1, 2) // gone again, members carry "quorate"
	h.quorumNotice(false)
	if s := h.set(3); s.QuorateWhenGone {
		t.Errorf("node 3's set %+v, want not quorate when gone", s)
	}
}

// Distrust of a run named with its start before we heard its hello waits
// for that hello: the same pid may be a new run.
func TestDistrustBeforeHelloChecksStart(t *testing.T) {
	for _, same := range []bool{true, false} {
		h := newHarness(t, true)
		h.up([]uint32{1, 2, 3}, 1, 2)
		h.joinWith(3, pidOf(3), ReasonJoin)
		distrusted := t0.Add(-5 * time.Hour)
		start := t0.Add(-time.Minute)
		if same {
			start = distrusted
		}
		h.sayHelloDistrusting(2, Run{NodeID: 3, PID: pidOf(3), Start: distrusted})
		h.sayHelloStart(3, pidOf(3), start)
		if ok, why := h.snap().Bypass(3); ok == same {
			t.Errorf("hello of the distrusted run: %v; another run with its pid: %v; bypass %v (%s)", same, !same, ok, why)
		}
	}
}

// A group member whose node we never saw in the cluster counts as out
// since we started: a quorate notice since then counts.
func TestNeverSeenNodeQuorateWhileGone(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3, 4)
	h.quorumNotice(true)
	h.ringMembers(1, 2, 3)
	h.quorumNotice(false)
	h.leave(4, pidOf(4), ReasonNodeDown)
	h.mergeBackRefused(4, 1, 2, 3, 4)
}

// A run another daemon named as distrusted before we heard the run's
// hello is passed on in our hellos, and once its hello shows it is that
// run, announced again: the daemon that told us may have left, and a
// daemon that joined since would not know.
func TestDistrustRelayedBeforeAndAfterHello(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3, 4}, 1, 2)
	h.joinWith(3, pidOf(3), ReasonJoin)
	start := t0.Add(-5 * time.Hour)
	h.sayHelloDistrusting(2, Run{NodeID: 3, PID: pidOf(3), Start: start})
	h.sayHelloDistrusting(2, Run{NodeID: 3, PID: pidOf(3), Start: start}) // said twice
	h.leave(2, pidOf(2), ReasonLeave)
	h.joinWith(4, pidOf(4), ReasonJoin)
	hello, err := ParseHello(h.hello.sent[len(h.hello.sent)-1])
	if err != nil {
		t.Fatal(err)
	}
	if want := []Run{{NodeID: 3, PID: pidOf(3), Start: start}}; !slices.EqualFunc(hello.Distrusted, want, func(a, b Run) bool { return a.NodeID == b.NodeID && a.PID == b.PID && a.Start.Equal(b.Start) }) {
		t.Errorf("our hello for node 4 distrusts %v, want %v", hello.Distrusted, want)
	}
	sent := h.hello.count()
	h.sayHelloStart(3, pidOf(3), start)
	if ok, _ := h.snap().Bypass(3); ok {
		t.Error("the distrusted run may skip fencing")
	}
	if h.hello.count() != sent+1 {
		t.Errorf("%d hellos sent once the run's hello matched, want 1", h.hello.count()-sent)
	}
}

// A quorate notice that comes ahead of its ring's members counts once
// the members come, for the nodes out of that ring.
func TestNoticeAheadOfMembersCounts(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3, 4, 5}, 1, 2, 3)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.ringMembers(1, 2)
	h.quorumNotice(false)
	h.noticeAhead(true)
	h.ringMembers(1, 2, 4, 5)
	h.ringMembers(1, 2)
	h.quorumNotice(false)
	h.mergeBackRefused(3, 1, 2, 3)
}

// The very run that failed, merging back, still passes its distrust on:
// its side may have been quorate while ours was not (a quorum device's
// vote moved), and distrust only ever means more fencing. Our hello on the
// merge, which names runs 3 and 4 and comes back to us before theirs,
// does not keep their hellos from being taken; and they, out while we
// were quorate, stay unvouched.
func TestFailedRunsDistrustApplied(t *testing.T) {
	h := fourNodesUp(t)
	h.ringMembers(1, 2)
	h.quorumNotice(true)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.leave(4, pidOf(4), ReasonNodeDown)
	h.quorumNotice(false) // the quorum device's vote went to the other side
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(true)
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	h.joinWith(4, pidOf(4), ReasonNodeUp)
	for _, n := range []uint32{3, 4} {
		h.sayHelloDistrusting(n, Run{NodeID: 2, PID: pidOf(2), Start: t0.Add(-2 * time.Hour)})
	}
	if ok, why := h.snap().Bypass(2); ok {
		t.Errorf("node 2, distrusted by the side that held quorum after us, may skip fencing: %s", why)
	}
	for _, n := range []uint32{3, 4} {
		if ok, _ := h.snap().Bypass(n); ok {
			t.Errorf("node %d, out while we were quorate, may skip fencing", n)
		}
	}
}

// A quorum notice that comes ahead of its ring's members does not change
// the word of a set of the ring before.
func TestNoticeAheadLeavesEarlierSet(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3, 4, 5}, 1, 2, 3)
	h.quorumNotice(true)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.ringMembers(1, 2, 4, 5) // carried: quorate; no notice of its own
	h.noticeAhead(false)
	h.ringMembers(1, 2)
	h.quorumNotice(false)
	h.mergeBackRefused(3, 1, 2, 3)
}

// A quorum notice ahead of its ring's members does not change whether we
// were quorate before a merge: members merging into our side that was
// not quorate are from the side that could act, whatever order the
// notice and the members come in.
func TestNoticeAheadDoesNotDecideMerge(t *testing.T) {
	for _, cpgFirst := range []bool{false, true} {
		h := newHarness(t, true)
		h.up([]uint32{1, 2, 3, 4, 5}, 1, 2, 3, 4, 5)
		h.quorumNotice(true)
		h.ringMembers(1, 2)
		h.quorumNotice(false)
		for _, n := range []uint32{3, 4, 5} {
			h.leave(n, pidOf(n), ReasonNodeDown)
		}
		h.noticeAhead(true)
		if !cpgFirst {
			h.ringMembers(1, 2, 3, 4, 5)
		}
		for _, n := range []uint32{3, 4, 5} {
			h.joinWith(n, pidOf(n), ReasonNodeUp)
		}
		if cpgFirst {
			h.ringMembers(1, 2, 3, 4, 5)
		}
		for _, n := range []uint32{3, 4, 5} {
			h.sayHelloDistrusting(n, Run{NodeID: 2, PID: pidOf(2), Start: t0.Add(-2 * time.Hour)})
		}
		if ok, why := h.snap().Bypass(2); ok {
			t.Errorf("cpg first %v: node 2, distrusted by the side that could act, may skip fencing: %s", cpgFirst, why)
		}
	}
}

// A merge that comes before corosync's quorum notice for the ring the node
// left in does not close its set on the word carried over: the notice may
// say we were quorate.
func TestMergeBeforeSettlingNoticeKeepsSet(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3, 4, 5}, 1, 2, 3)
	h.quorumNotice(true)
	h.ringMembers(1, 2, 3)
	h.quorumNotice(false)
	h.ringMembers(1, 2)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.joinWith(3, pidOf(3), ReasonNodeUp) // cpg ahead of cman by a ring
	h.quorumNotice(true)
	h.ringMembers(1, 2, 3)
	h.quorumNotice(true)
	h.sayHello(3, pidOf(3))
	if ok, why := h.snap().Bypass(3); ok {
		t.Errorf("node 3 may skip fencing: %s", why)
	}
}

// A node gone while we were quorate, merged back into our side after we
// lost quorum, and gone again (a flapping network) was still gone once
// while we were quorate: its set stays, and the run must be fenced.
func TestRepeatFailureKeepsQuorateWhenGone(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3)
	h.leave(2, pidOf(2), ReasonNodeDown)
	h.nodes(1, 3)
	h.quorumNotice(true)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.nodesQuorate(false, 1)
	h.quorumNotice(false)
	h.nodesQuorate(false, 1, 2) // 2 merges into our side, which is not quorate
	h.joinWith(2, pidOf(2), ReasonNodeUp)
	h.sayHello(2, pidOf(2))
	if ok, _ := h.snap().Bypass(2); ok {
		t.Fatal("node 2 may skip fencing after its first merge")
	}
	h.leave(2, pidOf(2), ReasonNodeDown) // the network flaps
	h.nodesQuorate(false, 1)
	h.quorumNotice(false)
	h.nodesQuorate(false, 1, 2)
	h.joinWith(2, pidOf(2), ReasonNodeUp)
	h.sayHello(2, pidOf(2))
	if ok, why := h.snap().Bypass(2); ok {
		t.Errorf("node 2, first gone while we were quorate, may skip fencing after failing again: %s", why)
	}
	if s := h.set(2); !s.State.Pending() || !s.QuorateWhenGone || s.Failures < 2 {
		t.Errorf("node 2's set %+v, want it pending, quorate when gone, failed again", s)
	}
}

// Members merging into our side from the side that could act (we were not
// quorate) carry in their hellos the runs of our side they saw fail, and
// the members of our side, in the hellos they send on the merge, the runs
// they hold sets for: until all those hellos come, we can tell about
// nobody.
func TestMergeFromQuorateSideAwaitsHellos(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.nodesQuorate(false, 1, 2) // we are on the side without quorum, with node 2
	h.quorumNotice(false)
	h.nodes(1, 2, 3)
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	if c := h.snap().BypassDetail(2); c.Known {
		t.Errorf("node 2 before the merged member's hello: %+v, want could not tell", c)
	}
	if at, ok := h.m.HelloDeadline(); !ok || !at.Equal(h.clock.Now().Add(helloWait)) {
		t.Errorf("HelloDeadline = %v, %v; want %v", at, ok, h.clock.Now().Add(helloWait))
	}
	// Node 3's side saw node 2 fail with it: node 2 must be fenced.
	h.sayHelloDistrusting(3, Run{NodeID: 2, PID: pidOf(2)})
	if c := h.snap().BypassDetail(3); c.Known {
		t.Errorf("node 3 before node 2's hello on the merge: %+v, want could not tell", c)
	}
	h.sayHello(2, pidOf(2))
	if c := h.snap().BypassDetail(2); !c.Known || c.Allowed {
		t.Errorf("node 2 after node 3's hello distrusting it: %+v, want a known no", c)
	}
	if ok, why := h.snap().Bypass(3); !ok {
		t.Errorf("node 3, from the side that could act, refused: %s", why)
	}
}

// A run we find stale from its own hello (the run that failed, merged
// back) is named in a new hello of ours: a daemon that joined since our
// last hello has no set for it and would otherwise vouch for it.
func TestStaleFromHelloAnnounced(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.nodes(1, 2) // gone while we were quorate: its set stays
	h.nodesQuorate(false, 1, 2)
	h.quorumNotice(false)
	h.nodes(1, 2, 3)
	h.joinWith(3, pidOf(3), ReasonNodeUp) // from the side that could act, as far as we know
	// The hello we sent for the merge names the run our set is for
	// already, before its own hello comes.
	merged, err := ParseHello(h.hello.sent[len(h.hello.sent)-1])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(merged.Distrusted, func(r Run) bool { return r.NodeID == 3 && r.PID == pidOf(3) }) {
		t.Errorf("our hello on the merge distrusts %v, want node 3's run among them", merged.Distrusted)
	}
	sent := h.hello.count()
	h.sayHello(3, pidOf(3)) // the very run that failed
	if ok, _ := h.snap().Bypass(3); ok {
		t.Fatal("the run that failed may skip fencing")
	}
	if h.hello.count() != sent+1 {
		t.Fatalf("%d hellos sent after we found node 3's run stale, want 1", h.hello.count()-sent)
	}
	last, err := ParseHello(h.hello.sent[len(h.hello.sent)-1])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(last.Distrusted, func(r Run) bool { return r.NodeID == 3 && r.PID == pidOf(3) }) {
		t.Errorf("our new hello distrusts %v, want node 3's run among them", last.Distrusted)
	}
}

// A member we hold stale still knows the runs it holds sets for. Node
// 2's daemon holds one for node 3's failed run (we started after that
// failure); node 2's run turns stale here, named by daemons merging in
// from a side that held quorum. Later node 3's failed run merges into our
// side while we are not quorate: we wait for node 2's answer too, and
// take the run it names.
func TestStaleMemberAwaitedOnMergeIntoInquorateSide(t *testing.T) {
	h := newHarness(t, true)
	h.nodes(1, 2, 4, 5)
	h.quorumNotice(true)
	h.members = []Member{{NodeID: 2, PID: pidOf(2)}, {NodeID: 4, PID: pidOf(4)}, {NodeID: 5, PID: pidOf(5)}}
	h.join(us, ourPID)
	for _, n := range []uint32{2, 4, 5} {
		h.sayHello(n, pidOf(n))
	}
	// Nodes 4 and 5 are cut off and hold quorum for a while (a quorum
	// device's vote), then it turns to us; they merge back, stale, and
	// name node 2's run.
	h.ringMembers(1, 2)
	h.quorumNotice(false)
	h.leave(4, pidOf(4), ReasonNodeDown)
	h.leave(5, pidOf(5), ReasonNodeDown)
	h.quorumNotice(true)
	h.ringMembers(1, 2, 4, 5)
	h.quorumNotice(true)
	h.joinWith(4, pidOf(4), ReasonNodeUp)
	h.joinWith(5, pidOf(5), ReasonNodeUp)
	two := Run{NodeID: 2, PID: pidOf(2), Start: t0.Add(-2 * time.Hour)}
	h.sayHelloDistrusting(4, two)
	h.sayHelloDistrusting(5, two)
	if ok, _ := h.snap().Bypass(2); ok {
		t.Fatal("node 2 may bypass fencing after a side that held quorum named it")
	}
	// A partition leaves us with node 2, not quorate; node 3's failed
	// run merges into our side, and node 2's daemon names it.
	h.ringMembers(1, 2)
	h.quorumNotice(false)
	h.leave(4, pidOf(4), ReasonNodeDown)
	h.leave(5, pidOf(5), ReasonNodeDown)
	h.ringMembers(1, 2, 3)
	h.quorumNotice(true)
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	h.sayHello(3, pidOf(3))
	if ok, _ := h.snap().Bypass(3); ok {
		t.Error("node 3 may bypass fencing before node 2's daemon answered the merge")
	}
	h.sayHelloDistrusting(2, Run{NodeID: 3, PID: pidOf(3), Start: t0.Add(-3 * time.Hour)})
	if ok, why := h.snap().Bypass(3); ok {
		t.Errorf("node 3, a failed run node 2's daemon holds a set for, may bypass fencing: %s", why)
	}
}

// Our side (nodes 1 to 3) held quorum all through a partition; nodes 4
// and 5 merge back, stale, and node 4's daemon names our runs: it saw the
// merge before corosync's quorum notice for its own ring, so it still
// took its side for quorate. Its side never was: what it names is not
// taken, and our healthy nodes stay vouched for.
func TestDistrustFromStaleRunIgnoredWhileWeHeldQuorum(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3, 4, 5}, 1, 2, 3, 4, 5)
	h.quorumNotice(true)
	h.ringMembers(1, 2, 3)
	h.quorumNotice(true)
	h.leave(4, pidOf(4), ReasonNodeDown)
	h.leave(5, pidOf(5), ReasonNodeDown)
	h.ringMembers(1, 2, 3, 4, 5)
	h.quorumNotice(true)
	h.joinWith(4, pidOf(4), ReasonNodeUp)
	h.joinWith(5, pidOf(5), ReasonNodeUp)
	h.sayHelloDistrusting(4, Run{NodeID: 2, PID: pidOf(2)}, Run{NodeID: 3, PID: pidOf(3)})
	h.sayHelloDistrusting(5, Run{NodeID: 2, PID: pidOf(2)}, Run{NodeID: 3, PID: pidOf(3)})
	for _, n := range []uint32{2, 3} {
		if ok, why := h.snap().Bypass(n); !ok {
			t.Errorf("node %d of our quorate side refused after a stale run distrusted it: %s", n, why)
		}
	}
	for _, n := range []uint32{4, 5} {
		if ok, _ := h.snap().Bypass(n); ok {
			t.Errorf("merged-back node %d may bypass fencing", n)
		}
	}
}

// fourNodesUp is a harness with nodes 1 to 4 in the cluster, quorate, and
// their daemons in the group, each heard.
func fourNodesUp(t *testing.T) *harness {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3, 4}, 1, 2, 3, 4)
	h.quorumNotice(true)
	return h
}

// mergeNamingNodeTwo has the runs of nodes merge in (nodeup) and their
// daemons' hellos name node 2's run: what the daemons of a side that held
// quorum while node 2 was out of it say.
func (h *harness) mergeNamingNodeTwo(nodes ...uint32) {
	for _, n := range nodes {
		h.joinWith(n, pidOf(n), ReasonNodeUp)
	}
	two := Run{NodeID: 2, PID: pidOf(2), Start: t0.Add(-2 * time.Hour)}
	for _, n := range nodes {
		h.sayHelloDistrusting(n, two)
	}
}

// wantRefused fails the test if node may skip fencing.
func (h *harness) wantRefused(node uint32) {
	h.t.Helper()
	if ok, why := h.snap().Bypass(node); ok {
		h.t.Errorf("node %d may bypass fencing: %s", node, why)
	}
}

// Quorum moves from side to side during a partition: the other side
// (nodes 3 and 4) holds it first, while node 2 is out of it, and then
// ours does (node 5 reboots into our side, or a quorum device turns to
// us), while nodes 3 and 4 are out. Merging into our quorate side, their
// runs are stale, and their hellos name node 2's run, which their side
// could act on: node 2 must be fenced, whichever side held quorum last.
func TestDistrustFromStaleMergedRunTaken(t *testing.T) {
	for _, rebootInto := range []bool{true, false} {
		t.Run(map[bool]string{true: "node 5 reboots into our side", false: "quorum device"}[rebootInto], func(t *testing.T) {
			h := newHarness(t, true)
			all := []uint32{1, 2, 3, 4}
			if rebootInto {
				all = append(all, 5)
			}
			h.up(all, all...)
			h.quorumNotice(true)
			h.ringMembers(1, 2) // the partition: the other side holds quorum
			h.quorumNotice(false)
			for _, n := range all[2:] {
				h.leave(n, pidOf(n), ReasonNodeDown)
			}
			if rebootInto {
				h.ringMembers(1, 2, 5) // node 5 left the other side and rebooted into ours
				h.quorumNotice(true)
				h.join(5, 7005)
				h.sayHelloStart(5, 7005, t0) // a fresh run: its set closes
			} else {
				h.quorumNotice(true) // the quorum device's vote turns to us
			}
			h.ringMembers(all...)
			h.quorumNotice(true)
			h.mergeNamingNodeTwo(3, 4)
			for _, n := range []uint32{2, 3, 4} {
				h.wantRefused(n)
			}
			if ok, why := h.snap().Bypass(1); !ok {
				t.Errorf("we may not bypass fencing: %s", why)
			}
		})
	}
}

// Node 3 was cut off while our side was quorate; node 2's daemon, not
// ours, holds its recovery set (we started after). We lose quorum, and
// node 3 merges back as the run that failed. We were not quorate just
// before the merge, but were while node 3 was out: its run must not be
// vouched for on its own hello, before node 2's hello names it, whichever
// of cpg and cman reports the merge first.
func TestMergeAfterQuorateAbsenceNotVouched(t *testing.T) {
	for _, cpgFirst := range []bool{false, true} {
		t.Run(map[bool]string{false: "cman first", true: "cpg first"}[cpgFirst], func(t *testing.T) {
			h := newHarness(t, true)
			h.nodes(1, 2, 4, 5) // five nodes; node 3 already gone
			h.quorumNotice(true)
			h.members = []Member{{NodeID: 2, PID: pidOf(2)}}
			h.join(us, ourPID)
			h.sayHello(us, ourPID)
			h.sayHello(2, pidOf(2))
			h.ringMembers(1, 2) // nodes 4 and 5 go: we lose quorum
			h.quorumNotice(false)
			if cpgFirst {
				h.joinWith(3, pidOf(3), ReasonNodeUp)
				h.ringMembers(1, 2, 3)
				h.quorumNotice(true)
			} else {
				h.ringMembers(1, 2, 3)
				h.quorumNotice(true)
				h.joinWith(3, pidOf(3), ReasonNodeUp)
			}
			h.sayHello(3, pidOf(3))
			if ok, why := h.snap().Bypass(3); ok {
				t.Errorf("node 3, out of the cluster while we were quorate, merged back and may skip fencing: %s", why)
			}
			h.sayHelloDistrusting(2, Run{NodeID: 3, PID: pidOf(3), Start: t0.Add(-3 * time.Hour)})
			if ok, _ := h.snap().Bypass(3); ok {
				t.Error("node 3 may skip fencing after node 2's daemon named it")
			}
		})
	}
}

// A node fenced while our side was quorate boots, its corosync first forms
// a ring of its own (with another rebooted node, quorate there), its new
// groupd joins the group there, and the ring merges into ours, which by
// then had lost quorum: its run merges in (nodeup), fresh, and is vouched
// for on its hello. (Being quorate at some time while the node was out is
// not enough to distrust a merging run: that run may have started after,
// as here. A run that failed in such a partition is named by the daemons
// that hold its set, whose hellos we await on the merge.)
func TestFreshRunMergingAfterQuorateAbsenceIsVouched(t *testing.T) {
	h := newHarness(t, true)
	h.nodes(1, 2) // node 3 is down; we start with node 2, quorate
	h.quorumNotice(true)
	h.join(us, ourPID)
	h.ringMembers(1) // node 2 fences itself (residual state): we lose quorum
	h.quorumNotice(false)
	h.ringMembers(1, 2, 3) // nodes 2 and 3 rebooted, together, and merge in
	h.quorumNotice(true)
	h.joinWith(2, 3002, ReasonNodeUp)
	h.joinWith(3, 3003, ReasonNodeUp)
	h.sayHelloStart(2, 3002, t0)
	h.sayHelloStart(3, 3003, t0)
	for _, n := range []uint32{2, 3} {
		if ok, why := h.snap().Bypass(n); !ok {
			t.Errorf("node %d, booted and merged in with a fresh groupd, refused: %s", n, why)
		}
	}
}

// A node that was out of the cluster while we were quorate and comes back
// with a new groupd run that joins the group by a cpg join (it rebooted)
// has not merged back: its hello counts.
func TestRebootedNodeJoiningAfterQuorateAbsenceIsVouched(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3)
	h.quorumNotice(true)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.ringMembers(1, 2)
	h.quorumNotice(true)
	if _, err := h.m.Ack(3); err != nil {
		t.Fatal(err)
	}
	h.ringMembers(1, 2, 3)
	h.quorumNotice(true)
	h.join(3, 4003)
	h.sayHelloStart(3, 4003, t0)
	if ok, why := h.snap().Bypass(3); !ok {
		t.Errorf("node 3's new run, joined by a cpg join, refused: %s", why)
	}
}

// Every failed run of a set is recorded, not only the first. Node 2's run
// A fails while we are quorate; node 2 reboots, and its run B, started
// alone, merges into our quorate side (stale) and is cut off again. After
// we lose quorum, B merges back into our side and says hello as the same
// run: it is a run that failed, not a clean start, whether or not a
// quorum notice said we were quorate while B was out.
func TestEveryFailedRunOfASetStaysFailed(t *testing.T) {
	startB := t0.Add(time.Minute)
	for _, tc := range []struct {
		name string
		gone func(h *harness) // B is cut off, and we lose quorum
	}{
		{"B cut off while we are quorate", func(h *harness) {
			h.leave(2, 3002, ReasonNodeDown)
			h.ringMembers(1, 3)
			h.quorumNotice(true)
			h.leave(3, pidOf(3), ReasonNodeDown)
			h.ringMembers(1)
			h.quorumNotice(false)
		}},
		{"B cut off as we lose quorum", func(h *harness) {
			h.leave(2, 3002, ReasonNodeDown)
			h.leave(3, pidOf(3), ReasonNodeDown)
			h.ringMembers(1)
			h.quorumNotice(false)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, true)
			h.up([]uint32{1, 2, 3}, 1, 2, 3)
			h.leave(2, pidOf(2), ReasonNodeDown) // run A
			h.ringMembers(1, 3)
			h.quorumNotice(true)
			h.ringMembers(1, 2, 3)
			h.quorumNotice(true)
			h.joinWith(2, 3002, ReasonNodeUp) // run B
			h.sayHelloStart(2, 3002, startB)
			if ok, _ := h.snap().Bypass(2); ok {
				t.Fatal("run B, merged into our quorate side, may skip fencing")
			}
			tc.gone(h)
			wantRuns := []Run{{NodeID: 2, PID: pidOf(2), Start: t0.Add(-2 * time.Hour)}, {NodeID: 2, PID: 3002, Start: startB}}
			if s := h.set(2); !slices.EqualFunc(s.Runs, wantRuns, func(a, b Run) bool { return a.NodeID == b.NodeID && a.PID == b.PID && a.Start.Equal(b.Start) }) {
				t.Errorf("node 2's set records runs %v, want %v", s.Runs, wantRuns)
			}
			h.ringMembers(1, 2)
			h.quorumNotice(true)
			h.joinWith(2, 3002, ReasonNodeUp)
			merged, err := ParseHello(h.hello.sent[len(h.hello.sent)-1])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(merged.Distrusted, func(r Run) bool { return r.PID == 3002 && (r.Start.IsZero() || r.Start.Equal(startB)) }) {
				t.Errorf("our hello on B's merge distrusts %v, want run B among them", merged.Distrusted)
			}
			h.sayHelloStart(2, 3002, startB)
			if ok, why := h.snap().Bypass(2); ok {
				t.Errorf("run B, a failed run of node 2's pending set, merged back and may skip fencing: %s", why)
			}
			if s := h.set(2); !s.State.Pending() {
				t.Errorf("node 2's set %+v, want it pending", s)
			}
		})
	}
}

// A set records at most maxSetRuns failed runs. Past that, any run of the
// node merging back is taken for one that failed: here one unrecorded run
// merges back into our side after we lost quorum and may not skip fencing.
func TestFailedRunsPastCapTakeMergedRunsForFailed(t *testing.T) {
	h := newHarness(t, false)
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonProcDown)
	for i := range uint32(maxSetRuns) {
		h.join(2, 5000+i)
		h.leave(2, 5000+i, ReasonProcDown)
	}
	if s := h.set(2); len(s.Runs) != maxSetRuns || s.Failures != maxSetRuns+1 {
		t.Fatalf("set after %d failed runs: %d runs recorded, %d failures; want %d recorded", maxSetRuns+1, len(s.Runs), s.Failures, maxSetRuns)
	}
	h.join(2, 6000)
	h.ringMembers(1) // node 2 cut off while we are quorate
	h.leave(2, 6000, ReasonNodeDown)
	h.nodesQuorate(false, 1)
	h.nodesQuorate(false, 1, 2)
	h.joinWith(2, 6000, ReasonNodeUp)
	h.sayHelloStart(2, 6000, t0)
	if ok, why := h.snap().Bypass(2); ok {
		t.Errorf("an unrecorded failed run of node 2 merged back and may skip fencing: %s", why)
	}
	h.wantSets("2:waiting-for-fencing")
}

// TestFailedRunsDistrustApplied with no recovery set of ours: node 3 was
// cut off before we started, in a cluster of three nodes and a quorum
// disk. Our hello on the merge, delivered back to us first, names node
// 3's run with no start (it was out while we were quorate); that may not
// make it stale before its own hello, whose distrust still counts.
func TestOwnHelloLeavesMergedRunsDistrustCounting(t *testing.T) {
	h := newHarness(t, true)
	h.nodes(1, 2)
	h.quorumNotice(true)
	h.members = []Member{{NodeID: 2, PID: pidOf(2)}}
	h.join(us, ourPID)
	h.sayHello(us, ourPID)
	h.sayHello(2, pidOf(2))
	h.quorumNotice(false) // the quorum disk's vote goes to node 3's side
	h.ringMembers(1, 2, 3)
	h.quorumNotice(true)
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	h.sayHello(2, pidOf(2))
	h.sayHelloDistrusting(3, Run{NodeID: 2, PID: pidOf(2), Start: t0.Add(-2 * time.Hour)})
	if ok, why := h.snap().Bypass(2); ok {
		t.Errorf("node 2, distrusted by node 3's quorate side, may skip fencing: %s", why)
	}
}

// Our daemon started while node 3 was cut off and our side had already
// lost quorum, so we cannot know node 3 was out while the cluster was
// quorate; node 2's daemon holds its set and names its run in the hello
// it sends on the merge. Until that hello comes, we can tell about
// nobody, node 3 included.
func TestMergeIntoInquorateSideAwaitsOurSidesHellos(t *testing.T) {
	h := newHarness(t, true)
	h.joinBesideNodeTwo()
	h.sayHello(us, ourPID)
	h.sayHello(2, pidOf(2))
	h.clock.advance(time.Hour) // node 2 was awaited once, long ago
	h.ringMembers(1, 2, 3)
	h.quorumNotice(true)
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	h.sayHello(3, pidOf(3))
	if c := h.snap().BypassDetail(3); c.Known {
		t.Errorf("node 3 before node 2's hello on the merge: %+v, want could not tell", c)
	}
	if at, ok := h.m.HelloDeadline(); !ok || !at.Equal(h.clock.Now().Add(helloWait)) {
		t.Errorf("HelloDeadline = %v, %v; want helloWait from the merge, %v", at, ok, h.clock.Now().Add(helloWait))
	}
	h.sayHelloDistrusting(2, Run{NodeID: 3, PID: pidOf(3), Start: t0.Add(-3 * time.Hour)}) // node 3's start
	if ok, why := h.snap().Bypass(3); ok {
		t.Errorf("node 3, named by node 2's daemon, may skip fencing: %s", why)
	}
}

// Corosync delivers one confchg per merging process, back to back. Node
// 2's hello on the confchg of node 3 was written before it saw node 4, so
// it cannot name node 4's failed run, which node 2's daemon holds a set
// for: it does not end our wait for node 2 (version 3 hellos list the
// members their writer saw), and node 4 is not vouched for until node 2's
// hello written having seen it comes.
func TestHelloWrittenBeforeLaterJoinerKeepsWait(t *testing.T) {
	h := newHarness(t, true)
	h.joinBesideNodeTwo()
	h.sayHello(2, pidOf(2))
	h.clock.advance(time.Hour)
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(true)
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	sawThree := slices.Clone(h.members)
	h.joinWith(4, pidOf(4), ReasonNodeUp)
	h.sayHelloSaw(2, sawThree) // on the confchg of node 3
	h.sayHello(3, pidOf(3))
	h.sayHello(4, pidOf(4))
	if c := h.snap().BypassDetail(4); c.Known {
		t.Errorf("node 4 before node 2's hello written having seen it: %+v, want could not tell", c)
	}
	h.sayHelloDistrusting(2, Run{NodeID: 4, PID: pidOf(4), Start: t0.Add(-4 * time.Hour)})
	if c := h.snap().BypassDetail(4); !c.Known || c.Allowed {
		t.Errorf("node 4 after node 2's hello naming it: %+v, want a known no", c)
	}
	if c := h.snap().BypassDetail(3); !c.Known || !c.Allowed {
		t.Errorf("node 3, from the side that could act, named by nobody: %+v, want allowed", c)
	}
}

// The same from the merging side: node 3, alone on the side that held
// quorum, sees us join and then node 2; its hello on the first cannot name
// node 2, which its side saw fail, and does not end our wait for it.
func TestMergingRunsHelloBeforeItSawAllKeepsWait(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.nodesQuorate(false, 1, 2)
	h.quorumNotice(false)
	h.nodes(1, 2, 3)
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	h.sayHelloSaw(3, []Member{{NodeID: 3, PID: pidOf(3)}, {NodeID: us, PID: ourPID}}) // on our join, as node 3 saw it
	h.sayHello(2, pidOf(2))
	if c := h.snap().BypassDetail(2); c.Known {
		t.Errorf("node 2 before node 3's hello written having seen it: %+v, want could not tell", c)
	}
	h.sayHelloDistrusting(3, Run{NodeID: 2, PID: pidOf(2)})
	if c := h.snap().BypassDetail(2); !c.Known || c.Allowed {
		t.Errorf("node 2, which node 3's side saw fail: %+v, want a known no", c)
	}
}

// A run another daemon names with no start before we hear it stays
// unvouched once its hello comes, also a version 1 hello; after it leaves
// and joins again, even with the same pid, its hello counts.
func TestDistrustAnyStartThenRejoin(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2)
	h.join(3, pidOf(3))
	h.sayHelloDistrusting(2, Run{NodeID: 3, PID: pidOf(3)})
	h.handle(GroupMessage{NodeID: 3, PID: pidOf(3), Data: Hello{Version: 1, NodeID: 3, Start: t0.Add(-3 * time.Hour)}.Marshal()})
	if ok, _ := h.snap().Bypass(3); ok {
		t.Errorf("node 3, distrusted with no start, vouched for after its hello")
	}
	h.leave(3, pidOf(3), ReasonLeave)
	h.join(3, pidOf(3))
	h.sayHello(3, pidOf(3))
	if ok, why := h.snap().Bypass(3); !ok {
		t.Errorf("node 3, rejoined, refused: %s", why)
	}
}

// A merge while a member is already awaited adds to what its hello must
// show but does not restart the wait: merges in quick succession cannot
// keep a silent member (a process in the group that is no groupd)
// awaited beyond helloWait. A daemon of before version 3 ends the wait
// with any hello, as it always did.
func TestAwaitedMemberWaitBounded(t *testing.T) {
	h := newHarness(t, true)
	h.nodesQuorate(false, 1, 2, 5)
	h.quorumNotice(false)
	h.members = []Member{{NodeID: 2, PID: pidOf(2)}, {NodeID: 5, PID: pidOf(5)}}
	h.join(us, ourPID)
	h.sayHello(2, pidOf(2))
	h.sayHello(5, pidOf(5))
	h.ringMembers(1, 2, 3, 5)
	h.quorumNotice(false) // still short of quorum
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	first, ok := h.m.HelloDeadline()
	if !ok || !first.Equal(h.clock.Now().Add(helloWait)) {
		t.Fatalf("HelloDeadline = %v, %v; want helloWait from the merge", first, ok)
	}
	h.sayHello(3, pidOf(3))
	h.sayHello(2, pidOf(2))
	// Node 5 stays silent; node 4 merges too, 20 s later.
	h.clock.advance(20 * time.Second)
	h.ringMembers(1, 2, 3, 4, 5)
	h.quorumNotice(false)
	h.joinWith(4, pidOf(4), ReasonNodeUp)
	if at, ok := h.m.HelloDeadline(); !ok || at.After(first) {
		t.Errorf("HelloDeadline after another merge = %v, %v; want no later than %v", at, ok, first)
	}
	// Node 2 is of an older version: its hello, whatever it saw, ends the
	// wait for it.
	h.handle(GroupMessage{NodeID: 2, PID: pidOf(2), Data: Hello{Version: 2, NodeID: 2, Start: t0.Add(-2 * time.Hour)}.Marshal()})
	for _, mb := range h.snap().Members {
		if mb.NodeID == 2 && mb.Awaited {
			t.Errorf("node 2 still awaited after its version 2 hello")
		}
	}
}

// A member awaited since a merge whose hello for it is held up, when
// another merge comes late in the wait, still gets its time: its older
// hello, arriving after the second merge, shows a live daemon, and the
// wait runs helloWait from that hello rather than ending at the first
// deadline without its answer.
func TestLateMergeLeavesLiveMemberTimeToAnswer(t *testing.T) {
	h := newHarness(t, true)
	h.joinBesideNodeTwo()
	h.sayHello(2, pidOf(2))
	h.ringMembers(1, 2, 3)
	h.quorumNotice(false)
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	sawThree := slices.Clone(h.members)
	h.sayHello(3, pidOf(3))
	h.clock.advance(25 * time.Second) // node 2's answer is held up
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(false)
	h.joinWith(4, pidOf(4), ReasonNodeUp)
	h.sayHelloSaw(2, sawThree) // its answer to node 3's merge, at last
	h.sayHello(4, pidOf(4))
	h.sayHello(3, pidOf(3))
	h.clock.advance(10 * time.Second) // past the first deadline
	h.handle(HelloWaitOver{})
	if c := h.snap().BypassDetail(4); c.Known {
		t.Errorf("node 4 before node 2's answer to its merge: %+v, want could not tell", c)
	}
	h.sayHelloDistrusting(2, Run{NodeID: 4, PID: pidOf(4), Start: t0.Add(-4 * time.Hour)})
	if c := h.snap().BypassDetail(4); !c.Known || c.Allowed {
		t.Errorf("node 4 after node 2's answer naming it: %+v, want a known no", c)
	}
}

// A member whose hellos never answer the wait (they keep coming, each
// written before the latest merge) is given up on twice helloWait after
// the wait began, not kept awaited while merges go on.
func TestLaggingMemberWaitCapped(t *testing.T) {
	h := newHarness(t, true)
	h.joinBesideNodeTwo()
	h.sayHello(2, pidOf(2))
	h.ringMembers(1, 2, 3)
	h.quorumNotice(false)
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	began := h.clock.Now()
	for i := 0; i < 6; i++ {
		stale := slices.Clone(h.members)[:1] // a view that never answers
		h.clock.advance(15 * time.Second)
		h.sayHelloSaw(2, stale)
		h.handle(HelloWaitOver{})
	}
	if at, ok := h.m.HelloDeadline(); ok && at.After(began.Add(2*helloWait)) {
		t.Errorf("HelloDeadline %v, more than twice helloWait after the wait began (%v)", at, began)
	}
	for _, mb := range h.snap().Members {
		if mb.NodeID == 2 && mb.Awaited {
			t.Errorf("node 2 still awaited %v after the wait began", h.clock.Now().Sub(began))
		}
	}
}

// Runs 3 and 4, cut off while we were quorate, merge back after the
// quorum device's vote moved to their side. Their first hellos, written
// on seeing us merge and before seeing node 2, make them stale (they were
// out while we were quorate) without answering our wait; their answers,
// which name node 2's run (their side saw it gone while it held quorum),
// are still taken. With their sets acked (fenced after all) or pending.
func TestStaleByEarlyHelloAnswerStillTaken(t *testing.T) {
	for _, acked := range []bool{false, true} {
		h := fourNodesUp(t)
		h.leave(3, pidOf(3), ReasonNodeDown)
		h.leave(4, pidOf(4), ReasonNodeDown)
		h.ringMembers(1, 2)
		h.quorumNotice(true)
		if acked {
			for _, n := range []uint32{3, 4} {
				if _, err := h.m.Ack(n); err != nil {
					t.Fatal(err)
				}
			}
		}
		h.quorumNotice(false) // the quorum device's vote moves to their side
		h.ringMembers(1, 2, 3, 4)
		h.quorumNotice(true)
		h.joinWith(3, pidOf(3), ReasonNodeUp)
		h.joinWith(4, pidOf(4), ReasonNodeUp)
		sawUs := []Member{{NodeID: 3, PID: pidOf(3)}, {NodeID: 4, PID: pidOf(4)}, {NodeID: us, PID: ourPID}}
		h.sayHelloSaw(3, sawUs)
		h.sayHelloSaw(4, sawUs)
		h.sayHello(2, pidOf(2))
		two := Run{NodeID: 2, PID: pidOf(2), Start: t0.Add(-2 * time.Hour)}
		h.sayHelloDistrusting(3, two)
		h.sayHelloDistrusting(4, two)
		if c := h.snap().BypassDetail(2); c.Allowed {
			t.Errorf("sets acked %v: node 2, distrusted by both merged daemons' answers, vouched for: %+v", acked, c)
		}
	}
}

// The same at our join: node 3 names node 2 with no start, so node 2's
// hello written before our join makes it stale; its answer to our join,
// naming node 4's run, is still taken.
func TestStaleByEarlyHelloAnswerTakenAtJoin(t *testing.T) {
	h := newHarness(t, true)
	h.nodes(1, 2, 3, 4)
	h.quorumNotice(true)
	h.members = []Member{{NodeID: 2, PID: pidOf(2)}, {NodeID: 3, PID: pidOf(3)}, {NodeID: 4, PID: pidOf(4)}}
	before := slices.Clone(h.members)
	h.join(us, ourPID)
	h.sayHelloSaw(3, h.members, Run{NodeID: 2, PID: pidOf(2)})
	h.sayHelloSaw(2, before) // written before our join
	h.sayHelloSaw(2, h.members, Run{NodeID: 4, PID: pidOf(4), Start: t0.Add(-4 * time.Hour)})
	h.sayHello(4, pidOf(4))
	if c := h.snap().BypassDetail(4); c.Allowed {
		t.Errorf("node 4, named by node 2's answer to our join, vouched for: %+v", c)
	}
}

// The quorum device's variant of TestDistrustFromStaleMergedRunTaken, but
// corosync's "not quorate" notice for the partition's ring comes ahead of
// the ring's members, which then carry the word as the adapter sends it
// (or the word of the ring before): it still counts.
func TestDistrustTakenAfterInquorateNoticeAhead(t *testing.T) {
	for _, adapterWord := range []bool{true, false} {
		t.Run(map[bool]string{true: "members carry the notice's word", false: "members carry the old word"}[adapterWord], func(t *testing.T) {
			h := fourNodesUp(t)
			h.noticeAhead(false)
			if adapterWord {
				h.nodesQuorate(false, 1, 2)
			} else {
				h.ringMembers(1, 2)
			}
			h.leave(3, pidOf(3), ReasonNodeDown)
			h.leave(4, pidOf(4), ReasonNodeDown)
			h.quorumNotice(true) // the quorum device's vote turns to us
			h.ringMembers(1, 2, 3, 4)
			h.quorumNotice(true)
			h.mergeNamingNodeTwo(3, 4)
			h.wantRefused(2)
		})
	}
}

// Quorum moves as in TestDistrustFromStaleMergedRunTaken; nodes 3 and 4
// merge back, and leave and return once more before their daemons'
// answers reach us. The time they were out while we were not quorate
// still counts.
func TestDistrustTakenAfterFlap(t *testing.T) {
	h := fourNodesUp(t)
	h.ringMembers(1, 2)
	h.quorumNotice(false)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.leave(4, pidOf(4), ReasonNodeDown)
	h.quorumNotice(true)
	for range 2 {
		h.ringMembers(1, 2, 3, 4)
		h.quorumNotice(true)
		h.joinWith(3, pidOf(3), ReasonNodeUp)
		h.joinWith(4, pidOf(4), ReasonNodeUp)
		h.ringMembers(1, 2) // the flap: no hello of theirs came
		h.quorumNotice(true)
		h.leave(3, pidOf(3), ReasonNodeDown)
		h.leave(4, pidOf(4), ReasonNodeDown)
	}
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(true)
	h.mergeNamingNodeTwo(3, 4)
	h.wantRefused(2)
}

// We started while nodes 3 and 4 were cut off, on a side quorate by then:
// whether it was quorate all the time they were out, we cannot know, so
// what they name when they merge in is taken.
func TestDistrustTakenFromNodesNeverSeen(t *testing.T) {
	h := newHarness(t, true)
	h.nodes(1, 2)
	h.quorumNotice(true)
	h.members = []Member{{NodeID: 2, PID: pidOf(2)}}
	h.join(us, ourPID)
	h.sayHello(2, pidOf(2))
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(true)
	h.mergeNamingNodeTwo(3, 4)
	h.wantRefused(2)
}

// Quorum moves as in TestDistrustFromStaleMergedRunTaken, with corosync's
// notices ahead of their rings' members: the partition ring's "not
// quorate" counts even when that ring's members never come (a ring cut
// short by the next), or when the next ring's notice came ahead too.
func TestDistrustTakenAfterInquorateNoticeOfSkippedRing(t *testing.T) {
	for _, skipped := range []bool{true, false} {
		t.Run(map[bool]string{true: "its members never come", false: "two notices ahead"}[skipped], func(t *testing.T) {
			h := fourNodesUp(t)
			h.noticeAheadBy(1, false)
			if skipped {
				h.seq += 4 // that ring's members never come
				h.ringMembers(1, 2)
				h.quorumNotice(true) // the quorum device's vote turns to us
			} else {
				h.noticeAheadBy(2, true)
				h.ringMembers(1, 2)
			}
			h.leave(3, pidOf(3), ReasonNodeDown)
			h.leave(4, pidOf(4), ReasonNodeDown)
			if !skipped {
				h.ringMembers(1, 2)
			}
			h.ringMembers(1, 2, 3, 4)
			h.quorumNotice(true)
			h.mergeNamingNodeTwo(3, 4)
			h.wantRefused(2)
		})
	}
}

// Quorum moves as in TestDistrustFromStaleMergedRunTaken; the cpg stream
// lags cman's: hellos nodes 3 and 4 wrote before the partition arrive
// after cman shows them back, and they flap once more (we are quorate)
// before their merges reach us. Those old hellos do not end the time they
// were out while we were not quorate.
func TestDistrustTakenAfterLateOldHello(t *testing.T) {
	h := fourNodesUp(t)
	h.ringMembers(1, 2)
	h.quorumNotice(false)
	h.quorumNotice(true)
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(true)
	h.sayHello(3, pidOf(3)) // written before the partition
	h.sayHello(4, pidOf(4))
	h.ringMembers(1, 2)
	h.quorumNotice(true)
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(true)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.leave(4, pidOf(4), ReasonNodeDown)
	h.joinWith(3, pidOf(3), ReasonNodeUp)
	h.joinWith(4, pidOf(4), ReasonNodeUp)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.leave(4, pidOf(4), ReasonNodeDown)
	h.mergeNamingNodeTwo(3, 4)
	h.wantRefused(2)
}

// Notices ahead of their rings, cut short or not: nodes 3 and 4 leave in
// a ring whose "not quorate" notice came ahead of it, and come back in the
// next, whose notices (first not quorate, then quorate) came ahead too.
// The first ring's word counts for them though it is counted only once
// the second ring's members come.
func TestDistrustTakenAfterTwoInquorateNoticesAhead(t *testing.T) {
	h := fourNodesUp(t)
	h.noticeAheadBy(1, false) // the other side holds quorum
	h.noticeAheadBy(2, false)
	h.noticeAheadBy(2, true) // then the votes turn to us
	h.ringMembers(1, 2)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.leave(4, pidOf(4), ReasonNodeDown)
	h.ringMembers(1, 2, 3, 4)
	h.mergeNamingNodeTwo(3, 4)
	h.wantRefused(2)
}

// Node 3 left while we were quorate; the next ring's "not quorate" notice
// came ahead of it and its members never came (a ring cut short); node 3
// is back in the ring after. Whether node 3 was in the ring cut short we
// cannot know: it counts as out.
func TestDistrustTakenAfterRingCutShortBeforeReturn(t *testing.T) {
	h := fourNodesUp(t)
	h.ringMembers(1, 2, 4)
	h.quorumNotice(true)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.noticeAheadBy(1, false) // the quorum device turns to node 3's side
	h.seq += 4                // that ring's members never come
	h.nodesQuorate(false, 1, 2, 3, 4)
	h.quorumNotice(true)
	h.mergeNamingNodeTwo(3)
	h.wantRefused(2)
}

// Node 3 left and came back between two of corosync's membership notices
// (it is in both the Left and the Joined list of one), and the ring it
// was out in was cut short, its "not quorate" notice come ahead of it.
func TestDistrustTakenFromNodeOutBetweenTwoNotices(t *testing.T) {
	h := fourNodesUp(t)
	h.noticeAheadBy(1, false) // the other side holds quorum in that ring
	h.seq += 8                // whose members never come; the next one's do
	h.clock.advance(time.Second)
	h.handle(NodeChange{Ring: RingID{NodeID: 1, Seq: h.seq}, Members: []uint32{1, 2, 3, 4}, Left: []uint32{3}, Joined: []uint32{3}})
	h.quorumNotice(true)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.mergeNamingNodeTwo(3)
	h.wantRefused(2)
}

// cpg reports nodes 3 and 4 merging back, and their hellos, before cman
// reports their return; the "not quorate" notice for the ring before came
// ahead of that ring's members, which never came.
func TestDistrustTakenWhenCpgReportsMergeFirst(t *testing.T) {
	h := fourNodesUp(t)
	h.ringMembers(1, 2)
	h.quorumNotice(true) // the quorum device's vote is ours
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.leave(4, pidOf(4), ReasonNodeDown)
	h.noticeAheadBy(1, false) // then theirs
	h.mergeNamingNodeTwo(3, 4)
	h.seq += 4
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(true)
	h.wantRefused(2)
}

// The "not quorate" notice for the ring nodes 3 and 4 were out in comes
// only after the members of the ring they came back in.
func TestDistrustTakenAfterLateInquorateNotice(t *testing.T) {
	h := fourNodesUp(t)
	h.ringMembers(1, 2)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.leave(4, pidOf(4), ReasonNodeDown)
	out := h.seq
	h.ringMembers(1, 2, 3, 4)
	h.noticeFor(out, false)
	h.quorumNotice(true)
	h.mergeNamingNodeTwo(3, 4)
	h.wantRefused(2)
}

// A late "not quorate" notice for a ring node 3 was still in does not
// count for its absence after: we were quorate all the time it was out,
// so its side never was, and what it names is not taken.
func TestLateInquorateNoticeForEarlierRingNotTaken(t *testing.T) {
	h := fourNodesUp(t)
	h.ringMembers(1, 2, 3, 4)
	before := h.seq
	h.ringMembers(1, 2, 4) // node 3 cut off
	h.noticeFor(before, false)
	h.quorumNotice(true)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(true)
	h.mergeNamingNodeTwo(3)
	if ok, why := h.snap().Bypass(2); !ok {
		t.Errorf("node 2 refused after a run from a side never quorate named it: %s", why)
	}
}

// The "not quorate" notice for the ring nodes 3 and 4 were out in comes
// after their merge and their hellos (cpg ahead of cman's late notice):
// what they named is taken once it comes.
func TestDistrustTakenWhenLateInquorateNoticeFollowsHello(t *testing.T) {
	h := fourNodesUp(t)
	h.ringMembers(1, 2)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.leave(4, pidOf(4), ReasonNodeDown)
	out := h.seq
	h.ringMembers(1, 2, 3, 4)
	h.mergeNamingNodeTwo(3, 4)
	if ok, why := h.snap().Bypass(2); !ok {
		t.Errorf("node 2 refused while we knew of no ring without quorum: %s", why)
	}
	h.noticeFor(out, false)
	h.quorumNotice(true)
	h.wantRefused(2)
}

// Node 3 left and came back once while we were quorate (a new run of its
// groupd joined and was heard); later cpg reports it gone and merged back,
// naming node 2, before cman reports the ring it was out in, where we were
// not quorate. Its interval is the new one, and what it named is taken.
func TestDistrustTakenWhenCmanLagsCpg(t *testing.T) {
	h := fourNodesUp(t)
	h.ringMembers(1, 2, 4)
	h.quorumNotice(true)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(true)
	h.join(3, 5003)
	h.sayHelloStart(3, 5003, t0)
	h.leave(3, 5003, ReasonNodeDown)
	h.joinWith(3, 5003, ReasonNodeUp)
	h.sayHelloFull(3, 5003, t0, h.members, Run{NodeID: 2, PID: pidOf(2), Start: t0.Add(-2 * time.Hour)})
	h.ringMembers(1, 2, 4) // cman catches up
	h.quorumNotice(false)
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(true)
	h.wantRefused(2)
}

// Corosync's lists for the ring after one cut short name node 3 as joined
// only, though we had it as a member: it was out in the ring cut short,
// whose "not quorate" notice came ahead. (Node 3 was out once before,
// while we were quorate, and a new run of its groupd was heard since.)
func TestDistrustTakenWhenJoinedOnlyAfterRingCutShort(t *testing.T) {
	h := fourNodesUp(t)
	h.ringMembers(1, 2, 4)
	h.quorumNotice(true)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.ringMembers(1, 2, 3, 4)
	h.quorumNotice(true)
	h.join(3, pidOf(3))
	h.sayHello(3, pidOf(3))
	h.noticeAheadBy(1, false)
	h.seq += 8
	h.clock.advance(time.Second)
	h.handle(NodeChange{Ring: RingID{NodeID: 1, Seq: h.seq}, Members: []uint32{1, 2, 3, 4}, Joined: []uint32{3}, Quorate: true})
	h.quorumNotice(true)
	h.leave(3, pidOf(3), ReasonNodeDown)
	h.mergeNamingNodeTwo(3)
	h.wantRefused(2)
}
