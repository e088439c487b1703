//go:build cluster

package clustertest

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The seed scenario (../shared/seed, issue 6): A, B and C are node1, node2
// and node3; "mounting gfs" leaves simulated gfs2 and dlm state under the
// node's simSysfs, which a cluster restart does not clear.

// fenceArgs are the groupd arguments for a residual check under sysfsRoot
// with the given policy, self-fencing through the test agent.
func fenceArgs(sysfsRoot, policy string) string {
	return fmt.Sprintf("--sysfs-root %s --residual-policy %s --fence-command '%s'", sysfsRoot, policy, testAgent)
}

// restartAll mounts fs0 on the given nodes, then kills corosync on all
// three nodes at once (groupd exits with it) and starts the cluster again
// on all three: steps 1 to 3 of the seed scenario.
func restartAll(c *daemonCluster, mountOn ...int) {
	c.t.Helper()
	for _, n := range mountOn {
		c.must("exec", fmt.Sprint(n), "groupd-node", "gfs-mount", "fs0")
	}
	c.must("kill", "1", "2", "3")
	for i := 1; i <= 3; i++ {
		c.waitProc(i, "groupd", false)
	}
	c.must("start", "1", "2", "3")
}

// hasResidual reports whether the node still holds simulated gfs/dlm state.
func hasResidual(c *daemonCluster, node int) bool {
	c.t.Helper()
	out, code := c.exec(node, "groupd-node", "residual")
	if code != 0 {
		c.t.Fatalf("groupd-node residual on node%d: exit %d: %s", node, code, out)
	}
	return strings.TrimSpace(out) != ""
}

// TestSeedScenario: A and B restart with residual gfs state, kill their
// node from the cluster and fence themselves; C's fence_tool join fences
// them again (the double fence the 2006 text predicts), and only then does
// C mount.
func TestSeedScenario(t *testing.T) {
	c := upDaemons(t, 3, fenceArgs(simSysfs, "fence"))
	restartAll(c, 1, 2)

	// Step 4: groupd on A and B finds the state and fences its own node.
	for _, n := range []string{"node1", "node2"} {
		c.waitLog("self-fence of "+n, fencedBy(n, n))
	}
	c.waitGroupd(3, "node3 in the groupd group", func(s gtStatus) bool { return s.Joined })

	// Step 5: C joins the fence domain; step 6: only after that succeeds,
	// C mounts.
	c.fenceJoin(3)
	c.must("exec", "3", "groupd-node", "gfs-mount", "fs0")

	log := c.fenceLog()
	t.Logf("fence log:\n%s", dumpLog(log))
	var acks []fenceEntry
	for _, n := range []string{"node1", "node2"} {
		self := find(log, fencedBy(n, n))
		if len(self) != 1 {
			t.Errorf("%s fenced by itself %d times, want once", n, len(self))
		}
		asked := find(log, func(e fenceEntry) bool {
			return e.Prog == agentProg && e.Event == "request" && e.Host == n && e.Target == n
		})
		if len(asked) != 1 || !strings.Contains(asked[0].Text, "asked by "+n+" groupd") {
			t.Errorf("%s's self-fence requests %v, want one asked by its groupd", n, asked)
		}
		byC := find(log, fencedBy("node3", n))
		if len(byC) != 1 {
			t.Errorf("%s fenced by node3 %d times, want once", n, len(byC))
		}
		if len(self) > 0 && len(byC) > 0 && byC[0].Index < self[0].Index {
			t.Errorf("node3 fenced %s before it fenced itself", n)
		}
		a := find(log, toolEvent("node3", "ack", n))
		if len(a) != 1 {
			t.Errorf("fence_tool on node3 acknowledged %s %d times, want once", n, len(a))
		} else {
			acks = append(acks, a[0])
		}
	}
	if never := find(log, func(e fenceEntry) bool { return e.Target == "node3" && (e.Prog == agentProg || e.Event == "power-off") }); len(never) > 0 {
		t.Errorf("node3 was fenced or asked to be:\n%s", dumpLog(never))
	}
	mounts := find(log, func(e fenceEntry) bool { return e.Event == "mount" && e.Host == "node3" })
	if len(mounts) != 1 {
		t.Fatalf("node3 mounted %d times, want once", len(mounts))
	}
	for _, a := range acks {
		if mounts[0].Index < a.Index || mounts[0].Time.Before(a.Time) {
			t.Errorf("node3 mounted (%s) before the acknowledgement %s", mounts[0], a)
		}
	}
	if len(acks) != 2 {
		t.Errorf("want node3's mount after two acknowledgements, have %d", len(acks))
	}

	// The tool on C shows A and B recovered: once they boot again, clean,
	// they are back in the groupd group, announced, with nothing pending,
	// and may skip fencing.
	if hasResidual(c, 1) || hasResidual(c, 2) {
		t.Errorf("the fence agent's reboot left residual state on node1 or node2")
	}
	c.must("start", "1", "2")
	st := c.waitGroupd(3, "node1 and node2 back in the groupd group, announced", func(s gtStatus) bool {
		return slices.Equal(s.memberIDs(), []uint32{1, 2, 3}) && s.allHello()
	})
	for _, r := range st.Recovery {
		if r.pending() {
			t.Errorf("node3 still has a pending recovery set %+v", r)
		}
	}
	for _, n := range []string{"node1", "node2"} {
		if out, code := c.exec(3, "group_tool", "bypass", n); code != 0 {
			t.Errorf("group_tool bypass %s on node3: exit %d (%s), want 0 after its recovery", n, code, out)
		}
	}
	out, _ := c.exec(3, "fence_tool", "ls")
	t.Logf("fence_tool ls on node3:\n%s", out)
	out, _ = c.exec(3, "group_tool", "ls")
	t.Logf("group_tool ls on node3:\n%s", out)
}

