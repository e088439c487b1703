package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/groupd-go/groupd/internal/groupd"
	"github.com/groupd-go/groupd/internal/query"
)

// fake answers like a daemon on node 1 (alpha) with node 2 (beta) failed.
type fake struct {
	recovery []query.RecoverySet
	// outside: the daemon is not in the groupd group yet (joining), or,
	// with stayingOut, never will be (residual state, policy stay); noID:
	// it does not know its node id yet; leaving: it is shutting down, still
	// in the group; readyAfter: it vouches for its own node only from that
	// many bypass questions on.
	outside, stayingOut, noID, leaving bool
	readyAfter                         int32
	asked                              atomic.Int32
	// answerFor, when set, is the node every bypass answer names.
	answerFor uint32
}

var failed = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (f *fake) Status() query.Status {
	if f.noID {
		return query.Status{Phase: "starting"}
	}
	if f.stayingOut {
		return query.Status{NodeID: 1, NodeName: "alpha", PID: 4242, Phase: "staying-out", ClusterKnown: true, Quorate: true}
	}
	if f.outside {
		return query.Status{NodeID: 1, NodeName: "alpha", PID: 4242, Phase: "joining", ClusterKnown: true, Quorate: true}
	}
	phase := "joined"
	if f.leaving {
		phase = "leaving"
	}
	return query.Status{
		NodeID: 1, NodeName: "alpha", PID: 4242, Phase: phase, ClusterKnown: true, Quorate: true, Ring: "1.7",
		ClusterMembers: []uint32{1, 3}, Nodes: []query.Node{{NodeID: 1, Name: "alpha"}, {NodeID: 3, Name: "gamma"}},
		Joined:   true,
		Members:  []query.Member{{NodeID: 1, PID: 4242, Name: "alpha", Hello: true}, {NodeID: 3, PID: 77, Name: "gamma"}},
		Recovery: f.recovery,
	}
}

func (f *fake) Bypass(id uint32) query.Bypass {
	if f.answerFor != 0 {
		return query.Bypass{NodeID: f.answerFor, Known: true, Allowed: true, Reason: fmt.Sprintf("node %d may skip fencing", f.answerFor)}
	}
	if f.outside || f.stayingOut || f.asked.Add(1) <= f.readyAfter {
		return query.Bypass{NodeID: id, Reason: fmt.Sprintf("node %d must be fenced: this daemon is not in the groupd group, so it cannot tell", id)}
	}
	switch id {
	case 1:
		return query.Bypass{NodeID: 1, Known: true, Allowed: true, Reason: "node 1 may skip fencing"}
	case 3:
		return query.Bypass{NodeID: 3, Known: false, Reason: "node 3 must be fenced: this daemon cannot tell"}
	}
	return query.Bypass{NodeID: id, Known: true, Reason: "it is not a cluster member"}
}

func (f *fake) Ack(_ context.Context, id uint32) (query.RecoverySet, error) {
	if id == 2 && len(f.recovery) > 0 {
		s := f.recovery[0]
		s.State = "acked"
		f.recovery = nil
		return s, nil
	}
	return query.RecoverySet{}, fmt.Errorf("ack node %d: %w", id, groupd.ErrNoRecoverySet) // as the machine says it
}

func (f *fake) Dump() []string { return []string{"line one", "line two"} }

func (f *fake) Watch(ctx context.Context) (<-chan query.Event, error) {
	ch := make(chan query.Event, 2)
	ch <- query.Event{Time: failed, Level: "info", Kind: "member-joined", NodeID: 3, Text: "node 3 (gamma) joined"}
	close(ch)
	return ch, nil
}

func serve(t *testing.T) string {
	t.Helper()
	return serveSets(t, []query.RecoverySet{{NodeID: 2, Name: "beta", State: "waiting-for-fencing", Reason: "nodedown", Failed: failed, Ring: "1.6", Failures: 1}})
}

// serveSets serves a fake daemon with these recovery sets.
func serveSets(t *testing.T, sets []query.RecoverySet) string {
	t.Helper()
	return serveFake(t, &fake{recovery: sets})
}

func serveFake(t *testing.T, f *fake) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "groupd.sock")
	srv, err := query.Listen(query.Config{Path: path}, f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); srv.Close(); <-done })
	return path
}

