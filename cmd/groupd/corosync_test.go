package main

// The local-corosync tier: the real groupd and group_tool binaries, built
// once per run, against the private corosync corotest starts.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/groupd-go/groupd/cpg"
	"github.com/groupd-go/groupd/internal/corotest"
	"github.com/groupd-go/groupd/internal/groupd"
)

func TestMain(m *testing.M) {
	code := corotest.Main(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds groupd and group_tool once for all tests (with the race
// detector when the tests have it, so the daemon's races fail the tier too).
func binaries(t *testing.T) (groupdBin, toolBin string) {
	t.Helper()
	corotest.Skip(t)
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "groupd-bin-")
		if buildErr != nil {
			return
		}
		args := []string{"build", "-o", binDir + "/"}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/groupd-go/groupd/cmd/groupd", "github.com/groupd-go/groupd/cmd/group_tool")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build the binaries: %v", buildErr)
	}
	return filepath.Join(binDir, "groupd"), filepath.Join(binDir, "group_tool")
}

// daemonProc is a running groupd.
type daemonProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *corotest.Output
	socket string
	group  string
	tool   string
	done   chan struct{}
	err    error // from Wait, valid after done
}

type daemonOpts struct {
	sysfs  map[string]string // residual tree: path -> "" for a directory
	args   []string
	env    []string
	prefix []string // run groupd under this command (setpriv)
	chmod0 []string // sysfs paths made mode 0 after the tree is made
}

func startDaemon(t *testing.T, o daemonOpts) *daemonProc {
	t.Helper()
	bin, tool := binaries(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "sysroot")
	if err := os.MkdirAll(filepath.Join(root, "sys/kernel"), 0o755); err != nil { // as every sysfs has
		t.Fatal(err)
	}
	for rel, content := range o.sysfs {
		p := filepath.Join(root, rel)
		var err error
		if content == "" {
			err = os.MkdirAll(p, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range o.chmod0 {
		if err := os.Chmod(filepath.Join(root, rel), 0); err != nil {
			t.Fatal(err)
		}
	}
	d := &daemonProc{
		t:      t,
		log:    &corotest.Output{},
		socket: filepath.Join(dir, "run", "groupd.sock"),
		group:  corotest.GroupName(t),
		tool:   tool,
		done:   make(chan struct{}),
	}
	args := append([]string{"--debug", "--socket", d.socket, "--group", d.group, "--sysfs-root", root, "--config", "/dev/null",
		"--lock-file", filepath.Join(dir, "run", "groupd.lock")}, o.args...)
	argv := append(append([]string{}, o.prefix...), bin)
	argv = append(argv, args...)
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.Env = append(os.Environ(), o.env...)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("groupd output:\n%s", d.log.String())
		}
	})
	return d
}

// wait returns the exit code once the daemon exited, failing after timeout.
func (d *daemonProc) wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(timeout):
		d.t.Fatalf("groupd still running after %s", timeout)
	}
	var ee *exec.ExitError
	if errors.As(d.err, &ee) {
		return ee.ExitCode()
	}
	if d.err != nil {
		d.t.Fatalf("groupd: %v", d.err)
	}
	return 0
}

func (d *daemonProc) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// run runs group_tool against the daemon.
func (d *daemonProc) run(args ...string) (string, int) {
	d.t.Helper()
	cmd := exec.Command(d.tool, append([]string{"--socket", d.socket}, args...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out) + errb.String(), ee.ExitCode()
	case err != nil:
		d.t.Fatalf("group_tool %v: %v", args, err)
	}
	return string(out) + errb.String(), 0
}

// toolStatus is the part of `group_tool status --json` the tests read.
type toolStatus struct {
	NodeID  uint32 `json:"nodeid"`
	Name    string `json:"name"`
	PID     uint32 `json:"pid"`
	Phase   string `json:"phase"`
	Joined  bool   `json:"joined"`
	Quorate bool   `json:"quorate"`
	Members []struct {
		NodeID uint32 `json:"nodeid"`
		PID    uint32 `json:"pid"`
		Name   string `json:"name"`
		Hello  bool   `json:"hello"`
	} `json:"members"`
}

