package groupd

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCleanLeaveGivesNoSet(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonLeave)
	h.nodes(1) // and then its node leaves the cluster too
	h.wantSets()
	if len(h.snap().Closed) != 0 || len(h.killer.got()) != 0 {
		t.Errorf("a clean leave produced closed sets %v or kills %v", h.snap().Closed, h.killer.got())
	}
	if ok, _ := h.snap().Bypass(2); ok {
		t.Error("a node that left both the group and the cluster may bypass fencing")
	}
}

// cman's nodedown can overtake the confchg: the leave reason decides.
func TestCleanLeaveAfterClusterReportedIt(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.nodes(1)
	h.wantSets("2:waiting-for-cpg")
	h.leave(2, pidOf(2), ReasonLeave)
	h.wantSets()
	if c := h.snap().Closed; len(c) != 1 || c[0].State != StateLeftCleanly {
		t.Errorf("closed sets %+v, want one left-cleanly", c)
	}
}

func TestNodeDownGivesOneSet(t *testing.T) {
	for _, order := range []string{"cpg first", "cman first"} {
		t.Run(order, func(t *testing.T) {
			h := newHarness(t, true)
			h.up([]uint32{1, 2, 3}, 1, 2, 3)
			failedAt := h.clock.Now().Add(time.Second) // the first report's time
			if order == "cpg first" {
				h.leave(2, pidOf(2), ReasonNodeDown)
				h.wantSets("2:waiting-for-cman")
				h.nodes(1, 3)
			} else {
				h.nodes(1, 3)
				h.wantSets("2:waiting-for-cpg")
				h.leave(2, pidOf(2), ReasonNodeDown)
			}
			h.wantSets("2:waiting-for-fencing")
			s := h.set(2)
			if s.Name != "bravo" || s.Reason != ReasonNodeDown || s.PID != pidOf(2) || s.Failures != 1 {
				t.Errorf("set %+v: want name bravo, reason nodedown, pid %d, 1 failure", s, pidOf(2))
			}
			if !s.Failed.Equal(failedAt) || s.FailedMono != failedAt.Sub(t0)+time.Hour {
				t.Errorf("failure time %v (mono %v), want the first report at %v", s.Failed, s.FailedMono, failedAt)
			}
			if s.GroupReported.IsZero() || s.ClusterReported.IsZero() {
				t.Errorf("both reports should be recorded in the one set: %+v", s)
			}
			if s.Ring != h.snap().Ring {
				t.Errorf("ring %v, want the ring cman reported the node gone in, %v", s.Ring, h.snap().Ring)
			}
			if want := t0.Add(-2 * time.Hour); !s.Start.Equal(want) {
				t.Errorf("set records failed run start %v, want %v from its hello", s.Start, want)
			}
			if len(h.killer.got()) != 0 {
				t.Errorf("nodedown killed %v; the node is already gone", h.killer.got())
			}
			if ok, _ := h.snap().Bypass(2); ok {
				t.Error("a failed node may bypass fencing")
			}
		})
	}
}

func TestProcDown(t *testing.T) {
	tests := []struct {
		kill      bool
		wantKills int
		wantState string
	}{
		{kill: true, wantKills: 1, wantState: "2:waiting-for-cman"},
		{kill: false, wantKills: 0, wantState: "2:waiting-for-fencing"},
	}
	for _, tt := range tests {
		h := newHarness(t, tt.kill)
		h.up([]uint32{1, 2}, 1, 2)
		h.leave(2, pidOf(2), ReasonProcDown)
		h.wantSets(tt.wantState)
		kills := h.killer.got()
		if len(kills) != tt.wantKills {
			t.Fatalf("kill on procdown %v: kills %v, want %d", tt.kill, kills, tt.wantKills)
		}
		if tt.kill {
			if kills[0].node != 2 || !strings.Contains(kills[0].reason, "groupd") {
				t.Errorf("kill %+v, want node 2 with a reason naming groupd", kills[0])
			}
			if !h.set(2).KillRequested {
				t.Error("set does not show the kill was requested")
			}
			h.nodes(1) // the kill takes effect
			h.wantSets("2:waiting-for-fencing")
		}
		if s := h.set(2); s.Reason != ReasonProcDown {
			t.Errorf("reason %v, want procdown", s.Reason)
		}
	}
}