func runTool(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

func TestBypassExitCodes(t *testing.T) {
	sock := serve(t)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bypass", "1"}, 0, "may skip fencing"},
		{[]string{"bypass", "alpha"}, 0, "may skip fencing"},
		{[]string{"bypass", "2"}, 1, "not a cluster member"},
		{[]string{"bypass", "beta"}, 1, "not a cluster member"}, // named by its recovery set
		{[]string{"bypass", "gamma"}, 2, "could not tell"},
		{[]string{"bypass", "delta"}, 2, "could not tell"},
		{[]string{"bypass", "0"}, 2, "could not tell"},
		{[]string{"bypass"}, 2, "could not tell"},
		{[]string{"bypass", "1", "2"}, 2, "could not tell"},
		// Help and flag errors are no answer: 0 would mean skip fencing.
		{[]string{"bypass", "--help"}, 2, "could not tell"},
		{[]string{"bypass", "-h", "1"}, 2, "could not tell"},
		{[]string{"-h", "bypass", "1"}, 2, "could not tell"},
		{[]string{"--help", "bypass", "1"}, 2, "could not tell"},
		{[]string{"bypass", "--bogus", "1"}, 2, "could not tell"},
		{[]string{"--bogus", "bypass", "1"}, 2, "could not tell"},
		{[]string{"bypass", "--timeout", "soon", "1"}, 2, "could not tell"},
		{[]string{"help", "bypass"}, 2, "could not tell"},
	}
	for _, tt := range tests {
		out, _, code := runTool(t, append([]string{"--socket", sock}, tt.args...)...)
		if code != tt.code || !strings.Contains(out, tt.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q; want exit %d and one line with %q", tt.args, code, out, tt.code, tt.want)
		}
	}
	out, _, code := runTool(t, "--socket", filepath.Join(t.TempDir(), "none.sock"), "bypass", "1")
	if code != 2 || !strings.HasPrefix(out, "could not tell") || strings.Count(out, "\n") != 1 {
		t.Errorf("bypass without a daemon: exit %d, stdout %q; want 2 and one line", code, out)
	}
}

// bypass --json: one object on stdout, the same exit statuses as the text.
func TestBypassJSON(t *testing.T) {
	sock := serve(t)
	tests := []struct {
		args           []string
		code           int
		id             uint32
		known, allowed bool
	}{
		{[]string{"bypass", "--json", "alpha"}, 0, 1, true, true},
		{[]string{"bypass", "--json", "2"}, 1, 2, true, false},
		{[]string{"bypass", "--json", "gamma"}, 2, 3, false, false},
		{[]string{"bypass", "--json", "delta"}, 2, 0, false, false},
		{[]string{"bypass", "--json"}, 2, 0, false, false},
		{[]string{"bypass", "--json", "--help"}, 2, 0, false, false},
		{[]string{"bypass", "--bogus", "--json", "3"}, 2, 0, false, false},
		{[]string{"--timeout=x", "bypass", "--json", "3"}, 2, 0, false, false},
		{[]string{"bypass", "--timeout=0s", "--json", "3"}, 2, 0, false, false},
		{[]string{"bypass", "--bogus", "--json=TRUE", "3"}, 2, 0, false, false},
		{[]string{"bypass", "--bogus", "-json=t", "3"}, 2, 0, false, false},
	}
	for _, tt := range tests {
		out, _, code := runTool(t, append([]string{"--socket", sock}, tt.args...)...)
		var b map[string]any
		if err := json.Unmarshal([]byte(out), &b); err != nil || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: stdout %q is not one JSON object: %v", tt.args, out, err)
			continue
		}
		if code != tt.code || b["nodeid"] != float64(tt.id) || b["known"] != tt.known || b["allowed"] != tt.allowed || b["reason"] == "" {
			t.Errorf("%v: exit %d, %v; want exit %d, nodeid %d, known %v, allowed %v and a reason", tt.args, code, b, tt.code, tt.id, tt.known, tt.allowed)
		}
	}
}

