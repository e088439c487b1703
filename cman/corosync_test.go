package cman

// Local-corosync tier: a private single-node corosync from corotest.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/groupd-go/groupd/cs"
	"github.com/groupd-go/groupd/internal/corotest"
)

func open(t *testing.T) *Cluster {
	t.Helper()
	c, err := Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := corotest.Tool(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func next(t *testing.T, c *Cluster) Event {
	t.Helper()
	select {
	case e, ok := <-c.Events():
		if !ok {
			t.Fatal("event stream closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	panic("unreachable")
}

func TestLocalNode(t *testing.T) {
	corotest.Start(t)
	c := open(t)
	if c.NodeID() != corotest.NodeID {
		t.Errorf("NodeID = %d, want %d", c.NodeID(), corotest.NodeID)
	}
	n, err := c.LocalNode()
	if err != nil {
		t.Fatal(err)
	}
	want := Node{ID: corotest.NodeID, Name: corotest.NodeName, Addresses: []string{"127.0.0.1"}, Member: true, Votes: 1, Local: true}
	if fmt.Sprint(n) != fmt.Sprint(want) {
		t.Errorf("LocalNode = %+v, want %+v", n, want)
	}
}

// quorumtoolLine is a row of corosync-quorumtool -l: "  1   1 node1 (local)".
var quorumtoolLine = regexp.MustCompile(`^\s*(\d+)\s+(\d+)\s+(\S+)(\s+\(local\))?\s*$`)

func TestNodesMatchTools(t *testing.T) {
	corotest.Start(t)
	c := open(t)
	nodes, err := c.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[uint32]Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}

	// corosync-quorumtool -l lists the members with votes and names.
	out := tool(t, "corosync-quorumtool", "-l")
	members := 0
	for _, line := range strings.Split(out, "\n") {
		m := quorumtoolLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		members++
		id, _ := strconv.ParseUint(m[1], 10, 32)
		votes, _ := strconv.ParseUint(m[2], 10, 32)
		n, ok := byID[uint32(id)]
		switch {
		case !ok:
			t.Errorf("quorumtool lists node %d, Nodes does not", id)
		case !n.Member || n.Votes != uint32(votes) || n.Name != m[3] || n.Local != (m[4] != ""):
			t.Errorf("quorumtool: %q; Nodes: %+v", strings.TrimSpace(line), n)
		}
	}
	if members == 0 {
		t.Fatalf("no member rows in corosync-quorumtool -l output:\n%s", out)
	}
	for _, n := range nodes {
		if n.Member {
			members--
		}
	}
	if members != 0 {
		t.Errorf("Nodes has a different number of members than corosync-quorumtool -l:\n%s\n%+v", out, nodes)
	}

	// corosync-cmapctl nodelist shows the raw nodelist.
	out = tool(t, "corosync-cmapctl", "nodelist")
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		key, val, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		key, _, _ = strings.Cut(key, " (")
		kv[key] = val
	}
	if len(nodes) == 0 {
		t.Fatalf("Nodes is empty; cmapctl says:\n%s", out)
	}
	for pos, n := range nodes {
		prefix := fmt.Sprintf("nodelist.node.%d.", pos)
		if got := kv[prefix+"nodeid"]; got != fmt.Sprint(n.ID) {
			t.Errorf("%snodeid = %q, Nodes[%d].ID = %d", prefix, got, pos, n.ID)
		}
		wantName, ok := kv[prefix+"name"]
		if !ok {
			wantName = kv[prefix+"ring0_addr"] // the documented fallback
		}
		if wantName != n.Name {
			t.Errorf("cmapctl says node %d is %q, Nodes[%d].Name = %q", n.ID, wantName, pos, n.Name)
		}
		for link, addr := range n.Addresses {
			if got := kv[fmt.Sprintf("%sring%d_addr", prefix, link)]; got != addr {
				t.Errorf("%sring%d_addr = %q, Nodes[%d].Addresses[%d] = %q", prefix, link, got, pos, link, addr)
			}
		}
		if kv[fmt.Sprintf("%sring%d_addr", prefix, len(n.Addresses))] != "" {
			t.Errorf("cmapctl has more addresses for node %d than %v", n.ID, n.Addresses)
		}
	}
	if kv[fmt.Sprintf("nodelist.node.%d.nodeid", len(nodes))] != "" {
		t.Errorf("cmapctl has more nodes than Nodes:\n%s", out)
	}
}

func TestQuorum(t *testing.T) {
	corotest.Start(t)
	c := open(t)
	quorate, err := c.Quorate()
	if err != nil {
		t.Fatal(err)
	}
	if !quorate {
		t.Error("a one-node cluster with one expected vote is not quorate")
	}
	q, err := c.Quorum()
	if err != nil {
		t.Fatal(err)
	}
	if !q.Quorate {
		t.Errorf("Quorum() = %+v, not quorate", q)
	}

	out := tool(t, "corosync-quorumtool", "-s")
	field := func(name string) uint32 {
		m := regexp.MustCompile(`(?m)^` + name + `:\s+(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %q in corosync-quorumtool -s:\n%s", name, out)
		}
		v, _ := strconv.ParseUint(m[1], 10, 32)
		return uint32(v)
	}
	for _, f := range []struct {
		name string
		got  uint32
	}{
		{"Expected votes", q.ExpectedVotes},
		{"Highest expected", q.HighestExpected},
		{"Total votes", q.TotalVotes},
		{"Quorum", q.Quorum},
	} {
		if want := field(f.name); f.got != want {
			t.Errorf("%s: got %d, corosync-quorumtool -s says %d", f.name, f.got, want)
		}
	}
	if !strings.Contains(out, "Quorate:          Yes") {
		t.Errorf("corosync-quorumtool -s does not say quorate:\n%s", out)
	}
}

// The stream starts with the current state: our one-node membership, with
// the ring id corosync-quorumtool shows, then quorate.
func TestInitialEvents(t *testing.T) {
	corotest.Start(t)
	c := open(t)
	m := next(t, c)
	if m.Kind != EventMembership || !m.Initial || fmt.Sprint(m.Members) != "[1]" || len(m.Joined) != 0 || len(m.Left) != 0 {
		t.Errorf("first event = %v (initial %v), want the initial membership [1]", m, m.Initial)
	}
	q := next(t, c)
	if q.Kind != EventQuorum || !q.Initial || !q.Quorate || q.Ring != m.Ring || fmt.Sprint(q.Members) != "[1]" {
		t.Errorf("second event = %v (initial %v), want initial quorate on ring %s", q, q.Initial, m.Ring)
	}
	out := tool(t, "corosync-quorumtool", "-s")
	if !strings.Contains(out, "Ring ID:          "+m.Ring.String()+"\n") {
		t.Errorf("ring id %s not in corosync-quorumtool -s:\n%s", m.Ring, out)
	}
	select {
	case e := <-c.Events():
		t.Errorf("unexpected third event %v", e)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestCloseTwiceAndAfter(t *testing.T) {
	corotest.Start(t)
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	for e := range c.Events() {
		t.Errorf("event %v after Close", e)
	}
	if _, err := c.Quorate(); !errors.Is(err, ErrClosed) {
		t.Errorf("Quorate after Close: %v, want ErrClosed", err)
	}
	if _, err := c.Nodes(); !errors.Is(err, ErrClosed) {
		t.Errorf("Nodes after Close: %v, want ErrClosed", err)
	}
	if err := c.KillNode(context.Background(), corotest.NodeID, "after close"); !errors.Is(err, ErrClosed) {
		t.Errorf("KillNode after Close: %v, want ErrClosed", err)
	}
	if c.NodeID() != corotest.NodeID {
		t.Errorf("NodeID after Close = %d", c.NodeID())
	}
}

// KillNode refuses node id 0 and a reason corosync cannot carry whole
// before sending anything: a reason with a NUL byte aimed at our own node
// would otherwise kill it with a truncated reason. Nor does it send a kill
// for a caller whose context is done.
func TestKillNodeBadInput(t *testing.T) {
	n := corotest.Start(t)
	c := open(t)
	ctx := context.Background()
	for _, tt := range []struct {
		node   uint32
		reason string
	}{
		{0, "no such node"},
		{c.NodeID(), "cut\x00short"},
		{c.NodeID(), strings.Repeat("r", MaxKillReason+1)},
	} {
		if err := c.KillNode(ctx, tt.node, tt.reason); !errors.Is(err, cs.ErrInvalidParam) {
			t.Errorf("KillNode(%d, %d-byte reason): %v, want ErrInvalidParam", tt.node, len(tt.reason), err)
		}
	}
	// A caller that gave up (its context is done) sends no kill at all,
	// not even a first one.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.KillNode(done, c.NodeID(), "cman test: sent after the caller gave up"); !errors.Is(err, context.Canceled) {
		t.Errorf("KillNode of our node with a done context: %v, want context.Canceled", err)
	}
	// A node that is not a cluster member: nothing to kill.
	if err := c.KillNode(ctx, 99, "cman test: no such node"); !errors.Is(err, cs.ErrNotExist) {
		t.Errorf("KillNode of node 99, not a member: %v, want ErrNotExist", err)
	}
	time.Sleep(500 * time.Millisecond) // a kill that went out would have landed by now
	if _, err := c.Quorate(); err != nil || !n.Running() {
		t.Fatalf("corosync after refused kills: running %v, Quorate: %v", n.Running(), err)
	}
}

// Close from the consumer, from another goroutine, before, during and
// after delivery, while other Clusters and calls are busy: every Close
// returns and every stream closes.
func TestCloseWhileEventsFlow(t *testing.T) {
	corotest.Start(t)
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open()
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				n := 0
				for range c.Events() {
					n++
					if i%3 == 0 && n == 1 {
						c.Close() // from the consumer, mid-stream
					}
				}
			}()
			switch i % 3 {
			case 1:
				// immediately, racing the first dispatch
			case 2:
				c.Nodes()
				c.Quorate()
			}
			if i%3 != 0 {
				c.Close()
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Errorf("cluster %d: stream not closed 5s after Close", i)
			}
			c.Close()
		}()
	}
	wg.Wait()
}

// Killing our own node makes our corosync exit; the stream then ends with
// the terminal error within a second and nothing spins afterwards.
func TestKillOwnNode(t *testing.T) {
	n := corotest.Start(t)
	c := open(t)
	next(t, c) // initial membership
	next(t, c) // initial quorum

	err := c.KillNode(context.Background(), c.NodeID(), "cman test kills its own node")
	if err != nil && !errors.Is(err, cs.ErrLibrary) {
		// corosync may exit before it answers; anything else is wrong.
		t.Fatalf("KillNode(self): %v", err)
	}
	select {
	case <-n.Exited():
	case <-time.After(10 * time.Second):
		t.Fatalf("corosync still runs 10s after KillNode(self):\n%s", n.Log())
	}
	exited := time.Now()
	if !strings.Contains(n.Log(), "cman test kills its own node") {
		t.Errorf("corosync's log lacks the kill reason:\n%s", n.Log())
	}

	var last Event
	timeout := time.After(time.Second)
	for closed := false; !closed; {
		select {
		case e, ok := <-c.Events():
			if !ok {
				closed = true
				break
			}
			if last.Kind == EventError {
				t.Errorf("event %v after the terminal error", e)
			}
			last = e
		case <-timeout:
			t.Fatalf("stream not closed within 1s of corosync's exit; last event %v", last)
		}
	}
	t.Logf("stream closed %v after corosync exited: %v", time.Since(exited), last)
	if last.Kind != EventError || !errors.Is(last.Err, cs.ErrLibrary) {
		t.Errorf("last event = %v, want EventError wrapping cs.ErrLibrary", last)
	}

	select {
	case <-c.dispatchDone:
	case <-time.After(time.Second):
		t.Error("the dispatch goroutine still runs after the terminal error")
	}

	// With the Cluster still open, nothing may spin on the dead fd.
	before := corotest.CPUTime()
	time.Sleep(time.Second)
	used := corotest.CPUTime() - before
	t.Logf("process CPU time over 1s after the end of the stream: %v", used)
	if used > 100*time.Millisecond {
		t.Errorf("process used %v of CPU in 1s with corosync gone: something spins", used)
	}

	if _, err := c.Quorate(); !errors.Is(err, cs.ErrLibrary) {
		t.Errorf("Quorate with corosync gone: %v, want cs.ErrLibrary", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after corosync died: %v", err)
	}
}

// corosync killed with SIGKILL, without any goodbye: the stream still ends
// with the terminal error within a second, and a new Open works once
// corosync is back.
func TestCorosyncKilled(t *testing.T) {
	n := corotest.Start(t)
	c := open(t)
	next(t, c)
	next(t, c)
	n.Kill()
	deadline := time.After(time.Second)
	var last Event
	for closed := false; !closed; {
		select {
		case e, ok := <-c.Events():
			closed = !ok
			if ok {
				last = e
			}
		case <-deadline:
			t.Fatalf("stream not closed within 1s of SIGKILL; last event %v", last)
		}
	}
	if last.Kind != EventError || !errors.Is(last.Err, cs.ErrLibrary) {
		t.Errorf("last event = %v, want EventError wrapping cs.ErrLibrary", last)
	}
	// A kill on the dead connection: libcfg returns its unset reply
	// buffer's contents for it; KillNode must say the connection is lost,
	// and never report a kill as taken.
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.KillNode(ctx, 2, "cman test: corosync is gone")
		cancel()
		if !errors.Is(err, cs.ErrLibrary) || !strings.Contains(err.Error(), "connection to corosync is lost") {
			t.Errorf("KillNode %d after corosync died: %v, want the lost connection (cs.ErrLibrary)", i+1, err)
		}
	}
	c.Close()

	corotest.Start(t)
	c2 := open(t)
	if e := next(t, c2); e.Kind != EventMembership || !e.Initial {
		t.Errorf("first event after restart = %v", e)
	}
}

// freeze stops corosync with SIGSTOP until the returned func (also run at
// cleanup) lets it go on. A call into a frozen corosync waits in C for its
// reply, as it would on a corosync that hangs.
func freeze(t *testing.T, n *corotest.Node) (thaw func()) {
	t.Helper()
	if err := syscall.Kill(n.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	thaw = func() { once.Do(func() { syscall.Kill(n.Pid(), syscall.SIGCONT) }) }
	t.Cleanup(thaw)
	return thaw
}

// A KillNode parked in corosync (frozen) does not hold up Close: the
// stream ends and later calls fail with ErrClosed at once. Close itself
// returns once the kill call is back, since the cfg handle cannot be
// finalized under it.
func TestCloseWhileKillNodeParked(t *testing.T) {
	closeWhileParked(t, "KillNode", func(c *Cluster) error {
		err := c.KillNode(context.Background(), 99, "cman test: no such node")
		if errors.Is(err, cs.ErrNotExist) {
			return nil
		}
		return err
	})
}

// The same for a Quorate parked in corosync: it must not hold the quorum
// handle that event delivery needs.
func TestCloseWhileQuorateParked(t *testing.T) {
	closeWhileParked(t, "Quorate", func(c *Cluster) error {
		_, err := c.Quorate()
		return err
	})
}

// closeWhileParked freezes corosync, starts call (which must then wait in
// corosync), closes the Cluster, and checks that the stream ends and other
// calls fail with ErrClosed while call waits; then thaws corosync and
// checks that call and Close return. call may fail with ErrClosed: it may
// find its handle closed by then.
func closeWhileParked(t *testing.T, name string, call func(*Cluster) error) {
	n := corotest.Start(t)
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	next(t, c)
	next(t, c)

	thaw := freeze(t, n)
	parked := make(chan error, 1)
	go func() { parked <- call(c) }()
	select {
	case err := <-parked:
		t.Fatalf("%s returned %v from a frozen corosync; want it to wait", name, err)
	case <-time.After(300 * time.Millisecond):
	}

	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case e, ok := <-c.Events():
		if ok {
			t.Errorf("event %v after Close", e)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("the event stream is still open 2s after Close while a %s waits in corosync", name)
	}
	for other, call := range map[string]func() error{
		"Quorate":  func() error { _, err := c.Quorate(); return err },
		"Quorum":   func() error { _, err := c.Quorum(); return err },
		"Nodes":    func() error { _, err := c.Nodes(); return err },
		"KillNode": func() error { return c.KillNode(context.Background(), 99, "after close") },
	} {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", other, err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s after Close waits behind the parked %s", other, name)
		}
	}

	thaw()
	select {
	case err := <-parked:
		if err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("%s once corosync went on: %v", name, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s still waits 5s after corosync went on", name)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Close has not returned 5s after the parked %s did", name)
	}
}

// A call waiting in one library holds up neither event delivery nor the
// calls on the other handles. The test holds the cfg lock as a KillNode
// parked in C does and the cmap lock as a long Nodes does: Quorate must
// still answer. Then it also holds the votequorum lock, as a Quorate or
// Nodes parked in C does; a pause of corosync longer than the token
// timeout then makes it form a new ring, which must reach Events.
func TestBusyHandleDoesNotBlockOthers(t *testing.T) {
	n := corotest.Start(t)
	c := open(t)
	first := next(t, c)
	next(t, c)

	c.cfgMu.Lock()
	c.cmapMu.Lock()
	defer func() {
		c.cmapMu.Unlock()
		c.cfgMu.Unlock()
	}()

	quorate := make(chan error, 1)
	go func() { _, err := c.Quorate(); quorate <- err }()
	select {
	case err := <-quorate:
		if err != nil {
			t.Errorf("Quorate: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Quorate waits behind the cfg and cmap handles")
	}

	c.votequorumMu.Lock()
	defer c.votequorumMu.Unlock()

	// Corosync 3 notices when it was itself not scheduled and then may
	// keep its ring: pause it again until it forms a new one.
	const newRing = "A new membership"
	for attempt := 1; attempt <= 5; attempt++ {
		rings := strings.Count(n.Log(), newRing)
		thaw := freeze(t, n)
		time.Sleep(2 * time.Second) // token timeout 1s
		thaw()
		deadline := time.After(5 * time.Second)
	wait:
		for {
			select {
			case e, ok := <-c.Events():
				if !ok {
					t.Fatal("stream closed")
				}
				if e.Kind == EventMembership && e.Ring.Seq > first.Ring.Seq {
					return
				}
			case <-deadline:
				if strings.Count(n.Log(), newRing) > rings {
					t.Fatalf("corosync formed a new ring, but no membership event for it came within 5s while other handles were busy:\n%s", n.Log())
				}
				break wait
			}
		}
		t.Logf("pause %d: corosync kept its ring", attempt)
	}
	t.Fatalf("corosync formed no new ring after 5 pauses of 2s:\n%s", n.Log())
}

// Every call races Close from many goroutines: each returns a result or
// ErrClosed, nothing deadlocks, and the race detector sees no unguarded
// handle.
func TestCallsRaceClose(t *testing.T) {
	corotest.Start(t)
	for range 10 {
		c, err := Open()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for range c.Events() {
			}
		}()
		var wg sync.WaitGroup
		calls := []func() error{
			func() error { _, err := c.Quorate(); return err },
			func() error { _, err := c.Quorum(); return err },
			func() error { _, err := c.Nodes(); return err },
			func() error { _, err := c.LocalNode(); return err },
			func() error { return c.KillNode(context.Background(), 99, "cman test: no such node") },
		}
		for _, call := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					err := call()
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil && !errors.Is(err, cs.ErrNotExist) {
						t.Errorf("call racing Close: %v", err)
						return
					}
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			wg.Wait()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Close or a call did not return within 10s")
		}
	}
}