func (d *daemonProc) status() (toolStatus, error) {
	out, code := d.run("status", "--json")
	var st toolStatus
	if code != 0 {
		return st, fmt.Errorf("group_tool status exit %d: %s", code, out)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("group_tool status --json: %v: %s", err, out)
	}
	return st, nil
}

func eventually(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupWatch is the test's own member of the daemon's group: it sees every
// join, leave and message the group gets, in corosync's order.
type groupWatch struct {
	h  *cpg.Handle
	mu sync.Mutex
	ev []cpg.Event
}

func watchGroup(t *testing.T, group string) *groupWatch {
	t.Helper()
	h, err := cpg.New()
	if err != nil {
		t.Fatalf("cpg.New: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Join(ctx, group); err != nil {
		t.Fatalf("join %q: %v", group, err)
	}
	w := &groupWatch{h: h}
	go func() {
		for ev := range h.Events() {
			w.mu.Lock()
			w.ev = append(w.ev, ev)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *groupWatch) events() []cpg.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]cpg.Event{}, w.ev...)
}

// joined lists the processes other than the watcher that joined.
func (w *groupWatch) joined() []cpg.Address {
	var out []cpg.Address
	for _, ev := range w.events() {
		if c, ok := ev.(*cpg.ConfChg); ok {
			for _, j := range c.Joined {
				if int(j.PID) != os.Getpid() {
					out = append(out, j)
				}
			}
		}
	}
	return out
}

func (w *groupWatch) left(pid int) (cpg.Reason, bool) {
	for _, ev := range w.events() {
		if c, ok := ev.(*cpg.ConfChg); ok {
			for _, l := range c.Left {
				if int(l.PID) == pid {
					return l.Reason, true
				}
			}
		}
	}
	return 0, false
}

func (w *groupWatch) terminated() bool {
	for _, ev := range w.events() {
		if _, ok := ev.(*cpg.Terminated); ok {
			return true
		}
	}
	return false
}

// sayHello announces the watcher as a groupd of our test node would (with
// the members it has seen), and waits until the hello is delivered back
// to it.
func (w *groupWatch) sayHello(t *testing.T) {
	t.Helper()
	hello := groupd.Hello{Version: groupd.HelloVersion, NodeID: corotest.NodeID, Start: time.Now(), Members: []groupd.Process{}}
	for _, ev := range w.events() {
		if c, ok := ev.(*cpg.ConfChg); ok {
			hello.Members = hello.Members[:0]
			for _, m := range c.Members {
				hello.Members = append(hello.Members, groupd.Process{NodeID: m.NodeID, PID: m.PID})
			}
		}
	}
	if err := w.h.Multicast(context.Background(), cpg.Agreed, hello.Marshal()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the watcher's hello is delivered", func() bool { return w.messagesFrom(os.Getpid()) > 0 })
}

func (w *groupWatch) messagesFrom(pid int) int {
	n := 0
	for _, ev := range w.events() {
		if m, ok := ev.(*cpg.Message); ok && int(m.PID) == pid {
			n++
		}
	}
	return n
}

// notifySocket listens where groupd's sd_notify goes, on an abstract
// socket as systemd uses.
func notifySocket(t *testing.T) (env string, msgs func() []string) {
	t.Helper()
	name := fmt.Sprintf("@groupd-test-notify-%d-%d", os.Getpid(), time.Now().UnixNano())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("notify socket: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	var mu sync.Mutex
	var got []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, string(buf[:n]))
			mu.Unlock()
		}
	}()
	return "NOTIFY_SOCKET=" + name, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string{}, got...)
	}
}