// Our node can appear with another pid (a second groupd): never kill it.
func TestProcDownOnOurNodeDoesNotKillUs(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1)
	h.join(us, 555)
	h.leave(us, 555, ReasonProcDown)
	if k := h.killer.got(); len(k) != 0 {
		t.Errorf("killed %v", k)
	}
}

func TestClusterOnlyFailureOfNonMemberLeavesNoSet(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2) // node 3 runs no groupd
	h.nodes(1, 2)
	h.wantSets()
	// and nothing appears later for it either
	h.nodes(1, 2, 3)
	h.nodes(1, 2)
	h.wantSets()
	if ok, reason := h.snap().Bypass(3); ok || !strings.Contains(reason, "not a cluster member") {
		t.Errorf("Bypass(3) = %v, %q", ok, reason)
	}
}

func TestFailRejoinFail(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)

	h.leave(2, pidOf(2), ReasonNodeDown)
	h.nodes(1)
	first := h.set(2)

	// node 2 is fenced, reboots and comes back with a new groupd run
	h.nodes(1, 2)
	h.wantSets("2:waiting-for-fencing") // back in the cluster is not enough
	h.join(2, 3002)
	h.wantSets("2:waiting-for-fencing") // nor joining without a hello
	h.sayHelloStart(2, 3002, t0.Add(time.Hour))
	h.wantSets()
	closed := h.snap().Closed
	if len(closed) != 1 || closed[0].State != StateRejoined || closed[0].NodeID != 2 {
		t.Fatalf("closed sets %+v, want node 2 rejoined", closed)
	}
	if ok, why := h.snap().Bypass(2); !ok {
		t.Errorf("node 2 after a clean rejoin: bypass refused: %s", why)
	}

	h.leave(2, 3002, ReasonNodeDown)
	h.nodes(1)
	second := h.set(2)
	if second.Failures != 1 || !second.Failed.After(first.Failed) || second.PID != 3002 {
		t.Errorf("second failure set %+v, want a new set for pid 3002", second)
	}
}

// A partition heals: node 2 merges back as the run that failed. It keeps
// its set and stays unbypassable; failing again does not duplicate the set.
func TestMergeBackWithOldStateIsNotACleanStart(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonNodeDown)
	h.nodes(1)

	h.nodes(1, 2)
	h.joinWith(2, pidOf(2), ReasonNodeUp)
	h.sayHello(2, pidOf(2)) // same pid, same start as before
	h.wantSets("2:waiting-for-fencing")
	if ok, _ := h.snap().Bypass(2); ok {
		t.Error("the run that failed merged back and may bypass fencing")
	}
	var m GroupMember
	for _, x := range h.snap().Members {
		if x.NodeID == 2 {
			m = x
		}
	}
	if !m.StaleHello || m.Hello {
		t.Errorf("member %+v: want the stale hello shown and not counted", m)
	}

	// an ack does not make the old run trustworthy while it stays
	if _, err := h.m.Ack(2); err != nil {
		t.Fatal(err)
	}
	h.sayHello(2, pidOf(2))
	if ok, _ := h.snap().Bypass(2); ok {
		t.Error("the merged-back old run became bypassable after an ack")
	}
	h.leave(2, pidOf(2), ReasonNodeDown)
	h.nodes(1)
	h.wantSets("2:waiting-for-fencing")
	if s := h.set(2); s.Failures != 1 {
		t.Errorf("failures %d in the set opened after the ack, want 1", s.Failures)
	}
}

// Without an ack, failing again folds into the one set.
func TestMergeBackThenFailAgain(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonNodeDown)
	h.nodes(1)
	h.nodes(1, 2)
	h.joinWith(2, pidOf(2), ReasonNodeUp)
	h.sayHello(2, pidOf(2))
	h.leave(2, pidOf(2), ReasonNodeDown)
	h.nodes(1)
	h.wantSets("2:waiting-for-fencing")
	if s := h.set(2); s.Failures != 3 {
		// failed in cpg, again in cpg, again in cman after coming back
		t.Errorf("failures %d, want 3 folded into the one set", s.Failures)
	}
}

func TestDuplicateFailureDoesNotDuplicate(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonProcDown)
	h.nodes(1)
	h.nodes(1) // the same membership again
	h.handle(NodeChange{Ring: RingID{1, 99}, Members: []uint32{1}, Left: []uint32{2}, Quorate: true})
	h.wantSets("2:waiting-for-fencing")
	if len(h.snap().Recovery) != 1 {
		t.Errorf("sets %+v", h.snap().Recovery)
	}
}