// TestSeedControl is the seed scenario with the residual check turned off:
// A and B join groupd with their old gfs state, and C's fence_tool join
// bypasses them and mounts alongside them. That is the hazard the check
// exists for.
func TestSeedControl(t *testing.T) {
	c := upDaemons(t, 3, fenceArgs(noSysfs, "fence"))
	restartAll(c, 1, 2)

	c.waitGroupd(3, "node1 and node2 in the groupd group again, announced", func(s gtStatus) bool {
		return s.Joined && slices.Equal(s.memberIDs(), []uint32{1, 2, 3}) && s.allHello()
	})
	c.fenceJoin(3)
	c.must("exec", "3", "groupd-node", "gfs-mount", "fs0")

	log := c.fenceLog()
	t.Logf("fence log:\n%s", dumpLog(log))
	for i := 1; i <= 2; i++ {
		n := fmt.Sprintf("node%d", i)
		if b := find(log, toolEvent("node3", "bypass", n)); len(b) != 1 {
			t.Errorf("fence_tool on node3 bypassed %s %d times, want once", n, len(b))
		}
		if !hasResidual(c, i) {
			t.Errorf("%s lost its gfs state; the control must keep it", n)
		}
	}
	if fenced := find(log, func(e fenceEntry) bool { return e.Prog == agentProg || e.Event == "power-off" }); len(fenced) > 0 {
		t.Errorf("with the residual check off nobody should be fenced, but:\n%s", dumpLog(fenced))
	}
	if m := find(log, func(e fenceEntry) bool { return e.Event == "mount" && e.Host == "node3" }); len(m) != 1 {
		t.Errorf("node3 mounted %d times, want once", len(m))
	}
}