func hasPrefixIn(msgs []string, prefix string) bool {
	for _, m := range msgs {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

// The daemon joins its group, tells systemd it is ready only then, answers
// the tool, and on SIGTERM leaves cleanly (reason leave) and exits 0.
func TestDaemonJoinsAnswersAndLeavesCleanly(t *testing.T) {
	corotest.Start(t)
	binaries(t)
	notifyEnv, notified := notifySocket(t)
	group := corotest.GroupName(t)
	w := watchGroup(t, group)
	d := startDaemon(t, daemonOpts{
		env: []string{notifyEnv},
		// A missing fence command only matters once residual state is
		// found: without any, the daemon warns and starts.
		args: []string{"--group", group, "--fence-command", "/nonexistent/fence_node {name}"},
	})
	pid := d.cmd.Process.Pid

	eventually(t, 10*time.Second, "the watcher sees groupd join and say hello", func() bool {
		for _, j := range w.joined() {
			if int(j.PID) == pid && w.messagesFrom(pid) > 0 {
				return true
			}
		}
		return false
	})
	// The watcher was in the group before groupd joined: until its hello
	// (which would name any run its daemon distrusts) is in, groupd cannot
	// tell about any node, its own included, and is not ready.
	if out, code := d.run("bypass", corotest.NodeName); code != 2 || !strings.Contains(out, "waits for the hellos of 1 member") {
		t.Errorf("bypass %s with the watcher silent: exit %d, want 2 (could not tell): %s", corotest.NodeName, code, out)
	}
	if hasPrefixIn(notified(), "READY=1") {
		t.Error("READY=1 while the hello of a member that was in the group before groupd is awaited")
	}
	w.sayHello(t)
	eventually(t, 10*time.Second, "groupd reports READY=1", func() bool { return hasPrefixIn(notified(), "READY=1") })
	// Ready means joined: corosync lists us in the group right away.
	cpgtool, err := corotest.Tool("corosync-cpgtool")
	if err != nil {
		t.Fatal(err)
	}
	if !cpgListsPid(cpgtool, group, pid) {
		t.Errorf("at READY=1, corosync-cpgtool does not show groupd pid %d in %q:\n%s", pid, group, cpgtool)
	}

	st, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Joined || st.Phase != "joined" || st.NodeID != corotest.NodeID || st.Name != corotest.NodeName || int(st.PID) != pid {
		t.Errorf("status = %+v, want joined as node %d (%s) pid %d", st, corotest.NodeID, corotest.NodeName, pid)
	}
	found := false
	for _, m := range st.Members {
		if int(m.PID) == pid && m.NodeID == corotest.NodeID && m.Hello {
			found = true
		}
	}
	if !found {
		t.Errorf("status members %+v do not include groupd pid %d with its hello", st.Members, pid)
	}

	ls, code := d.run("ls")
	if code != 0 || !strings.Contains(ls, "joined") || !strings.Contains(ls, corotest.NodeName) || !strings.Contains(ls, fmt.Sprint(pid)) {
		t.Errorf("group_tool ls (exit %d) does not show us joined:\n%s", code, ls)
	}
	if !strings.Contains(d.log.String(), "cannot be run") {
		t.Errorf("no warning about the missing fence command in the log")
	}
	if out, code := d.run("bypass", corotest.NodeName); code != 0 {
		t.Errorf("bypass %s: exit %d, want 0: %s", corotest.NodeName, code, out)
	}
	if out, code := d.run("dump"); code != 0 || !strings.Contains(out, "level=debug") {
		t.Errorf("dump (exit %d) has no debug lines:\n%s", code, out)
	}

	d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(10 * time.Second); code != 0 {
		t.Errorf("groupd exit status after SIGTERM = %d, want 0", code)
	}
	eventually(t, 5*time.Second, "the watcher sees groupd leave", func() bool { _, ok := w.left(pid); return ok })
	if r, _ := w.left(pid); r != cpg.ReasonLeave {
		t.Errorf("the other member saw groupd leave with reason %s, want leave", r)
	}
	if !hasPrefixIn(notified(), "STOPPING=1") {
		t.Errorf("no STOPPING=1 sent; got %q", notified())
	}
	if _, err := os.Stat(d.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("query socket still there after exit: %v", err)
	}
}

// cpgListsPid reports whether corosync-cpgtool's output shows pid in
// group. The tool prints a line with the group name, then one line per
// member, indented, starting with the pid.
func cpgListsPid(out, group string, pid int) bool {
	in := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
			in = f[0] == group
			continue
		}
		if in && f[0] == fmt.Sprint(pid) {
			return true
		}
	}
	return false
}