func TestAck(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3)
	h.leave(2, pidOf(2), ReasonNodeDown)
	h.nodes(1, 3)

	if _, err := h.m.Ack(3); !errors.Is(err, ErrNoRecoverySet) {
		t.Errorf("Ack of a node without a set = %v, want ErrNoRecoverySet", err)
	}
	s, err := h.m.Ack(2)
	if err != nil || s.State != StateAcked || s.Acked.IsZero() {
		t.Fatalf("Ack(2) = %+v, %v", s, err)
	}
	h.wantSets()
	if c := h.snap().Closed; len(c) != 1 || c[0].State != StateAcked {
		t.Errorf("closed %+v, want the acked set in history", c)
	}
	if _, err := h.m.Ack(2); !errors.Is(err, ErrNoRecoverySet) {
		t.Errorf("second Ack = %v, want ErrNoRecoverySet", err)
	}
}

// An ack can beat the confchg (fencing was quick); the late confchg must
// not open a new set.
func TestAckBeforeConfChg(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.nodes(1)
	if _, err := h.m.Ack(2); err != nil {
		t.Fatal(err)
	}
	h.wantSets("2:acked")
	if ok, _ := h.snap().Bypass(2); ok {
		t.Error("a node whose old run is still listed may bypass")
	}
	h.leave(2, pidOf(2), ReasonNodeDown)
	h.wantSets()
}

func TestHellos(t *testing.T) {
	h := newHarness(t, true)
	h.nodes(1, 2, 3)
	h.join(2, pidOf(2)) // before us: we are not in the group, say nothing
	if n := h.hello.count(); n != 0 {
		t.Fatalf("sent %d hellos before joining", n)
	}
	h.join(us, ourPID)
	if n := h.hello.count(); n != 1 {
		t.Fatalf("sent %d hellos on joining, want 1", n)
	}
	got, err := ParseHello(h.hello.sent[0])
	if err != nil || got.NodeID != us || !got.Start.Equal(t0.Add(-time.Minute)) || got.Version != HelloVersion {
		t.Errorf("our hello = %+v, %v", got, err)
	}
	if s := h.snap(); s.Phase != PhaseJoined || !s.Joined {
		t.Errorf("after our join: phase %s joined %v", s.Phase, s.Joined)
	}
	h.join(3, pidOf(3)) // someone new must hear us too
	h.leave(3, pidOf(3), ReasonLeave)
	if n := h.hello.count(); n != 2 {
		t.Errorf("sent %d hellos, want one per join we saw while a member (2)", n)
	}
}

func TestHelloIsPerJoin(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	if ok, why := h.snap().Bypass(2); !ok {
		t.Fatalf("healthy node 2 not bypassable: %s", why)
	}
	// node 2's groupd restarts cleanly: a hello from the old membership
	// does not carry over to the new one.
	h.leave(2, pidOf(2), ReasonLeave)
	h.join(2, 7777)
	if ok, _ := h.snap().Bypass(2); ok {
		t.Error("bypass allowed before the new run said hello")
	}
	h.sayHello(2, 7777)
	if ok, why := h.snap().Bypass(2); !ok {
		t.Errorf("bypass refused after hello: %s", why)
	}
}

func TestBadMessagesIgnored(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1)
	h.join(2, pidOf(2))
	for _, m := range []GroupMessage{
		{NodeID: 2, PID: pidOf(2), Data: []byte("hello")},
		{NodeID: 2, PID: pidOf(2), Data: Hello{Version: 1, NodeID: 3, Start: t0}.Marshal()}, // claims another node
		{NodeID: 3, PID: pidOf(3), Data: Hello{Version: 1, NodeID: 3, Start: t0}.Marshal()}, // not a member
	} {
		h.handle(m)
	}
	for _, n := range []uint32{2, 3} {
		if ok, _ := h.snap().Bypass(n); ok {
			t.Errorf("node %d bypassable after bad messages", n)
		}
	}
}