// TestFenceBypassFaults: the bypass rule at domain join when groupd, not
// the node, fails. A SIGKILLed groupd leaves a recovery set on the others;
// a clean stop leaves none; a node whose corosync runs without groupd is
// fenced.
func TestFenceBypassFaults(t *testing.T) {
	c := upDaemons(t, 3, fenceArgs(noSysfs, "fence"))

	c.must("kill-groupd", "2")
	for _, n := range []int{1, 3} {
		c.waitGroupd(n, "a recovery set for node2 (procdown)", func(s gtStatus) bool {
			r, ok := set(s.Recovery, 2)
			return ok && r.Reason == "procdown" && r.pending()
		})
	}

	c.must("stop-groupd", "1")
	st := c.waitGroupd(3, "node1 gone from the groupd group", func(s gtStatus) bool {
		return slices.Equal(s.memberIDs(), []uint32{3})
	})
	if r, ok := set(append(st.Recovery, st.Closed...), 1); ok {
		t.Errorf("a clean groupd stop on node1 left a recovery set on node3: %+v", r)
	}
	if !c.procRunning(1, "corosync") {
		t.Fatalf("node1's corosync stopped with its groupd; the test needs it running")
	}

	c.fenceJoin(3)
	log := c.fenceLog()
	t.Logf("fence log:\n%s", dumpLog(log))
	victim := find(log, toolEvent("node3", "victim", "node1"))
	if len(victim) != 1 || !strings.Contains(victim[0].Text, "not in the groupd group") {
		t.Errorf("fence_tool on node3 should fence node1 because its groupd is not in the group; victim lines %v", victim)
	}
	for _, n := range []string{"node1", "node2"} {
		if len(find(log, fencedBy("node3", n))) != 1 {
			t.Errorf("node3 did not fence %s exactly once", n)
		}
		if len(find(log, toolEvent("node3", "ack", n))) != 1 {
			t.Errorf("node3 did not acknowledge %s exactly once", n)
		}
	}
	st = c.waitGroupd(3, "node2's recovery set closed by the acknowledgement", func(s gtStatus) bool {
		_, open := set(s.Recovery, 2)
		r, closed := set(s.Closed, 2)
		return !open && closed && r.State == "acked"
	})
	if r, ok := set(append(st.Recovery, st.Closed...), 1); ok {
		t.Errorf("node1 (clean groupd stop, then fenced) has a recovery set on node3: %+v", r)
	}
}

// TestStayPolicy: under --residual-policy stay, A and B keep their
// residual state but stay cluster members, so C is quorate with them (it
// would not be alone), never see them in groupd, and fences them.
func TestStayPolicy(t *testing.T) {
	c := upDaemons(t, 3, fenceArgs(simSysfs, "stay"))
	restartAll(c, 1, 2)

	for _, n := range []int{1, 2} {
		c.waitGroupd(n, "groupd staying out of the group", func(s gtStatus) bool {
			return s.Phase == "staying-out" && !s.Joined
		})
	}
	// Alone, node3 would have 1 of 3 votes; node1 and node2 make it quorate.
	c.waitGroupd(3, "node3 alone in the groupd group of a quorate cluster", func(s gtStatus) bool {
		return s.Joined && s.Quorate && slices.Equal(s.memberIDs(), []uint32{3})
	})
	waitStatus(t, 3, "quorate cluster of nodes 1, 2 and 3", func(s Status) bool {
		return s.Quorate && slices.Equal(s.Members, []uint32{1, 2, 3})
	})
	// dlm.service's drop-in asks group_tool ready: no on the nodes that
	// stay out, although their groupd runs and told systemd it was ready.
	for n, want := range map[int]int{1: 1, 2: 1, 3: 0} {
		if out, code := c.exec(n, "group_tool", "ready", "--wait", "30s"); code != want {
			t.Errorf("group_tool ready on node%d: exit %d (%s), want %d", n, code, strings.TrimSpace(out), want)
		}
	}

	// With --require-quorum fencing only happens while node3 is quorate,
	// which it is thanks to the very nodes it fences.
	c.fenceJoin(3, "--require-quorum")
	c.must("exec", "3", "groupd-node", "gfs-mount", "fs0")
	log := c.fenceLog()
	t.Logf("fence log:\n%s", dumpLog(log))
	for _, n := range []string{"node1", "node2"} {
		if len(find(log, fencedBy("node3", n))) != 1 {
			t.Errorf("node3 did not fence %s exactly once", n)
		}
		if self := find(log, fencedBy(n, n)); len(self) > 0 {
			t.Errorf("%s fenced itself under the stay policy:\n%s", n, dumpLog(self))
		}
	}
}

