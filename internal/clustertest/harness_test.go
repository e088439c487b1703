//go:build cluster

package clustertest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// clusterName keeps the tests' containers apart from a cluster someone
// brought up by hand (scripts/cluster's default is "groupd").
const clusterName = "groupd-test"

// Deadlines. Corosync notices a fault within token (1s) + consensus (1.2s);
// these leave room for a loaded 2-core machine.
const (
	readyTimeout  = 30 * time.Second
	changeTimeout = 30 * time.Second
)

var clusterScript string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest:", err)
		return 1
	}
	clusterScript = filepath.Join(root, "scripts", "cluster")
	if _, err := exec.LookPath("docker"); err != nil {
		fmt.Fprintln(os.Stderr, "clustertest: the cluster tier needs Docker:", err)
		return 1
	}
	// scripts/test-cluster builds the image first and says so; run alone,
	// the tests build it themselves so they never test a stale probe.
	if os.Getenv("GROUPD_IMAGE_BUILT") != "1" {
		if out, err := runCluster("build"); err != nil {
			fmt.Fprintf(os.Stderr, "clustertest: building the node image: %v\n%s", err, out)
			return 1
		}
	}
	code := m.Run()
	if os.Getenv("GROUPD_KEEP_CLUSTER") != "1" {
		if out, err := runCluster("down"); err != nil {
			fmt.Fprintf(os.Stderr, "clustertest: cluster down: %v\n%s", err, out)
		}
	}
	return code
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func clusterCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(clusterScript, args...)
	cmd.Env = append(os.Environ(), "GROUPD_CLUSTER="+clusterName)
	return cmd
}

func runCluster(args ...string) (string, error) {
	out, err := clusterCommand(args...).CombinedOutput()
	return string(out), err
}

// cluster runs scripts/cluster with args and fails the test if it fails.
func cluster(t *testing.T, args ...string) string {
	t.Helper()
	t.Logf("$ scripts/cluster %s", strings.Join(args, " "))
	out, err := runCluster(args...)
	if err != nil {
		t.Fatalf("scripts/cluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// up brings up a fresh n-node cluster for the test and takes it down after,
// logging the cluster's state and corosync's logs first if the test failed.
func up(t *testing.T, n int) {
	t.Helper()
	cluster(t, "down")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := runCluster("status")
			t.Logf("cluster status at failure:\n%s", out)
			for i := 1; i <= n; i++ {
				out, _ := runCluster("logs", fmt.Sprint(i), "--tail", "40")
				t.Logf("node%d log, last lines:\n%s", i, out)
			}
		}
		if os.Getenv("GROUPD_KEEP_CLUSTER") != "1" {
			runCluster("down")
		}
	})
	cluster(t, "up", fmt.Sprint(n))
}

// uniqueGroup returns a cpg group name no other test or run uses.
func uniqueGroup(t *testing.T) string {
	b := make([]byte, 4)
	rand.Read(b)
	name := strings.ToLower(strings.TrimPrefix(t.Name(), "Test"))
	return "ct-" + name + "-" + hex.EncodeToString(b)
}

// status runs `groupd-probe status` on the node.
func status(t *testing.T, node int) (Status, error) {
	t.Helper()
	out, err := clusterCommand("exec", fmt.Sprint(node), "groupd-probe", "status").Output()
	if err != nil {
		return Status{}, fmt.Errorf("groupd-probe status on node%d: %v: %s", node, err, out)
	}
	var st Status
	if err := json.Unmarshal(out, &st); err != nil {
		return Status{}, fmt.Errorf("groupd-probe status on node%d: %v: %s", node, err, out)
	}
	return st, nil
}

// waitStatus polls the node's status until ok accepts it.
func waitStatus(t *testing.T, node int, desc string, ok func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(changeTimeout)
	var last Status
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = status(t, node)
		if lastErr == nil && ok(last) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("node%d: no %s within %v; last status %+v, error %v", node, desc, changeTimeout, last, lastErr)
	return last
}

// watcher is a `groupd-probe watch` running in one node's container; it
// collects the events the probe prints.
type watcher struct {
	t     *testing.T
	node  int
	group string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	events  []Event
	notify  chan struct{} // a token whenever events grew or the probe exited
	exited  bool
	exitErr error
}