// SIGHUP (a session ending) is a clean leave like SIGTERM, not a death that
// gets the node killed by its peers.
func TestSighupLeavesCleanly(t *testing.T) {
	corotest.Start(t)
	notifyEnv, notified := notifySocket(t)
	group := corotest.GroupName(t)
	w := watchGroup(t, group)
	d := startDaemon(t, daemonOpts{env: []string{notifyEnv}, args: []string{"--group", group}})
	pid := d.cmd.Process.Pid
	eventually(t, 10*time.Second, "the watcher sees groupd join", func() bool {
		return slices.ContainsFunc(w.joined(), func(a cpg.Address) bool { return int(a.PID) == pid })
	})
	w.sayHello(t) // groupd waits for it before it is ready
	eventually(t, 10*time.Second, "groupd reports READY=1", func() bool { return hasPrefixIn(notified(), "READY=1") })
	d.cmd.Process.Signal(syscall.SIGHUP)
	if code := d.wait(10 * time.Second); code != 0 {
		t.Errorf("groupd exit status after SIGHUP = %d, want 0", code)
	}
	eventually(t, 5*time.Second, "the watcher sees groupd leave", func() bool { _, ok := w.left(pid); return ok })
	if r, _ := w.left(pid); r != cpg.ReasonLeave {
		t.Errorf("the other member saw groupd go with reason %s after SIGHUP, want leave", r)
	}
}

// A stop while corosync is frozen (stopped, not gone) does not hang:
// corosync's IPC has no timeout, so the leave and the closes would wait in
// C for as long as it stays stopped; groupd gives up on them and exits 1
// (the others will see it fail) within its leave timeout and a little.
func TestStopWithCorosyncFrozen(t *testing.T) {
	n := corotest.Start(t)
	notifyEnv, notified := notifySocket(t)
	d := startDaemon(t, daemonOpts{env: []string{notifyEnv}})
	eventually(t, 10*time.Second, "groupd reports READY=1", func() bool { return hasPrefixIn(notified(), "READY=1") })
	// Ready means our node is vouched for: what dlm.service's drop-in asks.
	if out, code := d.run("ready"); code != 0 {
		t.Errorf("at READY=1, group_tool ready exits %d: %s", code, out)
	}
	if err := syscall.Kill(n.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var thawOnce sync.Once
	thaw := func() { thawOnce.Do(func() { syscall.Kill(n.Pid(), syscall.SIGCONT) }) }
	t.Cleanup(thaw)
	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	code := d.wait(leaveTimeout + 3*closeTimeout + 5*time.Second)
	took := time.Since(start)
	thaw()
	if code != exitFailed {
		t.Errorf("exit status %d with corosync frozen, want %d", code, exitFailed)
	}
	if !strings.Contains(d.log.String(), "could not leave") {
		t.Errorf("no word on the leave that corosync did not answer")
	}
	t.Logf("groupd exited %s after SIGTERM", took.Round(time.Millisecond))
}

// fenceScript writes a self-fence command that records its arguments.
func fenceScript(t *testing.T) (cmd, record string) {
	dir := t.TempDir()
	record = filepath.Join(dir, "fenced")
	script := filepath.Join(dir, "fence")
	body := fmt.Sprintf("#!/bin/sh\necho \"$@\" > %s\necho fencing $1\n", record)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script + " {name} {nodeid}", record
}

// With a dlm lockspace left over, the default policy removes our node from
// the cluster, runs the fence command with our name, never joins, and exits
// non-zero.
func TestResidualStateFencesWithoutJoining(t *testing.T) {
	node := corotest.Start(t)
	binaries(t)
	group := corotest.GroupName(t)
	w := watchGroup(t, group)
	cmd, record := fenceScript(t)
	d := startDaemon(t, daemonOpts{
		sysfs: map[string]string{"sys/kernel/dlm/clvmd": ""},
		args:  []string{"--group", group, "--fence-command", cmd},
	})
	if code := d.wait(20 * time.Second); code != exitResidual {
		t.Errorf("groupd exit status %d with residual state, want %d", code, exitResidual)
	}
	waitExited(t, node, "our corosync was not killed")
	got, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the fence command did not run: %v", err)
	}
	if want := fmt.Sprintf("%s %d", corotest.NodeName, corotest.NodeID); strings.TrimSpace(string(got)) != want {
		t.Errorf("fence command args %q, want %q", got, want)
	}
	// The watcher was in the group from before groupd started until
	// corosync died; any join by groupd would have reached it first.
	eventually(t, 5*time.Second, "the watcher sees corosync go", w.terminated)
	if j := w.joined(); len(j) > 0 {
		t.Errorf("processes joined the group %q: %v; groupd must not join with residual state", group, j)
	}
	log := d.log.String()
	for _, want := range []string{"sys/kernel/dlm/clvmd", "fencing node1", "exited with status 0"} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not mention %q", want)
		}
	}
}