// TestFenceFailureBlocksJoin: a fence agent that cannot reach its victim
// (the container is frozen) makes fence_tool join fail, so whatever waits
// for it (a mount) does not go on; once the victim can be reached, join
// succeeds.
func TestFenceFailureBlocksJoin(t *testing.T) {
	c := upDaemons(t, 3, fenceArgs(noSysfs, "fence"))
	c.must("stop-groupd", "2")
	c.waitGroupd(3, "node2 gone from the groupd group", func(s gtStatus) bool {
		return slices.Equal(s.memberIDs(), []uint32{1, 3})
	})
	c.must("pause", "2")
	t.Cleanup(func() { c.run("unpause", "2") })

	// A short agent timeout and two attempts keep the failure quick.
	agent := "--agent=fence_testcluster -t 2 -o reboot -n {name}"
	out, code := c.exec(3, "fence_tool", agent, "--retries", "2", "join")
	t.Logf("fence_tool join on node3 with node2 frozen: exit %d:\n%s", code, out)
	if code != 1 {
		t.Fatalf("fence_tool join exit %d while node2 cannot be fenced, want 1", code)
	}
	log := c.fenceLog()
	if n := len(find(log, toolEvent("node3", "fence-failed", "node2"))); n != 2 {
		t.Errorf("want 2 failed attempts on node2, have %d:\n%s", n, dumpLog(log))
	}
	if ok := find(log, func(e fenceEntry) bool { return e.Event == "joined" || e.Event == "ack" }); len(ok) > 0 {
		t.Errorf("a failed fencing was acknowledged or the join reported done:\n%s", dumpLog(ok))
	}
	if len(find(log, toolEvent("node3", "join-failed", "node3"))) != 1 {
		t.Errorf("no join-failed line from node3:\n%s", dumpLog(log))
	}

	c.must("unpause", "2")
	c.fenceJoin(3, agent)
	log = c.fenceLog()
	if len(find(log, fencedBy("node3", "node2"))) != 1 || len(find(log, toolEvent("node3", "ack", "node2"))) != 1 {
		t.Errorf("after the unpause node3 should fence and acknowledge node2 once:\n%s", dumpLog(log))
	}
	if b := find(log, toolEvent("node3", "bypass", "node1")); len(b) != 2 {
		t.Errorf("node1 (healthy) should be bypassed by both joins, was %d times", len(b))
	}
}

// TestFenceJoinRecheck: a node that may bypass fencing when fence_tool join
// starts, but whose groupd is SIGKILLed while the join waits out its
// post-join delay for another node, is fenced by that same join before it
// succeeds: join's final recheck finds its recovery set.
func TestFenceJoinRecheck(t *testing.T) {
	c := upDaemons(t, 3, fenceArgs(noSysfs, "fence"))
	done := joinWaitingForNode1(c)
	c.waitLog("node3's first-pass bypass of node2", toolEvent("node3", "bypass", "node2"))
	c.must("kill-groupd", "2")
	r := <-done
	t.Logf("fence_tool join on node3: exit %d:\n%s", r.code, r.out)
	if r.code != 0 {
		t.Fatalf("fence_tool join on node3 failed (exit %d)", r.code)
	}

	log := c.fenceLog()
	t.Logf("fence log:\n%s", dumpLog(log))
	for _, n := range []string{"node1", "node2"} {
		if len(find(log, fencedBy("node3", n))) != 1 {
			t.Errorf("node3 did not fence %s exactly once", n)
		}
	}
	v := find(log, toolEvent("node3", "victim", "node2"))
	if len(v) != 1 || !strings.Contains(v[0].Text, "failed during the join") {
		t.Errorf("node2 should be a victim of the recheck; victim lines %v", v)
	}
	joined := find(log, toolEvent("node3", "joined", "node3"))
	fenced2 := find(log, fencedBy("node3", "node2"))
	if len(joined) != 1 || len(fenced2) != 1 || joined[0].Index < fenced2[0].Index {
		t.Errorf("the join must be declared only after node2 was fenced: joined %v, fenced %v", joined, fenced2)
	}
	if out, _ := c.exec(3, "fence_tool", "status"); !strings.Contains(out, "fence domain: joined") {
		t.Errorf("fence_tool status after a successful join:\n%s", out)
	}
}