func TestClusterDiffWithoutLists(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3)
	// an adapter that only passes the member list
	h.handle(NodeChange{Ring: RingID{1, 50}, Members: []uint32{1, 3}, Quorate: true})
	h.wantSets("2:waiting-for-cpg")
	if s := h.set(2); s.Ring != (RingID{1, 50}) {
		t.Errorf("ring %v", s.Ring)
	}
}

func TestSnapshotIsACopy(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	s := h.snap()
	s.Members[0].Hello = false
	s.ClusterMembers[0] = 9
	if ok, _ := h.snap().Bypass(1); !ok {
		t.Error("changing a snapshot changed the machine")
	}
}

func TestNoticesForWatchers(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.notices = nil
	h.leave(2, pidOf(2), ReasonProcDown)
	kinds := map[string]bool{}
	for _, n := range h.notices {
		kinds[n.Kind] = true
		if n.Time.IsZero() || n.Text == "" {
			t.Errorf("notice without time or text: %+v", n)
		}
	}
	for _, k := range []string{"recovery-opened", "kill"} {
		if !kinds[k] {
			t.Errorf("no %q notice in %v", k, h.notices)
		}
	}
	if !strings.Contains(h.notices[len(h.notices)-1].Text, "bravo") {
		t.Errorf("notice %q does not name the node", h.notices[len(h.notices)-1].Text)
	}
}

func TestOurCleanShutdown(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.handle(SetPhase{PhaseLeaving})
	h.leave(us, ourPID, ReasonLeave)
	s := h.snap()
	if s.Joined || s.Phase != PhaseLeaving || len(s.Recovery) != 0 {
		t.Errorf("after leaving: joined %v phase %s sets %v", s.Joined, s.Phase, s.Recovery)
	}
	for _, n := range h.notices {
		if n.Level == "warn" {
			t.Errorf("a deliberate leave logged a warning: %s", n.Text)
		}
	}
	// and without our group view nobody can be vouched for
	if d := s.BypassDetail(2); d.Allowed || d.Known {
		t.Errorf("bypass after we left: %+v", d)
	}
}

// The failure of a kill made for an earlier set of the node leaves the
// node's current set alone.
func TestStaleKillFailureIgnored(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonProcDown)
	first := h.m.lastKillSeq()
	if _, err := h.m.Ack(2); err != nil {
		t.Fatal(err)
	}
	h.join(2, pidOf(2)+1)
	h.leave(2, pidOf(2)+1, ReasonProcDown)
	h.wantSets("2:waiting-for-cman")
	h.m.KillFailed(2, first, errors.New("late"))
	if s := h.set(2); s.State != StateWaitCman || s.KillError != "" {
		t.Errorf("the current set took an earlier kill's failure: %+v", s)
	}
	h.m.KillFailed(2, h.m.lastKillSeq(), errors.New("this one"))
	if s := h.set(2); s.State != StateWaitFencing || s.KillError != "this one" {
		t.Errorf("the current set's own kill failure: %+v", s)
	}
}

// A kill that reports failure for a node that has left the cluster all the
// same records nothing; one recorded before the node left is forgotten
// when it leaves.
func TestKillFailureOfNodeGone(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonProcDown)
	h.nodes(1) // the kill went through
	h.m.KillFailed(2, h.m.lastKillSeq(), errors.New("timed out"))
	if s := h.set(2); s.KillError != "" || s.State != StateWaitFencing {
		t.Errorf("a node gone from the cluster got a failed kill recorded: %+v", s)
	}

	h = newHarness(t, true)
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonProcDown)
	h.m.KillFailed(2, h.m.lastKillSeq(), errors.New("timed out"))
	if s := h.set(2); s.KillError == "" {
		t.Fatalf("failed kill not recorded: %+v", s)
	}
	h.nodes(1)
	if s := h.set(2); s.KillError != "" || s.ClusterReported.IsZero() {
		t.Errorf("after the node left the cluster: %+v", s)
	}
}

func TestKillFailureKeepsSetPending(t *testing.T) {
	h := newHarness(t, true)
	h.killer.err = errors.New("cfg: try again")
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonProcDown)
	// No cman report of its departure will come: it waits for fencing.
	h.wantSets("2:waiting-for-fencing")
	if s := h.set(2); !s.KillRequested || !strings.Contains(s.KillError, "try again") {
		t.Errorf("set after a failed kill: %+v", s)
	}
	found := false
	for _, n := range h.notices {
		if n.Kind == "kill-failed" && strings.Contains(n.Text, "waits for fencing") {
			found = true
		}
	}
	if !found {
		t.Error("a failed kill was not reported")
	}
	if ok, _ := h.snap().Bypass(2); ok {
		t.Error("bypass allowed after a failed kill")
	}
}

