//go:build cluster

package clustertest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Paths inside the node containers (docker/groupd-node).
const (
	// simSysfs is where `groupd-node gfs-mount` leaves simulated gfs2 and
	// dlm state; --sysfs-root simSysfs makes groupd look there.
	simSysfs = "/var/lib/groupd-node/sysfs"
	// noSysfs is never filled (docker/groupd-node makes it with
	// sys/kernel only): --sysfs-root noSysfs turns the residual check
	// off, as the control scenario needs.
	noSysfs = "/var/lib/groupd-node/no-sysfs"
	// testAgent fences through the test cluster's mailboxes.
	testAgent = "fence_testcluster -o reboot -n {name}"
	// agentProg is the test agent's name in the fence log.
	agentProg = "fence_testcluster"
)

// daemonCluster is a cluster brought up with groupd on every node and a
// shared directory holding the fence log.
type daemonCluster struct {
	t      *testing.T
	n      int
	env    []string
	shared string
}

// upDaemons brings up a fresh n-node cluster running groupd with
// groupdArgs on every node, and waits until every daemon is in the groupd
// group with all n members announced. The cluster goes down at the end of
// the test, after its logs and fence log are dumped if the test failed.
func upDaemons(t *testing.T, n int, groupdArgs string) *daemonCluster {
	t.Helper()
	shared, err := os.MkdirTemp("", "groupd-fence-")
	if err != nil {
		t.Fatal(err)
	}
	c := &daemonCluster{t: t, n: n, shared: shared, env: []string{
		"GROUPD_DAEMON=1",
		"GROUPD_ARGS=" + groupdArgs,
		"GROUPD_SHARED=" + shared,
	}}
	c.must("down")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.run("status")
			t.Logf("cluster status at failure:\n%s", out)
			for i := 1; i <= n; i++ {
				out, _ := c.run("logs", fmt.Sprint(i), "--tail", "60")
				t.Logf("node%d log, last lines:\n%s", i, out)
			}
			b, _ := os.ReadFile(filepath.Join(shared, "fence.log"))
			t.Logf("fence log:\n%s", b)
		}
		if os.Getenv("GROUPD_KEEP_CLUSTER") != "1" {
			c.run("down")
			os.RemoveAll(shared)
		} else {
			t.Logf("shared directory (fence log) kept at %s", shared)
		}
	})
	c.must("up", fmt.Sprint(n))
	all := nodeRange(1, n)
	for i := 1; i <= n; i++ {
		c.waitGroupd(i, fmt.Sprintf("groupd joined with members %v, all announced", all), func(s gtStatus) bool {
			return s.Joined && slices.Equal(s.memberIDs(), all) && s.allHello()
		})
	}
	return c
}

func (c *daemonCluster) command(args ...string) *exec.Cmd {
	cmd := clusterCommand(args...)
	cmd.Env = append(cmd.Env, c.env...)
	return cmd
}

func (c *daemonCluster) run(args ...string) (string, error) {
	out, err := c.command(args...).CombinedOutput()
	return string(out), err
}