// watch starts a probe on node that joins group, and waits until it is
// ready (in the group, with cman's initial state).
func watch(t *testing.T, node int, group string) *watcher {
	t.Helper()
	w := &watcher{t: t, node: node, group: group, notify: make(chan struct{}, 1)}
	w.cmd = clusterCommand("exec", fmt.Sprint(node), "groupd-probe", "watch", group)
	var err error
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	w.cmd.Stderr = &stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("starting the probe on node%d: %v", node, err)
	}
	go w.read(stdout, &stderr)
	t.Cleanup(w.stop)
	w.waitFor(0, readyTimeout, "ready", func(e Event) bool { return e.Kind == KindReady })
	return w
}

func (w *watcher) read(stdout io.Reader, stderr *strings.Builder) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			e = Event{Kind: "unparsable", Error: sc.Text()}
		}
		w.mu.Lock()
		w.events = append(w.events, e)
		w.mu.Unlock()
		w.poke()
	}
	err := w.cmd.Wait()
	w.mu.Lock()
	w.exited = true
	w.exitErr = fmt.Errorf("%v; stderr: %q", err, stderr.String())
	w.mu.Unlock()
	w.poke()
}

func (w *watcher) poke() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// stop ends the probe by closing its standard input (it then leaves the
// group), and kills the local docker exec if it does not end in time.
func (w *watcher) stop() {
	w.stdin.Close()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		exited := w.exited
		w.mu.Unlock()
		if exited {
			return
		}
		select {
		case <-w.notify:
		case <-deadline:
			w.cmd.Process.Kill()
			return
		}
	}
}

// mark returns a cursor: waitFor(mark, ...) looks only at later events.
func (w *watcher) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// send multicasts a line to the group through the probe.
func (w *watcher) send(line string) {
	w.t.Helper()
	if _, err := io.WriteString(w.stdin, line+"\n"); err != nil {
		w.t.Fatalf("node%d probe: %v", w.node, err)
	}
}

// waitFor returns the first event at or after index from that match
// accepts, waiting up to timeout for it. It fails the test if none comes.
// The returned index is the event's; pass index+1 to look further.
func (w *watcher) waitFor(from int, timeout time.Duration, desc string, match func(Event) bool) (Event, int) {
	w.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		for i := from; i < len(w.events); i++ {
			if match(w.events[i]) {
				e := w.events[i]
				w.mu.Unlock()
				return e, i
			}
		}
		exited, exitErr := w.exited, w.exitErr
		w.mu.Unlock()
		if exited {
			w.t.Fatalf("node%d: probe exited (%v) before %s; events since #%d:\n%s", w.node, exitErr, desc, from, w.dump(from))
		}
		select {
		case <-w.notify:
		case <-deadline.C:
			w.t.Fatalf("node%d: no %s within %v; events since #%d:\n%s", w.node, desc, timeout, from, w.dump(from))
		}
	}
}

// since returns a copy of the events from index from on.
func (w *watcher) since(from int) []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events[from:])
}

func (w *watcher) dump(from int) string {
	var b strings.Builder
	for i, e := range w.since(from) {
		line, _ := json.Marshal(e)
		fmt.Fprintf(&b, "  #%d %s\n", from+i, line)
	}
	return b.String()
}

// watchAll starts a probe in group on each of nodes 1..n and waits until
// every one of them sees all n in the group.
func watchAll(t *testing.T, n int, group string) []*watcher {
	t.Helper()
	ws := make([]*watcher, n)
	for i := range ws {
		ws[i] = watch(t, i+1, group)
	}
	all := nodeRange(1, n)
	for _, w := range ws {
		w.waitFor(0, changeTimeout, fmt.Sprintf("confchg with nodes %v in %s", all, group), func(e Event) bool {
			return e.Kind == KindConfChg && slices.Equal(procNodes(e.Members), all)
		})
	}
	return ws
}

// nodeRange returns the node ids first..last.
func nodeRange(first, last int) []uint32 {
	var ids []uint32
	for i := first; i <= last; i++ {
		ids = append(ids, uint32(i))
	}
	return ids
}

// procNodes returns the sorted node ids of a process list.
func procNodes(ps []Proc) []uint32 {
	ids := make([]uint32, 0, len(ps))
	for _, p := range ps {
		ids = append(ids, p.NodeID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids []uint32) []uint32 {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

// hasProc reports whether ps has a process on node with the given reason.
func hasProc(ps []Proc, node uint32, reason string) bool {
	return slices.ContainsFunc(ps, func(p Proc) bool { return p.NodeID == node && p.Reason == reason })
}