// ready: exit 0 only when the daemon vouches for its own node, which is
// what dlm.service's drop-in waits for; a daemon that answers but is not in
// the group is a definite no (1); no answer, help and usage errors are 2.
// Always one line (or one JSON object) on stdout.
func TestReady(t *testing.T) {
	joined := serve(t)
	outside := serveFake(t, &fake{outside: true})
	staying := serveFake(t, &fake{stayingOut: true})
	leaving := serveFake(t, &fake{leaving: true})
	noID := serveFake(t, &fake{noID: true})
	none := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		sock string
		args []string
		code int
		want string
	}{
		{joined, []string{"ready"}, 0, "this node, node 1 (alpha), is ready: node 1 may skip fencing"},
		{outside, []string{"ready"}, 1, "is not ready: node 1 must be fenced: this daemon is not in the groupd group"},
		{staying, []string{"ready"}, 1, "is not ready: it holds residual dlm/gfs state and stays out"},
		// Staying out lasts until a reboot: no point waiting.
		{staying, []string{"ready", "--wait", "1h"}, 1, "stays out"},
		{outside, []string{"ready", "--wait", "300ms"}, 1, "is not ready"},
		// Still in the group, and vouched for, but shutting down: no,
		// and no point waiting either.
		{leaving, []string{"bypass", "1"}, 0, "may skip fencing"},
		{leaving, []string{"ready", "--wait", "1h"}, 1, "is not ready: its groupd is leaving (shutting down)"},
		{joined, []string{"ready", "--wait", "-1s"}, 2, "could not tell whether this node is ready: usage: --wait"},
		{noID, []string{"ready"}, 2, "could not tell whether this node is ready: groupd does not know its node id"},
		{none, []string{"ready"}, 2, "could not tell whether this node is ready: no answer from groupd"},
		{joined, []string{"ready", "1"}, 2, "could not tell whether this node is ready: usage: group_tool ready"},
		{joined, []string{"ready", "--help"}, 2, "could not tell whether this node is ready"},
		{joined, []string{"--help", "ready"}, 2, "could not tell whether this node is ready"},
		{joined, []string{"help", "ready"}, 2, "could not tell whether this node is ready"},
		{joined, []string{"ready", "--timeout", "0s"}, 2, "could not tell whether this node is ready"},
	}
	for _, tt := range tests {
		out, _, code := runTool(t, append([]string{"--socket", tt.sock}, tt.args...)...)
		if code != tt.code || !strings.Contains(out, tt.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q; want exit %d and one line with %q", tt.args, code, out, tt.code, tt.want)
		}
	}
	for _, tt := range []struct {
		sock         string
		code         int
		known, ready bool
	}{{joined, 0, true, true}, {outside, 1, true, false}, {staying, 1, true, false}, {none, 2, false, false}} {
		out, _, code := runTool(t, "--socket", tt.sock, "ready", "--json")
		var b map[string]any
		if err := json.Unmarshal([]byte(out), &b); err != nil || code != tt.code || b["known"] != tt.known || b["allowed"] != tt.ready {
			t.Errorf("ready --json against %s: exit %d, %q (%v); want exit %d, known %v, allowed %v", filepath.Base(tt.sock), code, out, err, tt.code, tt.known, tt.ready)
		}
	}
}

// ready --wait asks again until the daemon vouches for its own node (here
// from the third question on), as dlm.service's drop-in does while groupd
// finishes starting.
func TestReadyWait(t *testing.T) {
	f := &fake{readyAfter: 2}
	sock := serveFake(t, f)
	out, _, code := runTool(t, "--socket", sock, "ready", "--wait", "1h")
	if code != 0 || !strings.Contains(out, "is ready") || f.asked.Load() != 3 {
		t.Errorf("exit %d after %d questions, stdout %q; want 0 after 3", code, f.asked.Load(), out)
	}
	f = &fake{readyAfter: 2}
	sock = serveFake(t, f)
	if _, _, code := runTool(t, "--socket", sock, "ready"); code != 1 || f.asked.Load() != 1 {
		t.Errorf("without --wait: exit %d after %d questions; want 1 after 1", code, f.asked.Load())
	}
}

func TestAck(t *testing.T) {
	sock := serve(t)
	out, _, code := runTool(t, "--socket", sock, "ack", "beta")
	if code != 0 || !strings.Contains(out, "node 2 (beta)") {
		t.Errorf("ack beta: exit %d, %q", code, out)
	}
	// Nothing to acknowledge has its own status, so fence_tool need not
	// match the daemon's English.
	_, errOut, code := runTool(t, "--socket", sock, "ack", "2")
	if code != 3 || !strings.Contains(errOut, "no recovery set") {
		t.Errorf("second ack: exit %d, stderr %q; want 3 with the daemon's message", code, errOut)
	}
	_, errOut, code = runTool(t, "--socket", filepath.Join(t.TempDir(), "none.sock"), "ack", "2")
	if code != 2 || errOut == "" {
		t.Errorf("ack without a daemon: exit %d, stderr %q; want 2", code, errOut)
	}
	if _, _, code = runTool(t, "--socket", sock, "ack"); code != 2 {
		t.Errorf("ack without NODE: exit %d, want 2", code)
	}
}