// waitExited fails t with why unless the test corosync exits within 10 s
// (groupd killed its node from the cluster).
func waitExited(t *testing.T, node *corotest.Node, why string) {
	t.Helper()
	select {
	case <-node.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal(why)
	}
}

// A fence command that does not exist is a clear error, and still no join.
func TestResidualStateMissingFenceCommand(t *testing.T) {
	node := corotest.Start(t)
	binaries(t)
	group := corotest.GroupName(t)
	w := watchGroup(t, group)
	d := startDaemon(t, daemonOpts{
		sysfs: map[string]string{"sys/fs/gfs2/c:fs/lock_module/proto_name": "lock_dlm\n"},
		args:  []string{"--group", group, "--fence-command", "/nonexistent/fence_node -O {name}"},
	})
	if code := d.wait(20 * time.Second); code != exitResidual {
		t.Errorf("groupd exit status %d, want %d", code, exitResidual)
	}
	if !strings.Contains(d.log.String(), "cannot fence node 1 (node1)") {
		t.Errorf("log has no clear error about the missing fence command")
	}
	waitExited(t, node, "our corosync was not killed; others could not fence us")
	eventually(t, 5*time.Second, "the watcher sees corosync go", w.terminated)
	if j := w.joined(); len(j) > 0 {
		t.Errorf("processes joined the group: %v", j)
	}
}

// A sysfs directory that cannot be read: refuse to start, never join,
// and leave corosync alone.
func TestUnreadableSysfsRefusesToStart(t *testing.T) {
	node := corotest.Start(t)
	binaries(t)
	cases := []struct {
		name   string
		sysfs  map[string]string
		prefix []string
		chmod0 []string
	}{
		{name: "not a directory", sysfs: map[string]string{"sys/kernel/dlm": "junk"}},
	}
	// Root reads mode-0 directories anyway; without the DAC capabilities it
	// gets EACCES as any daemon would.
	if sp, err := exec.LookPath("setpriv"); err == nil {
		cases = append(cases, struct {
			name   string
			sysfs  map[string]string
			prefix []string
			chmod0 []string
		}{
			name:   "permission denied",
			sysfs:  map[string]string{"sys/fs/gfs2": ""},
			prefix: []string{sp, "--bounding-set=-dac_override,-dac_read_search", "--"},
			chmod0: []string{"sys/fs/gfs2"},
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			group := corotest.GroupName(t)
			w := watchGroup(t, group)
			d := startDaemon(t, daemonOpts{sysfs: c.sysfs, args: []string{"--group", group}, prefix: c.prefix, chmod0: c.chmod0})
			if code := d.wait(10 * time.Second); code != exitResidual {
				t.Errorf("exit status %d, want %d", code, exitResidual)
			}
			if !strings.Contains(d.log.String(), "refusing to start") {
				t.Errorf("no clear refusal in the log")
			}
			if j := w.joined(); len(j) > 0 {
				t.Errorf("processes joined the group: %v", j)
			}
			if !node.Running() {
				t.Errorf("corosync was killed; an unreadable sysfs must only stop groupd")
			}
		})
	}
}

