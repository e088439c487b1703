package groupd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestDaemon(t *testing.T, k *fakeKiller, hs *fakeHello) (*Daemon, chan Event, context.CancelFunc, chan error) {
	t.Helper()
	return newTestDaemonLog(t, k, hs, testLog{t})
}

// newTestDaemonLog is newTestDaemon with the daemon's log going to log.
// A test that takes Run's result from done puts it back for the cleanup.
func newTestDaemonLog(t *testing.T, k *fakeKiller, hs *fakeHello, log Logger) (*Daemon, chan Event, context.CancelFunc, chan error) {
	t.Helper()
	return newTestDaemonClock(t, k, hs, log, &fakeClock{now: t0})
}

// newTestDaemonClock is newTestDaemonLog with the daemon's clock given.
func newTestDaemonClock(t *testing.T, k *fakeKiller, hs *fakeHello, log Logger, clock Clock) (*Daemon, chan Event, context.CancelFunc, chan error) {
	t.Helper()
	d, err := NewDaemon(Config{
		OurNodeID: us, OurPID: ourPID, Start: t0,
		Kill: k, Hello: hs, Clock: clock, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan Event)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return d, events, cancel, done
}

// node2ProcDown sends the events of node 2's groupd (pid 2000) joining
// with ours and then dying while its corosync stays up.
func node2ProcDown(events chan<- Event) {
	events <- NodeChange{Ring: RingID{1, 1}, Members: []uint32{1, 2}, Quorate: true}
	events <- GroupConfChg{Members: []Member{{NodeID: 1, PID: ourPID}, {NodeID: 2, PID: 2000}}, Joined: []Member{{NodeID: 1, PID: ourPID, Reason: ReasonJoin}, {NodeID: 2, PID: 2000, Reason: ReasonJoin}}}
	events <- GroupConfChg{Members: []Member{{NodeID: 1, PID: ourPID}}, Left: []Member{{NodeID: 2, PID: 2000, Reason: ReasonProcDown}}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A kill that fails off the loop comes back to it: the set records why
// and waits for fencing instead of for a cman report that will not come.
func TestDaemonRecordsFailedKill(t *testing.T) {
	k := &fakeKiller{err: errors.New("cman: corosync_cfg_kill_node node 2: try again, and gave up")}
	d, events, _, _ := newTestDaemon(t, k, &fakeHello{})
	node2ProcDown(events)
	waitFor(t, "the failed kill in the snapshot", func() bool {
		r := d.Snapshot().Recovery
		return len(r) == 1 && r[0].KillError != ""
	})
	if r := d.Snapshot().Recovery[0]; r.State != StateWaitFencing || !r.KillRequested || !strings.Contains(r.KillError, "gave up") {
		t.Errorf("set after the failed kill: %+v", r)
	}
}

// gateLog holds the loop up in the warning that contains hold, until
// release is closed.
type gateLog struct {
	testLog
	hold    string
	held    chan struct{}
	release chan struct{}
}

func (l gateLog) Warnf(f string, a ...any) {
	l.testLog.Warnf(f, a...)
	if strings.Contains(fmt.Sprintf(f, a...), l.hold) {
		close(l.held)
		<-l.release
	}
}

// Every failed kill reaches its recovery set, however many fail while
// the loop is busy with something else.
func TestEveryKillFailureReachesItsSet(t *testing.T) {
	const n = 40 // nodes 2 to n: more failures than any fixed buffer of the loop's
	k := &fakeKiller{err: errors.New("try again, and gave up")}
	log := gateLog{testLog: testLog{t}, hold: fmt.Sprintf("killing node %d ", n), held: make(chan struct{}), release: make(chan struct{})}
	d, events, _, _ := newTestDaemonLog(t, k, &fakeHello{}, log)
	all := []uint32{}
	members := []Member{}
	left := []Member{}
	for id := uint32(1); id <= n; id++ {
		all = append(all, id)
		m := Member{NodeID: id, PID: 1000 + id, Reason: ReasonJoin}
		if id == us {
			m.PID = ourPID
		} else {
			left = append(left, Member{NodeID: id, PID: m.PID, Reason: ReasonProcDown})
		}
		members = append(members, m)
	}
	events <- NodeChange{Ring: RingID{1, 1}, Members: all, Quorate: true}
	events <- GroupConfChg{Members: members, Joined: members}
	go func() {
		events <- GroupConfChg{Members: members[:1], Left: left}
	}()
	<-log.held // the loop is in the confchg: every kill but node n's was asked for
	waitFor(t, "the kills asked for so far to fail", func() bool { return len(k.got()) == n-2 })
	close(log.release)
	waitFor(t, "every failed kill in its set", func() bool {
		sets := d.Snapshot().Recovery
		failed := 0
		for _, s := range sets {
			if s.KillError != "" {
				failed++
			}
		}
		return len(sets) == n-1 && failed == n-1
	})
}

// warnLog keeps the warnings it is given.
type warnLog struct {
	mu    sync.Mutex
	warns []string
}

func (l *warnLog) Debugf(string, ...any) {}
func (l *warnLog) Infof(string, ...any)  {}
func (l *warnLog) Warnf(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.warns = append(l.warns, fmt.Sprintf(f, a...))
}

func (l *warnLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.warns, func(w string) bool { return strings.Contains(w, s) })
}

// A kill that fails while the daemon stops, after the loop has stopped
// reading, is still logged.
func TestKillFailureAtStopLogged(t *testing.T) {
	for i := 0; i < 10; i++ {
		k := &fakeKiller{err: errors.New("boom"), block: make(chan struct{}), entered: make(chan struct{}, 1)}
		log := &warnLog{}
		d, events, cancel, done := newTestDaemonLog(t, k, &fakeHello{}, log)
		node2ProcDown(events)
		<-k.entered
		cancel()
		// The loop has stopped (it publishes the stopped phase on its
		// way out, then waits out the effect's grace): only now may
		// the kill fail.
		waitFor(t, "the loop to stop", func() bool { return d.Snapshot().Phase == PhaseStopped })
		close(k.block)
		done <- <-done
		// Logged by the stop path, not by the machine: "still needs fencing".
		waitFor(t, "the failed kill in the log", func() bool { return log.has("could not kill node 2 from the cluster: boom; it still needs fencing") })
	}
}

// The loop must keep answering while a kill is stuck in corosync.
func TestDaemonNotBlockedBySideEffects(t *testing.T) {
	k := &fakeKiller{block: make(chan struct{})}
	hs := &fakeHello{}
	d, events, _, _ := newTestDaemon(t, k, hs)

	if d.Snapshot() == nil || d.Snapshot().Phase != PhaseStarting {
		t.Fatal("no initial snapshot before the first event")
	}
	node2ProcDown(events)
	events <- NodeChange{Ring: RingID{1, 2}, Members: []uint32{1, 2}, Quorate: true} // still there, kill pending

	waitFor(t, "the recovery set in the snapshot", func() bool { return len(d.Snapshot().Recovery) == 1 })
	if s := d.Snapshot(); !s.Joined || s.Recovery[0].State != StateWaitCman {
		t.Errorf("snapshot %+v", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := d.Ack(ctx, 3); !errors.Is(err, ErrNoRecoverySet) {
		t.Errorf("Ack while a kill is blocked = %v, want a prompt ErrNoRecoverySet", err)
	}
	close(k.block)
	waitFor(t, "the kill", func() bool { return len(k.got()) == 1 })
	waitFor(t, "our hello", func() bool { return hs.count() == 1 })

	set, err := d.Ack(ctx, 2)
	if err != nil || set.State != StateAcked {
		t.Fatalf("Ack(2) = %+v, %v", set, err)
	}
	if n := len(d.Snapshot().Recovery); n != 0 {
		t.Errorf("snapshot after ack still has %d sets", n)
	}
}

func TestDaemonWatch(t *testing.T) {
	d, events, _, _ := newTestDaemon(t, &fakeKiller{}, &fakeHello{})
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := d.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events <- NodeChange{Ring: RingID{1, 1}, Members: []uint32{1}, Quorate: true}
	select {
	case n := <-ch:
		if n.Kind != "quorum" {
			t.Errorf("first notice %+v, want the quorum notice", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notice for a watcher")
	}
	cancel()
	events <- SetPhase{PhaseJoining} // lets the loop notice the cancel
	for range ch {
	}
}

func TestDaemonSlowWatcherIsDropped(t *testing.T) {
	d, events, _, _ := newTestDaemon(t, &fakeKiller{}, &fakeHello{})
	ch, err := d.Watch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < WatchBuffer+10; i++ {
		events <- SetPhase{Phase: Phase([]string{"a", "b"}[i%2])}
	}
	n := 0
	for range ch {
		n++
	}
	if n != WatchBuffer {
		t.Errorf("slow watcher got %d notices before its channel closed, want %d", n, WatchBuffer)
	}
}

func TestDaemonStops(t *testing.T) {
	d, events, _, done := newTestDaemon(t, &fakeKiller{}, &fakeHello{})
	close(events)
	if err := <-done; !errors.Is(err, ErrInputClosed) {
		t.Errorf("Run after its input closed = %v, want ErrInputClosed", err)
	}
	done <- nil // for the cleanup
	if _, err := d.Ack(context.Background(), 2); !errors.Is(err, ErrStopped) {
		t.Errorf("Ack after stop = %v", err)
	}
	if _, err := d.Watch(context.Background()); !errors.Is(err, ErrStopped) {
		t.Errorf("Watch after stop = %v", err)
	}
	if d.Snapshot() == nil {
		t.Error("no snapshot after stop")
	}
}

// Run ends the wait for a silent member that was in the group before us
// on its own timer: with no other input, the daemon answers again once
// helloWait is over.
func TestDaemonEndsHelloWait(t *testing.T) {
	old := helloWait
	helloWait = 50 * time.Millisecond
	t.Cleanup(func() { helloWait = old }) // after the daemon has stopped
	clock := &fakeClock{now: t0}
	d, events, _, _ := newTestDaemonClock(t, &fakeKiller{}, &fakeHello{}, testLog{t}, clock)
	events <- NodeChange{Ring: RingID{1, 1}, Members: []uint32{1, 2}, Quorate: true}
	events <- GroupConfChg{Members: []Member{{NodeID: 2, PID: 2000}, {NodeID: 1, PID: ourPID}}, Joined: []Member{{NodeID: 1, PID: ourPID, Reason: ReasonJoin}}}
	events <- GroupMessage{NodeID: 1, PID: ourPID, Data: Hello{Version: HelloVersion, NodeID: 1, Start: t0}.Marshal()}
	waitFor(t, "our hello", func() bool { return d.Snapshot().BypassDetail(1).Hello })
	if c := d.Snapshot().BypassDetail(1); c.Known {
		t.Fatalf("node 1 with node 2's hello awaited: %+v, want could not tell", c)
	}
	clock.advance(helloWait)
	waitFor(t, "the end of the wait for node 2's hello", func() bool { return d.Snapshot().BypassDetail(1).Allowed })
}

func TestSystemClockMonotonic(t *testing.T) {
	var c SystemClock
	a := c.Monotonic()
	time.Sleep(2 * time.Millisecond)
	if b := c.Monotonic(); a <= 0 || b <= a {
		t.Errorf("monotonic clock %v then %v", a, b)
	}
}

// Once Run has returned nothing keeps the state current, so the last
// snapshot must not vouch for anyone.
func TestDaemonStoppedVouchesForNobody(t *testing.T) {
	for _, how := range []string{"input closed", "context done"} {
		t.Run(how, func(t *testing.T) {
			d, events, cancel, done := newTestDaemon(t, &fakeKiller{}, &fakeHello{})
			events <- NodeChange{Ring: RingID{1, 1}, Members: []uint32{1, 2}, Quorate: true}
			events <- GroupConfChg{Members: []Member{{NodeID: 1, PID: ourPID}, {NodeID: 2, PID: 2000}}, Joined: []Member{{NodeID: 1, PID: ourPID, Reason: ReasonJoin}, {NodeID: 2, PID: 2000, Reason: ReasonJoin}}}
			events <- GroupMessage{NodeID: 2, PID: 2000, Data: Hello{Version: 1, NodeID: 2, Start: t0}.Marshal()}
			q := d.QueryHandler(nil)
			waitFor(t, "node 2 bypassable", func() bool { return q.Bypass(2).Allowed })

			if how == "input closed" {
				close(events)
			} else {
				cancel()
			}
			err := <-done
			done <- err // for the cleanup
			s := d.Snapshot()
			if s.Phase != PhaseStopped || s.ClusterKnown || s.Joined {
				t.Errorf("after Run returned: phase %s, cluster known %v, joined %v; want stopped, false, false", s.Phase, s.ClusterKnown, s.Joined)
			}
			b := q.Bypass(2)
			if b.Allowed || b.Known || !strings.Contains(b.Reason, "stopped") {
				t.Errorf("bypass after Run returned: %+v; want not allowed, could not tell", b)
			}
			if st := StatusOf(s); st.Phase != "stopped" || st.ClusterKnown || st.Joined {
				t.Errorf("status after Run returned: %+v", st)
			}
		})
	}
}

// A kill stuck in corosync must not keep Run from returning.
func TestDaemonStopsWhileKillBlocked(t *testing.T) {
	k := &fakeKiller{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	d, events, _, done := newTestDaemon(t, k, &fakeHello{})
	t.Cleanup(func() { close(k.block) }) // runs after the daemon's cleanup
	node2ProcDown(events)
	select {
	case <-k.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the kill was never called")
	}
	close(events)
	select {
	case err := <-done:
		done <- err
		if !errors.Is(err, ErrInputClosed) {
			t.Errorf("Run = %v, want ErrInputClosed", err)
		}
	case <-time.After(effectGrace + 5*time.Second): // the kill never returns: Run did not wait for it
		t.Fatal("Run did not return while a kill was stuck in corosync")
	}
	if d.Snapshot().Phase != PhaseStopped {
		t.Errorf("phase %s after Run returned", d.Snapshot().Phase)
	}
}

func TestNewRequiresEffectsAndClock(t *testing.T) {
	full := Config{Kill: &fakeKiller{}, Hello: &fakeHello{}, Clock: &fakeClock{now: t0}}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no kill", func(c *Config) { c.Kill = nil }, "Kill"},
		{"no hello", func(c *Config) { c.Hello = nil }, "Hello"},
		{"no clock", func(c *Config) { c.Clock = nil }, "Clock"},
		{"none", func(c *Config) { *c = Config{} }, "Kill, Hello, Clock"},
	}
	for _, tt := range tests {
		cfg := full
		tt.edit(&cfg)
		if m, err := NewMachine(cfg); m != nil || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewMachine = %v, %v; want an error naming %s", tt.name, m, err, tt.want)
		}
		if d, err := NewDaemon(cfg); d != nil || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewDaemon = %v, %v; want an error naming %s", tt.name, d, err, tt.want)
		}
	}
	if _, err := NewDaemon(full); err != nil {
		t.Errorf("NewDaemon with a full config: %v", err)
	}
}

func TestRingIDStringIsHex(t *testing.T) {
	for _, tt := range []struct {
		r    RingID
		want string
	}{
		{RingID{1, 8}, "1.8"},
		{RingID{1, 0x2c}, "1.2c"},
		{RingID{0x1f, 0x10000000a}, "1f.10000000a"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("RingID{%d, %d} = %q, want %q as corosync prints it", tt.r.NodeID, tt.r.Seq, got, tt.want)
		}
	}
}