// When the kill of a node whose groupd died failed, and its next groupd run
// dies too while the node stays a member, the kill is tried again; the set
// waits for cman again, and records the new attempt's failure if it fails.
func TestFailedKillRetriedOnRepeat(t *testing.T) {
	h := newHarness(t, true)
	h.killer.err = errors.New("cfg: try again")
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonProcDown)
	h.wantSets("2:waiting-for-fencing")
	h.join(2, pidOf(2)+1)
	h.killer.err = nil
	h.leave(2, pidOf(2)+1, ReasonProcDown)
	if n := len(h.killer.kills); n != 2 {
		t.Fatalf("%d kills, want a second one: %+v", n, h.killer.kills)
	}
	h.wantSets("2:waiting-for-cman")
	if s := h.set(2); s.KillError != "" || s.Failures != 2 {
		t.Errorf("set after the second kill: %+v", s)
	}
	h.nodes(1) // the second kill went through
	h.wantSets("2:waiting-for-fencing")

	// A repeat whose kill fails again records that failure.
	h = newHarness(t, true)
	h.killer.err = errors.New("first")
	h.up([]uint32{1, 2}, 1, 2)
	h.leave(2, pidOf(2), ReasonProcDown)
	h.join(2, pidOf(2)+1)
	h.killer.err = errors.New("second")
	h.leave(2, pidOf(2)+1, ReasonProcDown)
	if s := h.set(2); len(h.killer.kills) != 2 || s.State != StateWaitFencing || s.KillError != "second" {
		t.Errorf("after two failed kills (%d made): %+v", len(h.killer.kills), s)
	}

	// With killing disabled, or a kill that did not fail, no second kill.
	for _, noKill := range []bool{true, false} {
		h = newHarness(t, true)
		h.m.cfg.NoKillOnProcDown = noKill
		h.up([]uint32{1, 2}, 1, 2)
		h.leave(2, pidOf(2), ReasonProcDown)
		h.join(2, pidOf(2)+1)
		h.leave(2, pidOf(2)+1, ReasonProcDown)
		want := 1
		if noKill {
			want = 0
		}
		if len(h.killer.kills) != want {
			t.Errorf("NoKillOnProcDown %v: %d kills, want %d", noKill, len(h.killer.kills), want)
		}
	}
}

// An ack that beat the confchg leaves the set acked, waiting for the old
// run's confchg. Should that never come, a later failure of the node is a
// new failure: it gets a new set (and a kill), not folded into the ack.
func TestAckedSetDoesNotSwallowANewFailure(t *testing.T) {
	t.Run("another run fails", func(t *testing.T) {
		h := newHarness(t, true)
		h.up([]uint32{1, 2}, 1, 2)
		h.nodes(1)
		if _, err := h.m.Ack(2); err != nil {
			t.Fatal(err)
		}
		h.wantSets("2:acked")
		h.nodes(1, 2)
		// the old run is still listed, with its hello from before it failed
		if ok, _ := h.snap().Bypass(2); ok {
			t.Error("the run whose node left the cluster may bypass on its old hello")
		}
		h.join(2, 3002)
		h.sayHelloStart(2, 3002, t0.Add(time.Hour))
		h.leave(2, 3002, ReasonProcDown)
		h.wantSets("2:waiting-for-cman")
		if s := h.set(2); s.PID != 3002 || s.Failures != 1 || !s.KillRequested {
			t.Errorf("set %+v, want a new set for pid 3002 with a kill", s)
		}
		if k := h.killer.got(); len(k) != 1 || k[0].node != 2 {
			t.Errorf("kills %v, want node 2 killed", k)
		}
		if c := h.snap().Closed; len(c) != 1 || c[0].State != StateAcked || c[0].PID != pidOf(2) {
			t.Errorf("closed %+v, want the acked set of pid %d", c, pidOf(2))
		}
	})
	t.Run("the node leaves the cluster again", func(t *testing.T) {
		h := newHarness(t, true)
		h.up([]uint32{1, 2}, 1, 2)
		h.nodes(1)
		if _, err := h.m.Ack(2); err != nil {
			t.Fatal(err)
		}
		h.nodes(1) // the same membership again is not a new failure
		h.wantSets("2:acked")
		h.nodes(1, 2)
		h.nodes(1)
		h.wantSets("2:waiting-for-cpg")
		h.leave(2, pidOf(2), ReasonNodeDown) // the late confchg
		h.wantSets("2:waiting-for-fencing")
		if ok, _ := h.snap().Bypass(2); ok {
			t.Error("a node that failed again after its ack may bypass")
		}
	})
}