// ack --json prints the acknowledged set.
func TestAckJSON(t *testing.T) {
	sock := serve(t)
	out, _, code := runTool(t, "--socket", sock, "ack", "--json", "2")
	var set map[string]any
	if err := json.Unmarshal([]byte(out), &set); err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %q", code, err, out)
	}
	if set["nodeid"] != 2.0 || set["name"] != "beta" || set["state"] != "acked" {
		t.Errorf("acked set %v, want node 2 (beta) acked", set)
	}
}

// A set whose kill failed says so, in the table and in JSON.
func TestRecoveryKillError(t *testing.T) {
	path := serveSets(t, []query.RecoverySet{{NodeID: 2, Name: "beta", State: "waiting-for-fencing", Reason: "procdown",
		Failed: failed, Failures: 1, KillRequested: true, KillError: "corosync_cfg_kill_node node 2: try again"}})

	out, _, code := runTool(t, "--socket", path, "recovery")
	if code != 0 || !strings.Contains(out, "the kill of node 2 (beta) from the cluster failed: corosync_cfg_kill_node node 2: try again") {
		t.Errorf("recovery: exit %d:\n%s", code, out)
	}
	out, _, code = runTool(t, "--socket", path, "recovery", "--json")
	var sets []map[string]any
	if err := json.Unmarshal([]byte(out), &sets); err != nil || code != 0 || len(sets) != 1 {
		t.Fatalf("recovery --json: exit %d, %v: %s", code, err, out)
	}
	if sets[0]["kill_error"] != "corosync_cfg_kill_node node 2: try again" || sets[0]["kill_requested"] != true {
		t.Errorf("recovery --json: %v", sets[0])
	}
}

// A set recording several failed groupd runs of its node lists them, in
// the table and in JSON, and says when it holds fewer than failed.
func TestRecoveryRuns(t *testing.T) {
	started := failed.Add(-time.Hour)
	path := serveSets(t, []query.RecoverySet{{NodeID: 2, Name: "beta", State: "waiting-for-fencing", Reason: "procdown",
		Failed: failed, Failures: 2, PID: 41, Start: started,
		Runs: []query.Run{{PID: 41, Start: started}, {PID: 57}}, MoreRuns: true}})

	out, _, code := runTool(t, "--socket", path, "recovery")
	want := fmt.Sprintf("node 2 (beta) failed in groupd runs pid 41 (started %s), pid 57 (started -), and more than the daemon keeps",
		started.Local().Format("2006-01-02 15:04:05"))
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("recovery: exit %d, want %q in:\n%s", code, want, out)
	}
	out, _, code = runTool(t, "--socket", path, "recovery", "--json")
	var sets []struct {
		Runs []struct {
			PID   uint32    `json:"pid"`
			Start time.Time `json:"start"`
		} `json:"runs"`
		MoreRuns bool `json:"more_runs"`
	}
	if err := json.Unmarshal([]byte(out), &sets); err != nil || code != 0 || len(sets) != 1 {
		t.Fatalf("recovery --json: exit %d, %v: %s", code, err, out)
	}
	if r := sets[0].Runs; len(r) != 2 || r[0].PID != 41 || !r[0].Start.Equal(started) || r[1].PID != 57 || !sets[0].MoreRuns {
		t.Errorf("recovery --json runs %+v, more %v", r, sets[0].MoreRuns)
	}
}

func TestRecoveryJSON(t *testing.T) {
	sock := serve(t)
	// --socket may also follow the command.
	out, _, code := runTool(t, "recovery", "--json", "--socket", sock)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var sets []map[string]any
	if err := json.Unmarshal([]byte(out), &sets); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(sets) != 1 {
		t.Fatalf("sets %v", sets)
	}
	want := map[string]any{"nodeid": 2.0, "name": "beta", "reason": "nodedown", "state": "waiting-for-fencing"}
	for k, v := range want {
		if sets[0][k] != v {
			t.Errorf("%s = %v, want %v", k, sets[0][k], v)
		}
	}
	runTool(t, "--socket", sock, "ack", "2")
	out, _, _ = runTool(t, "--socket", sock, "recovery", "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("no sets: %q, want []", out)
	}
}

