package cpg_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/groupd-go/groupd/cpg"
	"github.com/groupd-go/groupd/cs"
	"github.com/groupd-go/groupd/internal/corotest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(corotest.MainWithExamples(m))
}

const (
	childEnv   = "CPG_TEST_CHILD"
	childGroup = "CPG_TEST_GROUP"
	childCount = "CPG_TEST_COUNT"
	childChurn = "CPG_TEST_CHURN"
)

// childMain is another process in the test group (corosync tells members
// apart by node id and pid, so one process joins a group once). It joins
// and says so on stdout. With CPG_TEST_COUNT set, it then sends its third
// of that many messages once three members are in, and prints the digest
// of the order it received them in. Otherwise it obeys lines on stdin:
// "leave" leaves the group; "send N" multicasts N 8-byte messages, 0 to
// N-1, and says "sent" once the last has come back to it; end of input
// ends the process.
func childMain() int {
	ctx := context.Background()
	if os.Getenv(childChurn) != "" {
		return churnMain(ctx, os.Getenv(childGroup))
	}
	h, err := cpg.New()
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	if err := h.Join(ctx, os.Getenv(childGroup)); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("joined")
	total, _ := strconv.Atoi(os.Getenv(childCount))
	if total == 0 {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if in.Text() == "leave" {
				if err := h.Leave(ctx); err != nil {
					fmt.Println("error", err)
				}
				fmt.Println("left")
			}
			var n uint64
			if _, err := fmt.Sscanf(in.Text(), "send %d", &n); err == nil {
				if err := sendNumbered(ctx, h, n); err != nil {
					fmt.Println("error", err)
				}
				fmt.Println("sent")
			}
		}
		return 0
	}
	r := newRecorder(h)
	go func() {
		waitMembers(r.confchgs, 3)
		for i := 0; i < total/3; i++ {
			if err := h.Multicast(ctx, cpg.Agreed, payload(fmt.Sprint("child", os.Getpid()), i)); err != nil {
				fmt.Println("error", err) // the parent's waitFor fails on it
				return
			}
		}
	}()
	fmt.Println("digest", r.digest(total))
	h.Close()
	return 0
}

// sendNumbered multicasts n 8-byte messages, 0 to n-1, and waits for the
// last to come back.
func sendNumbered(ctx context.Context, h *cpg.Handle, n uint64) error {
	buf := make([]byte, 8)
	for i := range n {
		binary.LittleEndian.PutUint64(buf, i)
		if err := h.Multicast(ctx, cpg.Agreed, buf); err != nil {
			return err
		}
	}
	for ev := range h.Events() {
		if m, ok := ev.(*cpg.Message); ok && m.PID == uint32(os.Getpid()) && binary.LittleEndian.Uint64(m.Data) == n-1 {
			return nil
		}
	}
	return h.Err()
}

type child struct {
	cmd   *exec.Cmd
	pid   uint32
	stdin io.WriteCloser
	out   *corotest.Output
}

func startChild(t *testing.T, group string, count int) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childGroup+"="+group, childCount+"="+strconv.Itoa(count))
	c := &child{cmd: cmd, out: &corotest.Output{}}
	cmd.Stdout, cmd.Stderr = c.out, os.Stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.pid = uint32(cmd.Process.Pid)
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c.waitFor(t, "joined")
	return c
}