// Residual state found, and then a part of sysfs that cannot be read: what
// was found is reason enough, so the policy (here kick) is applied, not
// skipped as for a scan that found nothing before it failed.
func TestResidualFoundThenUnreadableSysfs(t *testing.T) {
	node := corotest.Start(t)
	binaries(t)
	group := corotest.GroupName(t)
	w := watchGroup(t, group)
	d := startDaemon(t, daemonOpts{
		sysfs: map[string]string{"sys/kernel/dlm/clvmd": "", "sys/fs/gfs2": "junk"},
		args:  []string{"--group", group, "--residual-policy", "kick"},
	})
	if code := d.wait(20 * time.Second); code != exitResidual {
		t.Errorf("exit status %d, want %d", code, exitResidual)
	}
	waitExited(t, node, "our corosync was not killed: the state found was not acted on")
	if log := d.log.String(); !strings.Contains(log, "sys/kernel/dlm/clvmd") || !strings.Contains(log, "did not finish") {
		t.Errorf("log does not name the state found and the unfinished scan:\n%s", log)
	}
	eventually(t, 5*time.Second, "the watcher sees corosync go", w.terminated)
	if j := w.joined(); len(j) > 0 {
		t.Errorf("processes joined the group: %v", j)
	}
}

// Corosync dying under a running daemon makes it exit non-zero within a
// second, its query socket gone.
func TestCorosyncGoneExitsQuickly(t *testing.T) {
	node := corotest.Start(t)
	notifyEnv, notified := notifySocket(t)
	d := startDaemon(t, daemonOpts{env: []string{notifyEnv}})
	eventually(t, 10*time.Second, "groupd is ready", func() bool { return hasPrefixIn(notified(), "READY=1") })
	if st, err := d.status(); err != nil || !st.Joined {
		t.Fatalf("before the kill: status %+v, %v; want joined", st, err)
	}
	node.Kill()
	gone := time.Now()
	// From the kill until the daemon is gone, the tool must never be
	// answered with a membership: only errors.
	polls := 0
	for d.running() && time.Since(gone) < 5*time.Second {
		out, code := d.run("status", "--json")
		polls++
		if code == 0 {
			var st toolStatus
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("status --json after corosync died answered %q: %v", out, err)
			}
			if st.Joined || len(st.Members) > 0 || st.Phase == "joined" {
				t.Errorf("%s after corosync died, status still reports a membership: %s", time.Since(gone), out)
			}
		}
	}
	code := d.wait(5 * time.Second)
	if took := time.Since(gone); took > time.Second {
		t.Errorf("groupd exited %s after corosync died, want within a second", took)
	}
	if code != exitFailed {
		t.Errorf("exit status %d after corosync died, want %d", code, exitFailed)
	}
	if !strings.Contains(d.log.String(), "lost corosync") || !strings.Contains(d.log.String(), "must be fenced before it rejoins") {
		t.Errorf("no clear log line about losing corosync, and that the node must be fenced:\n%s", d.log.String())
	}
	if _, err := os.Stat(d.socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("query socket still there after the daemon exited: %v", err)
	}
	t.Logf("%d status polls between the kill and the exit", polls)
}