func TestStatusMembersLs(t *testing.T) {
	sock := serve(t)
	out, _, code := runTool(t, "--socket", sock, "status", "--json")
	var st jsonStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status --json: exit %d, %v: %s", code, err, out)
	}
	if st.NodeID != 1 || st.Name != "alpha" || !st.Joined || len(st.Members) != 2 || len(st.Recovery) != 1 || st.Closed == nil {
		t.Errorf("status %+v", st)
	}
	out, _, code = runTool(t, "--socket", sock, "members", "--json")
	var ms []map[string]any
	if err := json.Unmarshal([]byte(out), &ms); err != nil || code != 0 || len(ms) != 2 || ms[1]["nodeid"] != 3.0 || ms[1]["pid"] != 77.0 {
		t.Errorf("members --json: exit %d, %v: %s", code, err, out)
	}
	out, _, code = runTool(t, "--socket", sock, "ls")
	for _, want := range []string{"groupd on node 1 (alpha) pid 4242", "[1 3]", "gamma", "waiting-for-fencing", "beta"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("ls (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
	out, _, code = runTool(t, "--socket", sock, "status")
	if code != 0 || !strings.Contains(out, "1 waiting for fencing") {
		t.Errorf("status (exit %d):\n%s", code, out)
	}
	out, _, code = runTool(t, "--socket", sock, "dump")
	if code != 0 || out != "line one\nline two\n" {
		t.Errorf("dump (exit %d): %q", code, out)
	}
}

func TestWatch(t *testing.T) {
	sock := serve(t)
	out, _, code := runTool(t, "--socket", sock, "watch", "--json")
	var ev map[string]any
	line, _, _ := strings.Cut(out, "\n")
	if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["kind"] != "member-joined" || ev["nodeid"] != 3.0 {
		t.Errorf("watch --json first line %q: %v", line, err)
	}
	// The stream ended by the daemon is not a success.
	if code == 0 {
		t.Errorf("watch exit 0 after the daemon ended the stream")
	}
}

func TestUsage(t *testing.T) {
	if _, _, code := runTool(t); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	if _, errOut, code := runTool(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
	if _, _, code := runTool(t, "ls", "extra"); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
	if _, _, code := runTool(t, "ls", "--bogus"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	for _, d := range []string{"0s", "-1s"} {
		if _, errOut, code := runTool(t, "--timeout", d, "ls"); code != 2 || !strings.Contains(errOut, "--timeout must be positive") {
			t.Errorf("--timeout %s: exit %d, %q", d, code, errOut)
		}
	}
	// Outside bypass, asking for help is a success, and the usage goes
	// to stdout (group_tool --help | less).
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"ls", "--help"}} {
		if out, errOut, code := runTool(t, args...); code != 0 || !strings.Contains(out, "Usage: group_tool") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout only", args, code, out, errOut)
		}
	}
}

// Corosync's node names are free text: node 2 here is named "1", and
// node 1 exists. "1" alone could mean either, so bypass and ack refuse it
// (for bypass that is "could not tell", never the other node's answer);
// id:1 and name:1 say which.
func TestNumericNodeNames(t *testing.T) {
	sock := serveSets(t, []query.RecoverySet{{NodeID: 2, Name: "1", State: "waiting-for-fencing", Reason: "nodedown", Failed: failed, Failures: 1}})
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bypass", "1"}, 2, `"1" is node id 1 and also the name of node 2: say id:1 or name:1`},
		{[]string{"bypass", "id:1"}, 0, "node 1 may skip fencing"},
		{[]string{"bypass", "name:1"}, 1, "not a cluster member"},
		{[]string{"ack", "1"}, 2, "say id:1 or name:1"},
		{[]string{"ack", "name:1"}, 0, "fencing of node 2 (1) acknowledged"},
	}
	for _, tt := range tests {
		out, errOut, code := runTool(t, append([]string{"--socket", sock}, tt.args...)...)
		if code != tt.code || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
	}
}

// An answer about another node than the one asked is no answer: fence.
func TestBypassAnswerForAnotherNode(t *testing.T) {
	sock := serveFake(t, &fake{answerFor: 1})
	if out, _, code := runTool(t, "--socket", sock, "bypass", "id:3"); code != 2 || !strings.Contains(out, "groupd answered for node 1") {
		t.Errorf("bypass 3 answered for node 1: exit %d, %q; want 2", code, out)
	}
	if out, _, code := runTool(t, "--socket", sock, "bypass", "id:1"); code != 0 {
		t.Errorf("bypass 1: exit %d, %q; want 0", code, out)
	}
}