// waitFor waits until the child has printed a line starting with word and
// returns the rest of that line.
func (c *child) waitFor(t *testing.T, word string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(c.out.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, word); ok {
				return strings.TrimSpace(rest)
			}
			if strings.HasPrefix(line, "error") {
				t.Fatalf("child: %s", line)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("child did not say %q: %q", word, c.out.String())
	return ""
}

func payload(sender string, i int) []byte {
	return []byte(fmt.Sprintf("%s/%d/%s", sender, i, strings.Repeat("x", i%50)))
}

// recorder drains a handle's events: confchgs to a channel, messages into
// a running digest of their order.
type recorder struct {
	h        *cpg.Handle
	confchgs chan *cpg.ConfChg
	msgs     chan *cpg.Message
}

func newRecorder(h *cpg.Handle) *recorder {
	r := &recorder{h: h, confchgs: make(chan *cpg.ConfChg, 100), msgs: make(chan *cpg.Message, 100000)}
	go func() {
		for ev := range h.Events() {
			switch e := ev.(type) {
			case *cpg.ConfChg:
				r.confchgs <- e
			case *cpg.Message:
				r.msgs <- e
			}
		}
		close(r.msgs)
	}()
	return r
}

func (r *recorder) digest(n int) string {
	sum := sha256.New()
	for i := 0; i < n; i++ {
		m, ok := <-r.msgs
		if !ok {
			return "stream ended early"
		}
		binary.Write(sum, binary.LittleEndian, m.NodeID)
		sum.Write(m.Data)
	}
	return fmt.Sprintf("%x", sum.Sum(nil))
}

func waitMembers(confchgs <-chan *cpg.ConfChg, n int) *cpg.ConfChg {
	for c := range confchgs {
		if len(c.Members) >= n {
			return c
		}
	}
	return nil
}

func newHandle(t *testing.T) *cpg.Handle {
	t.Helper()
	h, err := cpg.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// joinedHandle starts corosync if needed and returns a context for the
// test and a handle that joined a group of the test's own.
func joinedHandle(t *testing.T) (context.Context, *cpg.Handle) {
	t.Helper()
	corotest.Start(t)
	ctx := ctxT(t)
	h := newHandle(t)
	if err := h.Join(ctx, corotest.GroupName(t)); err != nil {
		t.Fatal(err)
	}
	return ctx, h
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next returns the next event of a type, failing after a timeout.
func next[E cpg.Event](t *testing.T, h *cpg.Handle) E {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-h.Events():
			if !ok {
				t.Fatalf("stream closed while waiting for %T (err %v)", *new(E), h.Err())
			}
			if e, ok := ev.(E); ok {
				return e
			}
		case <-timeout:
			var zero E
			t.Fatalf("no %T within 10s", zero)
		}
	}
}

func has(list []cpg.Address, nodeid, pid uint32, reason cpg.Reason) bool {
	for _, a := range list {
		if a.NodeID == nodeid && a.PID == pid && a.Reason == reason {
			return true
		}
	}
	return false
}

func TestNotRunning(t *testing.T) {
	corotest.Skip(t)
	corotest.Stop()
	t.Cleanup(func() { corotest.Start(t) }) // the examples, run after the tests, need it
	h, err := cpg.New()
	if err == nil {
		h.Close()
		t.Fatal("New succeeded without corosync")
	}
	if !errors.Is(err, cpg.ErrLibrary) || !strings.Contains(err.Error(), "is it running") {
		t.Fatalf("New without corosync: %v", err)
	}
}

func TestJoinGivesConfChg(t *testing.T) {
	corotest.Start(t)
	h := newHandle(t)
	group := corotest.GroupName(t)
	if err := h.Join(ctxT(t), group); err != nil {
		t.Fatal(err)
	}
	var first cpg.Event
	select {
	case first = <-h.Events():
	case <-time.After(10 * time.Second):
	}
	c, _ := first.(*cpg.ConfChg)
	pid := uint32(os.Getpid())
	if c == nil || c.Group != group || !has(c.Joined, corotest.NodeID, pid, cpg.ReasonJoin) ||
		len(c.Members) != 1 || c.Members[0].PID != pid || len(c.Left) != 0 {
		t.Fatalf("first event after join: %+v", first)
	}
	totem := next[*cpg.TotemConfChg](t, h)
	if len(totem.Members) != 1 || totem.Members[0] != corotest.NodeID || totem.Ring.Seq == 0 {
		t.Fatalf("ring after join: %+v", totem)
	}
	if err := h.Join(ctxT(t), group+"2"); !errors.Is(err, cpg.ErrExist) {
		t.Fatalf("second join on one handle: %v", err)
	}
	id, err := h.LocalGet(ctxT(t))
	if err != nil || id != corotest.NodeID {
		t.Fatalf("LocalGet = %d, %v", id, err)
	}
	max, err := h.MaxAtomicMsgSize()
	if err != nil || max < 64*1024 {
		t.Fatalf("MaxAtomicMsgSize = %d, %v", max, err)
	}
}

// This process and two children, all three sending, receive all messages
// in the same order.
func TestIdenticalOrder(t *testing.T) {
	corotest.Start(t)
	const total = 10002 // a multiple of three senders
	group := corotest.GroupName(t)
	ctx := ctxT(t)
	h := newHandle(t)
	r := newRecorder(h)
	if err := h.Join(ctx, group); err != nil {
		t.Fatal(err)
	}
	c1, c2 := startChild(t, group, total), startChild(t, group, total)
	waitMembers(r.confchgs, 3)
	errc := make(chan error, 1)
	go func() {
		for j := 0; j < total/3; j++ {
			if err := h.Multicast(ctx, cpg.Agreed, payload("parent", j)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	d := r.digest(total)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	d1, d2 := c1.waitFor(t, "digest"), c2.waitFor(t, "digest")
	if d != d1 || d != d2 || len(d) != 64 {
		t.Fatalf("orders differ: %s %s %s", d, d1, d2)
	}
}

func TestLeaveAndProcDown(t *testing.T) {
	ctx, h := joinedHandle(t)
	group, _ := h.Group()
	next[*cpg.ConfChg](t, h)
	// Corosync knows a member by node id and pid: one process, one
	// membership of a group.
	if err := newHandle(t).Join(ctx, group); !errors.Is(err, cpg.ErrExist) {
		t.Fatalf("second join of one group from one process: %v", err)
	}

	leaver := startChild(t, group, 0)
	if c := next[*cpg.ConfChg](t, h); !has(c.Joined, corotest.NodeID, leaver.pid, cpg.ReasonJoin) || len(c.Members) != 2 {
		t.Fatalf("child join: %+v", c)
	}
	fmt.Fprintln(leaver.stdin, "leave")
	c := next[*cpg.ConfChg](t, h)
	if !has(c.Left, corotest.NodeID, leaver.pid, cpg.ReasonLeave) || len(c.Members) != 1 {
		t.Fatalf("after leave: %+v", c)
	}

	victim := startChild(t, group, 0)
	if c := next[*cpg.ConfChg](t, h); !has(c.Joined, corotest.NodeID, victim.pid, cpg.ReasonJoin) {
		t.Fatalf("child join: %+v", c)
	}
	victim.cmd.Process.Signal(syscall.SIGKILL)
	c = next[*cpg.ConfChg](t, h)
	if !has(c.Left, corotest.NodeID, victim.pid, cpg.ReasonProcDown) || len(c.Members) != 1 {
		t.Fatalf("after SIGKILL of the child: %+v", c)
	}
	if c.Left[0].Reason.String() != "procdown" {
		t.Fatalf("reason prints as %q", c.Left[0].Reason)
	}

	if err := h.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	c = next[*cpg.ConfChg](t, h)
	if !has(c.Left, corotest.NodeID, uint32(os.Getpid()), cpg.ReasonLeave) {
		t.Fatalf("own leave: %+v", c)
	}
	if err := h.Leave(ctx); !errors.Is(err, cpg.ErrNotExist) {
		t.Fatalf("leave without a group: %v", err)
	}
}

// Leave right after Join works and keeps the stream in order: it waits,
// in Go, for corosync to deliver the join (libcpg would otherwise resend
// the leave in a loop while corosync answers CS_ERR_BUSY), and gives up
// with its context. A handle that left cannot join again (corosync would
// answer CS_ERR_EXIST, or CS_ERR_BUSY for ever for another group, which
// libcpg would resend in a loop): Join says so at once.
func TestJoinLeaveOnce(t *testing.T) {
	corotest.Start(t)
	ctx := ctxT(t)
	group := corotest.GroupName(t)
	me := uint32(os.Getpid())
	for i := 0; i < 10; i++ {
		h := newHandle(t)
		if err := h.Join(ctx, group); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
		if err := h.Leave(ctx); err != nil {
			t.Fatalf("leave %d: %v", i, err)
		}
		if c := next[*cpg.ConfChg](t, h); !has(c.Joined, corotest.NodeID, me, cpg.ReasonJoin) {
			t.Fatalf("handle %d: %+v, want our join", i, c)
		}
		if c := next[*cpg.ConfChg](t, h); !has(c.Left, corotest.NodeID, me, cpg.ReasonLeave) {
			t.Fatalf("handle %d: %+v, want our leave", i, c)
		}
		for _, g := range []string{group, group + "-other"} {
			short, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := h.Join(short, g)
			cancel()
			if !errors.Is(err, cpg.ErrExist) || !strings.Contains(err.Error(), "new Handle") {
				t.Fatalf("handle %d joins %q again after leaving: %v, want ErrExist and a word on a new Handle", i, g, err)
			}
		}
		h.Close()
	}

	// While the join is not yet delivered, Leave waits for it, and gives
	// up with its context.
	h := newHandle(t)
	if err := h.Join(ctx, group); err != nil {
		t.Fatal(err)
	}
	next[*cpg.ConfChg](t, h)
	cpg.SetJoining(h, true)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := h.Leave(short); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "join") {
		t.Fatalf("leave with the join pending: %v, want a wait for the join that ran out", err)
	}
	cpg.SetJoining(h, false)
	if err := h.Leave(ctx); err != nil {
		t.Fatalf("leave once the join was delivered: %v", err)
	}
}

// Outside a group, from New to Join and after Leave, Multicast says so
// (corosync would drop the message and libcpg would not tell), and Group
// says the handle is in none; in between, both show the group.
func TestMulticastOutsideGroup(t *testing.T) {
	corotest.Start(t)
	ctx := ctxT(t)
	group := corotest.GroupName(t)
	h := newHandle(t)
	outside := func(when string) {
		t.Helper()
		if g, in := h.Group(); in || g != "" {
			t.Errorf("%s: Group() = %q, %v; want none", when, g, in)
		}
		// Messages libcpg sends without waiting for an answer (a
		// fragmented one gets corosync's refusal anyway).
		for _, size := range []int{5, 64 << 10} {
			err := h.Multicast(ctx, cpg.Agreed, make([]byte, size))
			if !errors.Is(err, cpg.ErrNotExist) || !strings.Contains(err.Error(), "not in a group") {
				t.Errorf("%s: Multicast of %d bytes: %v; want ErrNotExist", when, size, err)
			}
		}
	}
	outside("before Join")
	if err := h.Join(ctx, group); err != nil {
		t.Fatal(err)
	}
	if g, in := h.Group(); !in || g != group {
		t.Errorf("joined: Group() = %q, %v; want %q", g, in, group)
	}
	if err := h.Multicast(ctx, cpg.Agreed, []byte("in")); err != nil {
		t.Fatal(err)
	}
	if m := next[*cpg.Message](t, h); string(m.Data) != "in" {
		t.Fatalf("first message %q, want the one sent while in the group", m.Data)
	}
	if err := h.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	outside("after Leave")
	if c := next[*cpg.ConfChg](t, h); !has(c.Left, corotest.NodeID, uint32(os.Getpid()), cpg.ReasonLeave) {
		t.Fatalf("after the message: %+v, want our leave", c)
	}
}

// A fragmented message whose sending a membership change interrupts
// (corosync refuses the rest with CS_ERR_INTERRUPT) is sent again whole:
// while other processes keep joining the group and going, every Multicast
// of a 3 MiB message succeeds, and each message arrives once, intact and
// in order.
func TestLargeMulticastAcrossMembershipChanges(t *testing.T) {
	corotest.Start(t)
	// The test ends on events, not on time: it sends at least minCount
	// messages, and on until the group has changed minChanges times and
	// minResends messages had to be sent again. The
	// deadline only catches a hang, and is generous because a loaded
	// machine running -race moves 3 MiB messages slowly.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h := newHandle(t)
	group := corotest.GroupName(t)
	if err := h.Join(ctx, group); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	churned := make(chan error, 1)
	go func() { churned <- churn(ctx, group, stop) }()
	const size, minCount, minChanges, minResends, maxCount = 3 << 20, 50, 20, 5, 5000
	msg := func(i int) []byte {
		b := bytes.Repeat([]byte{byte(i)}, size)
		binary.BigEndian.PutUint32(b, uint32(i))
		return b
	}
	var sent atomic.Int64
	var changes atomic.Int64
	senderDone := make(chan error, 1)
	go func() {
		for i := 0; i < maxCount; i++ {
			if err := h.Multicast(ctx, cpg.Agreed, msg(i)); err != nil {
				senderDone <- fmt.Errorf("message %d: %w", i, err)
				return
			}
			sent.Add(1)
			if i+1 >= minCount && changes.Load() >= minChanges && cpg.Interrupted(h) >= minResends {
				break
			}
		}
		senderDone <- nil
	}()
	got := 0
	sending := true
	for sending || int64(got) < sent.Load() {
		select {
		case ev := <-h.Events():
			switch e := ev.(type) {
			case *cpg.ConfChg:
				changes.Add(1)
			case *cpg.Message:
				if !bytes.Equal(e.Data, msg(got)) {
					t.Fatalf("message %d came back as %d bytes starting %x", got, len(e.Data), e.Data[:min(8, len(e.Data))])
				}
				got++
			case *cpg.Terminated:
				t.Fatal(e.Err)
			}
		case err := <-senderDone:
			if err != nil {
				t.Fatal(err)
			}
			sending = false
		case err := <-churned: // it ends only when stopped, or failing
			t.Fatalf("the handles joining the group: %v", err)
		case <-ctx.Done():
			t.Fatalf("%d of %d sent messages back (sender finished: %t; %d membership changes, %d resends)", got, sent.Load(), !sending, changes.Load(), cpg.Interrupted(h))
		}
	}
	close(stop)
	if err := <-churned; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages, %d membership changes, %d resends", got, changes.Load(), cpg.Interrupted(h))
	if changes.Load() < minChanges || cpg.Interrupted(h) < minResends {
		t.Errorf("%d membership changes and %d resends while %d messages went out: the test did not exercise interrupted messages enough", changes.Load(), cpg.Interrupted(h), got)
	}
}

// churn runs a child process that joins group and leaves it again and
// again (churnMain) until stop is closed.
func churn(ctx context.Context, group string, stop <-chan struct{}) error {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childGroup+"="+group, childChurn+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-stop:
		stdin.Close()
		if err := <-exited; err != nil || out.String() != "" {
			return fmt.Errorf("child: %q, %v", out.String(), err)
		}
		return nil
	case err := <-exited:
		return fmt.Errorf("child ended early: %q, %v", out.String(), err)
	}
}

// churnMain, in a child process, has a new handle join the group, waits
// for the join to be delivered and closes the handle (a procdown), over
// and over until stdin ends. A new handle each time: corosync lets a
// connection join once. It prints only errors.
func churnMain(ctx context.Context, group string) int {
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	for {
		select {
		case <-done:
			return 0
		case <-time.After(20 * time.Millisecond): // let some fragments through between changes
		}
		if err := joinAndClose(ctx, group); err != nil {
			fmt.Println("error", err)
			return 1
		}
	}
}

func joinAndClose(ctx context.Context, group string) error {
	h, err := cpg.New()
	if err != nil {
		return err
	}
	defer h.Close()
	// Until corosync has processed the previous handle's disconnect, it
	// still counts this process in the group and answers CS_ERR_EXIST.
	for {
		err := h.Join(ctx, group)
		if err == nil {
			break
		}
		if !errors.Is(err, cs.ErrExist) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	for {
		select {
		case ev, ok := <-h.Events():
			if !ok {
				return fmt.Errorf("stream closed before the join: %w", h.Err())
			}
			if c, ok := ev.(*cpg.ConfChg); ok && slices.ContainsFunc(c.Joined, func(a cpg.Address) bool { return a.PID == uint32(os.Getpid()) }) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// corosync-cpgtool lists groups as a name line followed by "pid nodeid"
// lines; parse it into group -> set of "nodeid/pid".
func cpgtoolMembers(t *testing.T) map[string]map[string]bool {
	out, err := corotest.Tool("corosync-cpgtool", "-e")
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]map[string]bool{}
	var cur string
	for _, line := range strings.Split(out, "\n")[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, " ") {
			cur = strings.TrimRight(line, "\x00") // -e: names unescaped, NULs as they are
			cur = strings.TrimSpace(cur)
			groups[cur] = map[string]bool{}
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 2 {
			groups[cur][f[1]+"/"+f[0]] = true
		}
	}
	return groups
}

func TestMembershipAgreesWithCpgtool(t *testing.T) {
	ctx, h := joinedHandle(t)
	group, _ := h.Group()
	child := startChild(t, group, 0)
	waitMembers(newRecorder(h).confchgs, 2)

	want := map[string]bool{
		fmt.Sprintf("%d/%d", corotest.NodeID, os.Getpid()): true,
		fmt.Sprintf("%d/%d", corotest.NodeID, child.pid):   true,
	}
	tool := cpgtoolMembers(t)[group]
	members, err := h.MembershipGet(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range members {
		got[fmt.Sprintf("%d/%d", m.NodeID, m.PID)] = true
	}
	iter, err := h.GroupMembers(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	fromIter := map[string]bool{}
	for _, m := range iter {
		if m.Group != group {
			t.Errorf("iteration of %q gave group %q", group, m.Group)
		}
		fromIter[fmt.Sprintf("%d/%d", m.NodeID, m.PID)] = true
	}
	all, err := h.Processes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fromAll := map[string]bool{}
	for _, m := range all {
		if m.Group == group {
			fromAll[fmt.Sprintf("%d/%d", m.NodeID, m.PID)] = true
		}
	}
	for name, set := range map[string]map[string]bool{"corosync-cpgtool": tool, "MembershipGet": got, "GroupMembers": fromIter, "Processes": fromAll} {
		if fmt.Sprint(set) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", name, set, want)
		}
	}
	names, err := h.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	toolGroups := cpgtoolMembers(t)
	if len(names) != len(toolGroups) {
		t.Errorf("Groups %q, corosync-cpgtool %v", names, toolGroups)
	}
	for _, n := range names {
		if _, ok := toolGroups[strings.TrimRight(n, "\x00")]; !ok {
			t.Errorf("group %q is not in corosync-cpgtool's list", n)
		}
	}
}

// Pacemaker's group names end in a NUL byte; they are joined and reported
// as they are.
func TestTrailingNUL(t *testing.T) {
	corotest.Start(t)
	ctx := ctxT(t)
	group := corotest.GroupName(t) + "\x00"
	h := newHandle(t)
	if err := h.Join(ctx, group); err != nil {
		t.Fatal(err)
	}
	if c := next[*cpg.ConfChg](t, h); c.Group != group {
		t.Fatalf("confchg group %q, want %q", c.Group, group)
	}
	if err := h.Multicast(ctx, cpg.Agreed, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m := next[*cpg.Message](t, h); m.Group != group || string(m.Data) != "hi" {
		t.Fatalf("message %+v", m)
	}
	names, err := h.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range names {
		found = found || n == group
	}
	if !found {
		t.Fatalf("Groups() = %q lacks %q", names, group)
	}
}

func TestLargeAndScatteredMessages(t *testing.T) {
	ctx, h := joinedHandle(t)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	if err := h.Multicast(ctx, cpg.Agreed, big); err != nil {
		t.Fatal(err)
	}
	if m := next[*cpg.Message](t, h); !bytes.Equal(m.Data, big) || m.PID != uint32(os.Getpid()) {
		t.Fatalf("1 MiB message came back as %d bytes, equal=%v", len(m.Data), bytes.Equal(m.Data, big))
	}
	parts := [][]byte{[]byte("a"), {}, []byte("bc"), big[:3000]}
	if err := h.Multicast(ctx, cpg.FIFO, parts...); err != nil {
		t.Fatal(err)
	}
	if m := next[*cpg.Message](t, h); !bytes.Equal(m.Data, bytes.Join(parts, nil)) {
		t.Fatalf("scattered message came back as %q...", m.Data[:min(10, len(m.Data))])
	}
	if err := h.Multicast(ctx, cpg.Agreed); err != nil {
		t.Fatal(err)
	}
	if m := next[*cpg.Message](t, h); len(m.Data) != 0 {
		t.Fatalf("empty message came back with %d bytes", len(m.Data))
	}
	// A large message behind an empty buffer (which libcpg would send as
	// a fragment of its own) and empty buffers only.
	if err := h.Multicast(ctx, cpg.Agreed, nil, big, []byte{}); err != nil {
		t.Fatal(err)
	}
	if m := next[*cpg.Message](t, h); !bytes.Equal(m.Data, big) {
		t.Fatalf("1 MiB message behind an empty buffer came back as %d bytes", len(m.Data))
	}
	if err := h.Multicast(ctx, cpg.Agreed, nil, []byte{}); err != nil {
		t.Fatal(err)
	}
	if m := next[*cpg.Message](t, h); len(m.Data) != 0 {
		t.Fatalf("message of empty buffers came back with %d bytes", len(m.Data))
	}
}

// Messages whose sizes change from one to the next, in bursts of one
// size and mixed, from empty to fragmented, arrive whole and in order,
// also when some of their buffers are handed back for reuse and others
// are not.
func TestChangingSizes(t *testing.T) {
	ctx, h := joinedHandle(t)
	rng := rand.New(rand.NewPCG(1, 2))
	classes := []int{0, 1, 100, 1000, 1025, 5000, 64 << 10, 100 << 10, 1 << 20, 3<<20 + 7}
	var sizes []int
	for _, n := range classes { // bursts of one size
		for range 40 {
			sizes = append(sizes, n)
		}
	}
	for range 400 { // mixed
		sizes = append(sizes, classes[rng.IntN(len(classes))])
	}
	content := func(i, n int) []byte {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i + j*31)
		}
		return b
	}
	errc := make(chan error, 1)
	go func() {
		for i, n := range sizes {
			if err := h.Multicast(ctx, cpg.Agreed, content(i, n)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i, n := range sizes {
		m := next[*cpg.Message](t, h)
		if !bytes.Equal(m.Data, content(i, n)) {
			t.Fatalf("message %d of %d bytes came back as %d bytes that differ", i, n, len(m.Data))
		}
		if i%3 == 0 {
			m.Release()
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Calls that talk to corosync, from several goroutines at once while
// messages flow: each gets its own answer and the messages arrive whole
// and in order (libcpg leaves serializing them to its caller).
func TestConcurrentCalls(t *testing.T) {
	corotest.Start(t)
	ctx := ctxT(t)
	h := newHandle(t)
	group := corotest.GroupName(t)
	if err := h.Join(ctx, group); err != nil {
		t.Fatal(err)
	}
	// The membership lists us once our join's confchg is delivered.
	next[*cpg.ConfChg](t, h)
	const n = 3000
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(buf, uint32(i))
			if err := h.Multicast(ctx, cpg.Agreed, buf); err != nil {
				errs <- fmt.Errorf("multicast %d: %w", i, err)
				return
			}
		}
	}()
	self := uint32(os.Getpid())
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ms, err := h.MembershipGet(ctx, group)
				if err != nil || len(ms) != 1 || ms[0].PID != self {
					errs <- fmt.Errorf("MembershipGet = %v, %v; want ourselves alone", ms, err)
					return
				}
				if id, err := h.LocalGet(ctx); err != nil || id != corotest.NodeID {
					errs <- fmt.Errorf("LocalGet = %d, %v", id, err)
					return
				}
				ps, err := h.GroupMembers(ctx, group)
				if err != nil || len(ps) != 1 || ps[0].PID != self {
					errs <- fmt.Errorf("GroupMembers = %v, %v; want ourselves alone", ps, err)
					return
				}
				if size, err := h.MaxAtomicMsgSize(); err != nil || size == 0 {
					errs <- fmt.Errorf("MaxAtomicMsgSize = %d, %v", size, err)
					return
				}
			}
		}()
	}
	for i := 0; i < n; {
		select {
		case err := <-errs:
			t.Fatal(err)
		case ev := <-h.Events():
			m, ok := ev.(*cpg.Message)
			if !ok {
				continue
			}
			if got := binary.LittleEndian.Uint32(m.Data); len(m.Data) != 2048 || got != uint32(i) {
				t.Fatalf("message %d came back as %d bytes numbered %d", i, len(m.Data), got)
			}
			i++
		case <-time.After(20 * time.Second):
			t.Fatalf("stuck after %d of %d messages", i, n)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// 100,000 messages sent while the consumer does not read: none is lost,
// none reordered, and each keeps its own bytes.
func TestSlowConsumer(t *testing.T) {
	ctx, h := joinedHandle(t)
	const n = 100000
	buf := make([]byte, 8)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint64(buf, uint64(i))
		if err := h.Multicast(ctx, cpg.Agreed, buf); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for h.Pending() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := h.Pending(); p < n {
		t.Fatalf("%d of %d messages queued after 30 s without reading, want all of them", p, n)
	}
	i := 0
	for i < n {
		m := next[*cpg.Message](t, h)
		if got := binary.LittleEndian.Uint64(m.Data); got != uint64(i) {
			t.Fatalf("message %d carries %d", i, got)
		}
		i++
	}
}

// A Multicast delivers at most InlineDispatchMax of the events waiting for
// its handle before it returns, however many there are (here another
// member's burst, while the dispatch goroutine is held); the dispatch
// goroutine delivers the rest, all in corosync's order.
func TestMulticastDispatchBounded(t *testing.T) {
	ctx, h := joinedHandle(t)
	group, _ := h.Group()
	c := startChild(t, group, 0)
	for len(next[*cpg.ConfChg](t, h).Members) < 2 {
	}
	release := cpg.HoldDispatch(h)
	defer release()
	const n = 1000
	fmt.Fprintf(c.stdin, "send %d\n", n)
	// Corosync hands a message to the group's members on this node
	// together: once the child has its last one, h's are waiting for h.
	c.waitFor(t, "sent")
	if err := h.Multicast(ctx, cpg.Agreed, []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if p := h.Pending(); p == 0 || p > cpg.InlineDispatchMax {
		t.Errorf("Multicast delivered %d events itself, want 1 to %d", p, cpg.InlineDispatchMax)
	}
	release()
	for i := range n {
		m := next[*cpg.Message](t, h)
		if len(m.Data) != 8 || binary.LittleEndian.Uint64(m.Data) != uint64(i) {
			t.Fatalf("message %d is %q", i, m.Data)
		}
	}
	if m := next[*cpg.Message](t, h); string(m.Data) != "mine" {
		t.Fatalf("last message is %q, want ours", m.Data)
	}
}

func TestCorosyncGoesAway(t *testing.T) {
	node := corotest.Start(t)
	ctx := ctxT(t)
	h := newHandle(t)
	if err := h.Join(ctx, corotest.GroupName(t)); err != nil {
		t.Fatal(err)
	}
	next[*cpg.ConfChg](t, h)
	node.Kill()
	t.Cleanup(func() { corotest.Start(t) }) // the examples, run after the tests, need it
	killed := time.Now()
	term := next[*cpg.Terminated](t, h)
	if since := time.Since(killed); since > time.Second {
		t.Errorf("terminal error after %v", since)
	}
	if !errors.Is(term.Err, cpg.ErrLibrary) || h.Err() == nil {
		t.Errorf("terminal error %v, Err() %v", term.Err, h.Err())
	}
	select {
	case _, ok := <-h.Events():
		if ok {
			t.Fatal("event after Terminated")
		}
	case <-time.After(time.Second):
		t.Fatal("stream not closed after Terminated")
	}
	before := corotest.CPUTime()
	time.Sleep(time.Second)
	if used := corotest.CPUTime() - before; used > 100*time.Millisecond {
		t.Fatalf("process used %v of CPU in the second after corosync died: spinning", used)
	}
	if err := h.Multicast(ctx, cpg.Agreed, []byte("x")); err == nil {
		t.Fatal("multicast succeeded with corosync gone")
	}
	if err := h.Close(); err != nil {
		t.Fatalf("Close after corosync died: %v", err)
	}
}

func TestCloseWhileDelivering(t *testing.T) {
	ctx, h := joinedHandle(t)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			if err := h.Multicast(ctx, cpg.Agreed, []byte("flood")); err != nil {
				if !errors.Is(err, cpg.ErrClosed) {
					t.Errorf("multicast during Close: %v", err)
				}
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		n := 0
		for range h.Events() {
			n++
			if n == 1000 {
				go h.Close()
			}
		}
	}()
	wg.Wait()
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := h.Join(ctx, "x"); !errors.Is(err, cpg.ErrClosed) {
		t.Fatalf("Join after Close: %v", err)
	}
	if err := h.Leave(ctx); !errors.Is(err, cpg.ErrClosed) {
		t.Fatalf("Leave after Close: %v", err)
	}
	if _, err := h.MembershipGet(ctx, "x"); !errors.Is(err, cpg.ErrClosed) {
		t.Fatalf("MembershipGet after Close: %v", err)
	}
	if _, err := h.Groups(ctx); !errors.Is(err, cpg.ErrClosed) {
		t.Fatalf("Groups after Close: %v", err)
	}
	if _, err := h.MaxAtomicMsgSize(); !errors.Is(err, cpg.ErrClosed) {
		t.Fatalf("MaxAtomicMsgSize after Close: %v", err)
	}
}

// A panic inside the binding's deliver callback (a bug of ours, simulated
// here) ends the stream with it: the messages before it are delivered,
// none after it, and the last event says what happened (wrapping the
// panic's value when that is an error).
func TestCallbackPanicEndsStream(t *testing.T) {
	ctx, h := joinedHandle(t)
	next[*cpg.TotemConfChg](t, h)
	errSimulated := errors.New("simulated bug")
	defer cpg.SetDeliverHook(func(size int) {
		if size == 3 {
			panic(errSimulated)
		}
	})()
	for _, m := range []string{"1", "22", "333", "4444", "55555"} {
		if err := h.Multicast(ctx, cpg.Agreed, []byte(m)); err != nil {
			break // the stream may end while we send
		}
	}
	var got []string
	var end *cpg.Terminated
	timeout := time.After(10 * time.Second)
	for end == nil {
		select {
		case ev, ok := <-h.Events():
			if !ok {
				t.Fatalf("stream closed without a Terminated event; got %q", got)
			}
			switch e := ev.(type) {
			case *cpg.Message:
				got = append(got, string(e.Data))
			case *cpg.Terminated:
				end = e
			}
		case <-timeout:
			t.Fatalf("no Terminated within 10s; got %q", got)
		}
	}
	if !slices.Equal(got, []string{"1", "22"}) {
		t.Errorf("messages before the end: %q, want those before the panic only", got)
	}
	if !errors.Is(end.Err, errSimulated) || strings.Contains(end.Err.Error(), "connection") {
		t.Errorf("Terminated.Err = %v, want the panic, not a lost connection", end.Err)
	}
	select {
	case ev, ok := <-h.Events():
		if ok {
			t.Errorf("event %T after Terminated", ev)
		}
	case <-time.After(time.Second):
		t.Error("stream not closed after Terminated")
	}
}

// Close returns promptly while a flood of messages keeps the dispatch
// goroutine busy: it delivers a bounded number of events at a time and
// then sees the Close, rather than going on until corosync has nothing
// more for it, which under a flood may be never.
func TestCloseDuringFlood(t *testing.T) {
	var delivered atomic.Int64
	// A slow callback: corosync always has more for the handle than it
	// has delivered. Set before the handle's dispatch goroutine starts.
	defer cpg.SetDeliverHook(func(int) {
		delivered.Add(1)
		time.Sleep(time.Millisecond)
	})()
	ctx, h := joinedHandle(t)
	group, _ := h.Group()
	c := startChild(t, group, 0)
	fmt.Fprintln(c.stdin, "send 200000")
	for delivered.Load() < 300 {
		if ctx.Err() != nil {
			t.Fatalf("the flood did not come: %d messages delivered", delivered.Load())
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- h.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close returned after %v, %d messages delivered, %d pending", time.Since(start), delivered.Load(), h.Pending())
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Close has not returned 10s into a flood (%d messages delivered)", delivered.Load())
	}
	if _, in := h.Group(); in {
		t.Error("Group says the closed handle is still in its group")
	}
}

// A call waiting inside a frozen corosync for its reply does not hold up
// the end of the stream at Close; Close itself returns once that call is
// back, since the handle cannot be finalized under it.
func TestCloseWhileCallParked(t *testing.T) {
	n := corotest.Start(t)
	ctx := ctxT(t)
	h := newHandle(t)
	if err := h.Join(ctx, corotest.GroupName(t)); err != nil {
		t.Fatal(err)
	}
	next[*cpg.TotemConfChg](t, h)
	if err := syscall.Kill(n.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			syscall.Kill(n.Pid(), syscall.SIGCONT)
		}
	}
	defer thaw()
	sent := make(chan error, 1)
	go func() { _, err := h.MembershipGet(ctx, "parked"); sent <- err }()
	select {
	case err := <-sent:
		t.Fatalf("MembershipGet returned %v from a frozen corosync; want it to wait", err)
	case <-time.After(300 * time.Millisecond):
	}
	closed := make(chan error, 1)
	go func() { closed <- h.Close() }()
	deadline := time.After(2 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-h.Events():
		case <-deadline:
			t.Fatal("the stream is still open 2s after Close while a call waits in corosync")
		}
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a call was inside corosync", err)
	case <-time.After(300 * time.Millisecond):
	}
	thaw()
	select {
	case err := <-sent:
		if err != nil && !errors.Is(err, cpg.ErrClosed) {
			t.Errorf("the parked MembershipGet once corosync went on: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the parked MembershipGet still waits 10s after corosync went on")
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close has not returned 10s after the parked call did")
	}
}

// A sender that runs far ahead of its deliveries waits for its own
// messages to come back (more than 4 MiB in flight), and their coming back
// wakes it.
func TestPacing(t *testing.T) {
	// A long stall limit: with the default 2 ms, a race-enabled test
	// binary on a loaded machine gives up on some waits, rightly, and a
	// wait could end on the stall timer while messages trickle back.
	defer cpg.SetPaceStall(50 * time.Millisecond)()
	ctx, h := joinedHandle(t)
	const size, n = 512 << 10, 192 // 96 MiB: 24 windows
	got := make(chan int, 1)
	go func() {
		seen := 0
		for ev := range h.Events() {
			if m, ok := ev.(*cpg.Message); ok {
				m.Release()
				if seen++; seen == n {
					break
				}
			}
		}
		got <- seen
	}()
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		if err := h.Multicast(ctx, cpg.Agreed, buf); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case seen := <-got:
		if seen != n {
			t.Fatalf("%d of %d messages came back", seen, n)
		}
	case <-ctx.Done():
		t.Fatal("messages did not come back")
	}
	waits, woken := cpg.PaceStats(h)
	t.Logf("pace waits %d, ended by returned messages %d", waits, woken)
	if waits == 0 {
		t.Fatalf("%d MiB sent as fast as possible, and multicast never waited for its own messages", n*size>>20)
	}
	if woken == 0 {
		t.Errorf("multicast waited %d times and returned messages never woke it", waits)
	}
}