// Policy stay: the daemon keeps running and answering, our node stays in
// the cluster, and it never joins.
func TestResidualStayPolicy(t *testing.T) {
	node := corotest.Start(t)
	notifyEnv, notified := notifySocket(t)
	group := corotest.GroupName(t)
	w := watchGroup(t, group)
	d := startDaemon(t, daemonOpts{
		sysfs: map[string]string{"sys/kernel/dlm/gfs0": ""},
		args:  []string{"--group", group, "--residual-policy", "stay"},
		env:   []string{notifyEnv},
	})
	eventually(t, 10*time.Second, "groupd reports READY=1", func() bool { return hasPrefixIn(notified(), "READY=1") })
	// systemctl status must say that ready does not mean joined here.
	ready := ""
	for _, m := range notified() {
		if strings.HasPrefix(m, "READY=1") {
			ready = m
		}
	}
	if !strings.Contains(ready, "\nSTATUS=") || !strings.Contains(ready, "stays OUT of the groupd group") {
		t.Errorf("READY=1 under policy stay comes with %q; want a STATUS saying we stay out of the group", ready)
	}
	st, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Joined || st.Phase != "staying-out" || !st.Quorate {
		t.Errorf("status = %+v, want phase staying-out, not joined, quorate", st)
	}
	if out, code := d.run("bypass", "1"); code != 2 {
		t.Errorf("bypass 1 from a daemon outside the group: exit %d, want 2: %s", code, out)
	}
	if !strings.Contains(d.log.String(), "NEVER join") {
		t.Errorf("the log does not say loudly that we stay out")
	}
	time.Sleep(500 * time.Millisecond)
	if !d.running() || !node.Running() {
		t.Fatalf("daemon running %v, corosync running %v; both must stay up", d.running(), node.Running())
	}
	cpgtool, err := corotest.Tool("corosync-cpgtool")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cpgtool, fmt.Sprint(d.cmd.Process.Pid)) {
		t.Errorf("corosync-cpgtool lists groupd pid %d:\n%s", d.cmd.Process.Pid, cpgtool)
	}
	if j := w.joined(); len(j) > 0 {
		t.Errorf("processes joined the group: %v", j)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(5 * time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}

// Corosync dying under a daemon that never joined the group (here it
// stays out for residual state) ends it with status 1, and the log does
// not speak as if other members had counted on us: it says the node holds
// residual state.
func TestCorosyncGoneBeforeJoin(t *testing.T) {
	node := corotest.Start(t)
	notifyEnv, notified := notifySocket(t)
	d := startDaemon(t, daemonOpts{
		sysfs: map[string]string{"sys/kernel/dlm/gfs0": ""},
		args:  []string{"--residual-policy", "stay"},
		env:   []string{notifyEnv},
	})
	eventually(t, 10*time.Second, "groupd reports READY=1", func() bool { return hasPrefixIn(notified(), "READY=1") })
	node.Kill()
	if code := d.wait(5 * time.Second); code != exitFailed {
		t.Errorf("exit status %d after corosync died, want %d", code, exitFailed)
	}
	log := d.log.String()
	if !strings.Contains(log, "holds residual dlm/gfs state and never joined") || strings.Contains(log, "must be fenced before it rejoins") {
		t.Errorf("log after losing corosync outside the group:\n%s", log)
	}
}

// The first signal does not cut a self-fence short; a second one ends the
// daemon at once, with the residual status 3 (the unit file does not
// restart on it: a restart would only kill the node and fence it again).
func TestSecondSignalForcesExit(t *testing.T) {
	corotest.Start(t)
	binaries(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "fencing")
	script := filepath.Join(dir, "slow-fence")
	body := fmt.Sprintf("#!/bin/sh\necho $$ > %s.tmp && mv %s.tmp %s\nexec sleep 30\n", marker, marker, marker)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The forced exit leaves the fence command behind; end it here.
		if b, err := os.ReadFile(marker); err == nil {
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	notifyEnv, notified := notifySocket(t)
	d := startDaemon(t, daemonOpts{
		sysfs: map[string]string{"sys/kernel/dlm/ls": ""},
		args:  []string{"--fence-command", script + " {name}", "--fence-timeout", "10m"},
		env:   []string{notifyEnv},
	})
	eventually(t, 10*time.Second, "the fence command runs", func() bool { _, err := os.Stat(marker); return err == nil })
	before := len(notified())
	d.cmd.Process.Signal(syscall.SIGTERM)
	// The signal is seen once it is logged; then the extension is sent.
	eventually(t, 10*time.Second, "the first signal is logged", func() bool {
		return strings.Contains(d.log.String(), "send it again to abandon the fence") || !d.running()
	})
	eventually(t, 10*time.Second, "groupd asks systemd for more time", func() bool {
		return slices.ContainsFunc(notified()[before:], func(m string) bool { return strings.HasPrefix(m, "EXTEND_TIMEOUT_USEC=") }) || !d.running()
	})
	if !d.running() {
		t.Fatalf("groupd exited on the first signal while fencing itself (status %d)", d.wait(time.Second))
	}
	// Stopping under systemd: it must ask for the fence's remaining time
	// (about 10 minutes, plus one), not live with TimeoutStopSec.
	var extended bool
	for _, m := range notified()[before:] {
		var usec int64
		if _, err := fmt.Sscanf(m, "EXTEND_TIMEOUT_USEC=%d", &usec); err == nil {
			if got := time.Duration(usec) * time.Microsecond; got < 10*time.Minute || got > 11*time.Minute {
				t.Errorf("after the first signal groupd asked systemd for %v more, want the fence's remaining 10m plus 1m", got)
			}
			extended = true
		}
	}
	if !extended {
		t.Errorf("no EXTEND_TIMEOUT_USEC after the first signal during the self-fence; notifications %q", notified()[before:])
	}
	// The operator is told that a second signal abandons the fence, not
	// that it shuts down cleanly.
	if log := d.log.String(); !strings.Contains(log, "send it again to abandon the fence") || strings.Contains(log, "shutting down cleanly") {
		t.Errorf("the first signal during the self-fence is not logged as such")
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(2 * time.Second); code != exitResidual {
		t.Errorf("exit status %d after the second signal, want %d", code, exitResidual)
	}
	if !strings.Contains(d.log.String(), "again: abandoning the self-fence") {
		t.Errorf("no log line for the abandoned fence")
	}
}

// One groupd per node, whatever its socket: a second one, which would take
// the first one's dlm/gfs state for residual state and fence the node,
// refuses to start before it looks at sysfs.
func TestSecondDaemonRefused(t *testing.T) {
	corotest.Start(t)
	notifyEnv, notified := notifySocket(t)
	first := startDaemon(t, daemonOpts{env: []string{notifyEnv}})
	eventually(t, 10*time.Second, "the first groupd reports READY=1", func() bool { return hasPrefixIn(notified(), "READY=1") })
	lock := filepath.Join(filepath.Dir(first.socket), "groupd.lock")

	// Its own socket, and residual state that would make it fence.
	second := startDaemon(t, daemonOpts{
		sysfs: map[string]string{"sys/kernel/dlm/ls": ""},
		args:  []string{"--lock-file", lock, "--fence-command", "false"},
	})
	if code := second.wait(10 * time.Second); code != exitFailed {
		t.Fatalf("a second groupd exited %d, want %d", code, exitFailed)
	}
	want := fmt.Sprintf("another groupd runs on this node: pid %d holds %s", first.cmd.Process.Pid, lock)
	if log := second.log.String(); !strings.Contains(log, want) || strings.Contains(log, "residual") {
		t.Errorf("the second groupd's log does not say %q, or it went on to the residual check:\n%s", want, log)
	}
	if !first.running() {
		t.Fatal("the first groupd stopped")
	}
	if _, err := os.Stat(second.socket); err == nil {
		t.Error("the second groupd opened its query socket")
	}
}