// TestFenceJoinOwnGroupdGone: when the groupd on the joining node stops
// while fence_tool join waits out its post-join delay, join fails without
// fencing anyone: every answer would now be "could not tell", and fencing
// on them would power-cycle healthy nodes. Once groupd is back, a new
// join fences the node that really may not bypass fencing.
func TestFenceJoinOwnGroupdGone(t *testing.T) {
	c := upDaemons(t, 3, fenceArgs(noSysfs, "fence"))
	done := joinWaitingForNode1(c)
	c.waitLog("node3 waiting for node1", toolEvent("node3", "wait", "node1"))
	c.must("stop-groupd", "3")
	r := <-done
	t.Logf("fence_tool join on node3: exit %d:\n%s", r.code, r.out)
	if r.code != 1 {
		t.Fatalf("fence_tool join exit %d after its own groupd stopped, want 1", r.code)
	}
	log := c.fenceLog()
	t.Logf("fence log:\n%s", dumpLog(log))
	if fenced := find(log, func(e fenceEntry) bool {
		return e.Prog == agentProg || e.Event == "power-off" || e.Event == "victim"
	}); len(fenced) > 0 {
		t.Errorf("nobody may be fenced once the local groupd cannot answer, but:\n%s", dumpLog(fenced))
	}
	e := find(log, toolEvent("node3", "error", "node3"))
	if len(e) != 1 || !strings.Contains(e[0].Text, "without fencing any further node") {
		t.Errorf("want one error line saying the join gave up without fencing; have %v", e)
	}
	if out, _ := c.exec(3, "fence_tool", "status"); !strings.Contains(out, "join failed") {
		t.Errorf("fence_tool status after the failed join:\n%s", out)
	}

	c.must("start", "3")
	c.waitGroupd(3, "node3's groupd back in the group", func(s gtStatus) bool {
		return s.Joined && slices.Contains(s.memberIDs(), 3)
	})
	c.fenceJoin(3)
	log = c.fenceLog()
	if len(find(log, fencedBy("node3", "node1"))) != 1 {
		t.Errorf("the second join should fence node1 once:\n%s", dumpLog(log))
	}
	if len(find(log, toolEvent("node3", "bypass", "node2"))) < 1 {
		t.Errorf("the second join should bypass node2:\n%s", dumpLog(log))
	}
}

// joinResult is how a fence_tool join run in the background ended.
type joinResult struct {
	out  string
	code int
}

// joinWaitingForNode1 stops node1's groupd (its corosync stays up) and
// starts `fence_tool --post-join-delay 6 join` on node3, which then waits
// the delay for node1: the test acts meanwhile, then reads the result.
func joinWaitingForNode1(c *daemonCluster) <-chan joinResult {
	c.must("stop-groupd", "1")
	c.waitGroupd(3, "node1 gone from the groupd group", func(s gtStatus) bool {
		return slices.Equal(s.memberIDs(), []uint32{2, 3})
	})
	done := make(chan joinResult, 1)
	go func() {
		// Not c.exec: it may call t.Fatalf, which is for the test goroutine.
		out, err := c.command("exec", "3", "fence_tool", "--post-join-delay", "6", "join").CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		done <- joinResult{string(out), code}
	}()
	return done
}