// must runs scripts/cluster with args and fails the test if it fails.
func (c *daemonCluster) must(args ...string) string {
	c.t.Helper()
	c.t.Logf("$ scripts/cluster %s", strings.Join(args, " "))
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("scripts/cluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// exec runs a command in a node and returns its output (stdout and stderr)
// and exit status.
func (c *daemonCluster) exec(node int, args ...string) (string, int) {
	c.t.Helper()
	out, err := c.command(append([]string{"exec", fmt.Sprint(node)}, args...)...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	c.t.Fatalf("exec %v on node%d: %v\n%s", args, node, err, out)
	return "", -1
}

// gtStatus is the part of `group_tool status --json` the tests read.
type gtStatus struct {
	NodeID   uint32     `json:"nodeid"`
	Phase    string     `json:"phase"`
	Quorate  bool       `json:"quorate"`
	Joined   bool       `json:"joined"`
	Members  []gtMember `json:"members"`
	Recovery []gtSet    `json:"recovery"`
	Closed   []gtSet    `json:"closed"`
}

type gtMember struct {
	NodeID uint32 `json:"nodeid"`
	Name   string `json:"name"`
	PID    uint32 `json:"pid"`
	Hello  bool   `json:"hello"`
}

type gtSet struct {
	NodeID uint32 `json:"nodeid"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
	State  string `json:"state"`
}

func (s gtStatus) memberIDs() []uint32 {
	ids := []uint32{}
	for _, m := range s.Members {
		ids = append(ids, m.NodeID)
	}
	slices.Sort(ids)
	return ids
}

func (s gtStatus) allHello() bool {
	for _, m := range s.Members {
		if !m.Hello {
			return false
		}
	}
	return true
}

// set returns node's set in sets, if it has one.
func set(sets []gtSet, node uint32) (gtSet, bool) {
	for _, r := range sets {
		if r.NodeID == node {
			return r, true
		}
	}
	return gtSet{}, false
}

// pending reports whether a set still asks for fencing.
func (r gtSet) pending() bool {
	return r.State == "waiting-for-cpg" || r.State == "waiting-for-cman" || r.State == "waiting-for-fencing"
}

// groupd asks the node's groupd for its status through group_tool.
func (c *daemonCluster) groupd(node int) (gtStatus, error) {
	out, code := c.exec(node, "group_tool", "status", "--json")
	if code != 0 {
		return gtStatus{}, fmt.Errorf("group_tool status on node%d: exit %d: %s", node, code, out)
	}
	var s gtStatus
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return gtStatus{}, fmt.Errorf("group_tool status on node%d: %v: %s", node, err, out)
	}
	return s, nil
}

// waitGroupd polls the node's groupd status until ok accepts it.
func (c *daemonCluster) waitGroupd(node int, desc string, ok func(gtStatus) bool) gtStatus {
	c.t.Helper()
	deadline := time.Now().Add(changeTimeout)
	var last gtStatus
	var err error
	for time.Now().Before(deadline) {
		last, err = c.groupd(node)
		if err == nil && ok(last) {
			return last
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("node%d: no %s within %v; last status %+v, error %v", node, desc, changeTimeout, last, err)
	return last
}

// procRunning reports whether groupd-node says the process (corosync or
// groupd) runs on the node.
func (c *daemonCluster) procRunning(node int, name string) bool {
	c.t.Helper()
	out, code := c.exec(node, "groupd-node", "status")
	if code != 0 {
		c.t.Fatalf("groupd-node status on node%d: exit %d: %s", node, code, out)
	}
	return strings.Contains(out, name+" running")
}

// waitProc polls until the process runs (or not) on the node.
func (c *daemonCluster) waitProc(node int, name string, running bool) {
	c.t.Helper()
	deadline := time.Now().Add(changeTimeout)
	for time.Now().Before(deadline) {
		if c.procRunning(node, name) == running {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("node%d: %s running=%v not reached within %v", node, name, running, changeTimeout)
}

// fenceEntry is one line of the shared fence log: the test agent's
// requests and outcomes, fence_tool's decisions, groupd-node's mounts and
// power-offs.
type fenceEntry struct {
	Index  int // line number, from 0: the log's order is the real order
	Time   time.Time
	Host   string // the node that wrote the line
	Prog   string
	Event  string
	Target string
	Text   string
}

func (e fenceEntry) String() string {
	return fmt.Sprintf("#%d %s %s %s %s %s: %s", e.Index, e.Time.Format("15:04:05.000"), e.Host, e.Prog, e.Event, e.Target, e.Text)
}

func (c *daemonCluster) fenceLog() []fenceEntry {
	c.t.Helper()
	f, err := os.Open(filepath.Join(c.shared, "fence.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	var log []fenceEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), "\t", 6)
		if len(fields) != 6 {
			c.t.Fatalf("fence log line %d is malformed: %q", len(log)+1, sc.Text())
		}
		tm, err := time.Parse(time.RFC3339Nano, fields[0])
		if err != nil {
			c.t.Fatalf("fence log line %d: %v", len(log)+1, err)
		}
		log = append(log, fenceEntry{Index: len(log), Time: tm, Host: fields[1], Prog: fields[2], Event: fields[3], Target: fields[4], Text: fields[5]})
	}
	if err := sc.Err(); err != nil {
		c.t.Fatal(err)
	}
	return log
}

// waitLog polls the fence log until an entry matches, and returns it.
func (c *daemonCluster) waitLog(desc string, match func(fenceEntry) bool) fenceEntry {
	c.t.Helper()
	deadline := time.Now().Add(changeTimeout)
	for time.Now().Before(deadline) {
		for _, e := range c.fenceLog() {
			if match(e) {
				return e
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("no %s in the fence log within %v:\n%s", desc, changeTimeout, dumpLog(c.fenceLog()))
	return fenceEntry{}
}

func dumpLog(log []fenceEntry) string {
	var b strings.Builder
	for _, e := range log {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

// find returns the entries that match.
func find(log []fenceEntry, match func(fenceEntry) bool) []fenceEntry {
	var out []fenceEntry
	for _, e := range log {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// fencedBy matches the test agent's report that asker fenced target.
func fencedBy(asker, target string) func(fenceEntry) bool {
	return func(e fenceEntry) bool {
		return e.Prog == agentProg && e.Event == "done" && e.Host == asker && e.Target == target
	}
}

// toolEvent matches a fence_tool decision on host about target.
func toolEvent(host, event, target string) func(fenceEntry) bool {
	return func(e fenceEntry) bool {
		return e.Prog == "fence_tool" && e.Host == host && e.Event == event && e.Target == target
	}
}

// fenceJoin runs `fence_tool join` on the node and fails the test unless it
// succeeds.
func (c *daemonCluster) fenceJoin(node int, args ...string) string {
	c.t.Helper()
	start := time.Now()
	out, code := c.exec(node, append([]string{"fence_tool"}, append(args, "join")...)...)
	c.t.Logf("fence_tool join on node%d: exit %d after %v:\n%s", node, code, time.Since(start).Round(time.Millisecond), out)
	if code != 0 {
		c.t.Fatalf("fence_tool join on node%d failed (exit %d)", node, code)
	}
	return out
}