// Node 2, gone while we were quorate, merges back as the same run (stale)
// and its groupd then dies while the node stays a cluster member: its set
// is pending already, but the node is killed all the same, so it gets
// fenced; a failure of that kill is recorded.
func TestMergedBackRunDyingGetsItsNodeKilled(t *testing.T) {
	for _, killErr := range []error{nil, errors.New("cfg: try again")} {
		h := newHarness(t, true)
		h.up([]uint32{1, 2, 3}, 1, 2, 3)
		h.leave(2, pidOf(2), ReasonNodeDown)
		h.ringMembers(1, 3)
		h.quorumNotice(true)
		h.ringMembers(1, 2, 3)
		h.quorumNotice(true)
		h.joinWith(2, pidOf(2), ReasonNodeUp)
		h.sayHello(2, pidOf(2))
		h.killer.err = killErr
		h.leave(2, pidOf(2), ReasonProcDown)
		if k := h.killer.got(); len(k) != 1 || k[0].node != 2 {
			t.Fatalf("kill error %v: kills %v, want node 2 killed", killErr, k)
		}
		s := h.set(2)
		if !s.State.Pending() || !s.KillRequested || !s.QuorateWhenGone {
			t.Errorf("kill error %v: set %+v, want it pending, killed, quorate when gone", killErr, s)
		}
		if killErr != nil && s.KillError != killErr.Error() {
			t.Errorf("the failed kill was not recorded: %+v", s)
		}
		if killErr != nil {
			continue
		}
		h.ringMembers(1, 3) // the kill went through
		h.quorumNotice(false)
		// Two failures: the node's first absence, and its groupd dying
		// after the node came back. Leaving because we killed it is
		// that second failure's end, not a third.
		if s := h.set(2); !s.State.Pending() || !s.QuorateWhenGone || s.Failures != 2 {
			t.Errorf("after the kill: set %+v, want it pending, quorate when gone, 2 failures", s)
		}
	}
}

// A groupd that keeps dying on a node with a pending set gets the node
// killed once per kill under way, again after a kill failed, and again
// once the node has left the cluster and come back; a failure reported
// for an older kill is not recorded.
func TestKillPendingOnePerKill(t *testing.T) {
	h := newHarness(t, true)
	h.up([]uint32{1, 2, 3}, 1, 2, 3)
	h.leave(2, pidOf(2), ReasonProcDown) // kill 1, under way
	for i := uint32(0); i < 3; i++ {
		h.join(2, 7000+i)
		h.leave(2, 7000+i, ReasonProcDown)
	}
	if k := h.killer.got(); len(k) != 1 {
		t.Fatalf("kills %v, want 1 while it is under way", k)
	}
	first := h.m.lastKillSeq()
	h.m.KillFailed(2, first, errors.New("cfg: try again"))
	h.join(2, 7100)
	h.leave(2, 7100, ReasonProcDown)
	if k := h.killer.got(); len(k) != 2 {
		t.Fatalf("kills %v, want one more after the failure", k)
	}
	h.m.KillFailed(2, first, errors.New("late")) // the older kill's
	if s := h.set(2); s.KillError != "" {
		t.Errorf("an older kill's failure recorded: %+v", s)
	}
	h.ringMembers(1, 3) // the second kill went through
	h.quorumNotice(true)
	h.ringMembers(1, 2, 3) // its corosync is back; a new groupd joins and dies
	h.quorumNotice(true)
	h.join(2, 7200)
	h.leave(2, 7200, ReasonProcDown)
	if k := h.killer.got(); len(k) != 3 {
		t.Errorf("kills %v, want one more for the run that died after the node came back", k)
	}
	if s := h.set(2); !s.State.Pending() {
		t.Errorf("set %+v, want it pending", s)
	}
}
