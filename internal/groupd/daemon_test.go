package groupd

import (
	"context"
	"errors"
	"testing"
	"time"
)

func newTestDaemon(t *testing.T, k *fakeKiller, hs *fakeHello) (*Daemon, chan Event, context.CancelFunc, chan error) {
	t.Helper()
	d := NewDaemon(Config{
		OurNodeID: us, OurPID: ourPID, Start: t0,
		Kill: k, Hello: hs, Clock: &fakeClock{now: t0}, Log: testLog{t},
	})
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

// The loop must keep answering while a kill is stuck in corosync.
func TestDaemonNotBlockedBySideEffects(t *testing.T) {
	k := &fakeKiller{block: make(chan struct{})}
	hs := &fakeHello{}
	d, events, _, _ := newTestDaemon(t, k, hs)

	if d.Snapshot() == nil || d.Snapshot().Phase != PhaseStarting {
		t.Fatal("no initial snapshot before the first event")
	}
	events <- NodeChange{Ring: RingID{1, 1}, Members: []uint32{1, 2}, Quorate: true}
	events <- GroupConfChg{Members: []Member{{NodeID: 1, PID: ourPID}, {NodeID: 2, PID: 2000}}, Joined: []Member{{NodeID: 1, PID: ourPID, Reason: ReasonJoin}, {NodeID: 2, PID: 2000, Reason: ReasonJoin}}}
	events <- GroupConfChg{Members: []Member{{NodeID: 1, PID: ourPID}}, Left: []Member{{NodeID: 2, PID: 2000, Reason: ReasonProcDown}}}
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

func TestSystemClockMonotonic(t *testing.T) {
	var c SystemClock
	a := c.Monotonic()
	time.Sleep(2 * time.Millisecond)
	if b := c.Monotonic(); a <= 0 || b <= a {
		t.Errorf("monotonic clock %v then %v", a, b)
	}
}
