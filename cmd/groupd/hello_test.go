package main

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/groupd-go/groupd/cpg"
	"github.com/groupd-go/groupd/internal/groupd"
)

// flakyCast fails its first fails calls.
type flakyCast struct {
	mu    sync.Mutex
	fails int
	calls int
}

func (f *flakyCast) Multicast(ctx context.Context, _ cpg.Guarantee, _ ...[]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.fails {
		return cpg.ErrTryAgain
	}
	return nil
}

func testHello(m multicaster) *helloSender {
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := newHelloSender(context.Background(), m, log)
	s.backoff, s.timeout = time.Millisecond, time.Second
	return s
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// A first hello that fails is tried again; readiness follows the one that
// gets out.
func TestHelloRetriesUntilSent(t *testing.T) {
	f := &flakyCast{fails: helloAttempts - 1}
	s := testHello(f)
	if err := s.SendHello([]byte("hi")); err != nil {
		t.Fatalf("SendHello: %v", err)
	}
	if f.calls != helloAttempts || !closed(s.sent) || closed(s.failed) {
		t.Errorf("%d calls, sent %v, failed %v; want %d calls, sent", f.calls, closed(s.sent), closed(s.failed), helloAttempts)
	}
	// Once announced, a later hello is tried once: kills wait behind it.
	// It is then tried again in the background until it gets out.
	f.mu.Lock()
	f.fails, f.calls = 4, 0
	f.mu.Unlock()
	err := s.SendHello([]byte("hi"))
	f.mu.Lock()
	calls := f.calls
	f.mu.Unlock()
	if err == nil || calls != 1 || closed(s.failed) {
		t.Errorf("later failing hello: err %v, %d calls, failed %v; want the error after 1 call, not failed", err, calls, closed(s.failed))
	}
	waitRetries(t, s)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls != 5 {
		t.Errorf("%d calls in all, want 5: the failed one, 3 failed retries, the one that got out", f.calls)
	}
}

// waitRetries waits until the background retry of a later hello stopped.
func waitRetries(t *testing.T, s *helloSender) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.retryMu.Lock()
		running := s.retrying
		s.retryMu.Unlock()
		if !running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the background hello retry still runs after 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// A later hello that fails while the background retry runs does not start
// a second retry.
func TestHelloOneBackgroundRetry(t *testing.T) {
	f := &flakyCast{}
	s := testHello(f)
	if err := s.SendHello([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.fails, f.calls = 3, 0 // both later hellos and the first retry fail
	f.mu.Unlock()
	// Long enough that the second hello comes while the first retry
	// still waits, also on a loaded machine.
	s.backoff = 300 * time.Millisecond
	s.SendHello([]byte("hi"))
	s.SendHello([]byte("hi"))
	waitRetries(t, s)
	s.retryMu.Lock()
	retries := s.retries
	s.retryMu.Unlock()
	if retries != 2 {
		t.Errorf("%d background attempts, want 2 (one failed, one got out)", retries)
	}
}

// Shutdown ends the background retry.
func TestHelloBackgroundRetryStopsOnShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &flakyCast{}
	s := testHello(f)
	s.ctx = ctx
	if err := s.SendHello([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.fails, f.calls = 1<<30, 0
	f.mu.Unlock()
	s.SendHello([]byte("hi"))
	time.Sleep(20 * time.Millisecond)
	cancel()
	waitRetries(t, s)
}

// A first hello that never gets out closes failed, so the daemon exits
// instead of waiting for READY forever.
func TestHelloGivesUp(t *testing.T) {
	f := &flakyCast{fails: 1 << 30}
	s := testHello(f)
	if err := s.SendHello([]byte("hi")); err == nil {
		t.Fatal("SendHello succeeded")
	}
	if f.calls != helloAttempts || !closed(s.failed) || closed(s.sent) || !errors.Is(s.err, cpg.ErrTryAgain) {
		t.Errorf("%d calls, failed %v, sent %v, err %v; want %d calls then failed with the last error", f.calls, closed(s.failed), closed(s.sent), s.err, helloAttempts)
	}
}

// Shutdown during the back-off ends the retries at once.
func TestHelloStopsOnShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &flakyCast{fails: 1 << 30}
	s := testHello(f)
	s.ctx, s.backoff = ctx, time.Hour
	done := make(chan error, 1)
	go func() { done <- s.SendHello([]byte("hi")) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("SendHello succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SendHello still backing off after shutdown")
	}
}

// READY=1 waits until the daemon vouches for our own node (our hello came
// back), not merely until the hello was sent; it gives up when the ready
// timeout fires first, and stops at once for a lost corosync or a signal.
func TestWaitVouched(t *testing.T) {
	after := func(n int) func() bool {
		var calls int
		return func() bool { calls++; return calls > n }
	}
	never := func() bool { return false }
	closed := make(chan time.Time)
	close(closed)
	lost := make(chan error, 1)
	lost <- errors.New("corosync gone")
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		ctx     context.Context
		vouched func() bool
		timeout <-chan time.Time
		lost    <-chan error
		want    int
	}{
		{"vouched at once", ctx, after(0), nil, nil, vouchedYes},
		{"vouched after a few polls", ctx, after(3), nil, nil, vouchedYes},
		{"never vouched", ctx, never, time.After(5 * vouchPoll), nil, vouchedTimeout},
		{"vouched as the timeout fires", ctx, after(1), closed, nil, vouchedYes},
		{"corosync lost", ctx, never, nil, lost, vouchedLost},
		{"signalled", stopped, never, nil, nil, vouchedStopped},
		{"signalled as the hello came back", stopped, after(0), nil, nil, vouchedStopped},
	} {
		if got := waitVouched(tt.ctx, tt.vouched, tt.timeout, tt.lost); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

// Only our own run's hello makes us ready (not another process of our
// node), and only once no earlier member's hello is awaited.
func TestAnnounced(t *testing.T) {
	s := &groupd.Snapshot{Phase: groupd.PhaseJoined, Joined: true, Members: []groupd.GroupMember{
		{NodeID: 1, PID: 10, Hello: true},  // another run on our node
		{NodeID: 1, PID: 20, Hello: false}, // us, hello not back yet
		{NodeID: 2, PID: 20, Hello: true},
	}}
	if announced(s, 1, 20) {
		t.Error("announced before our own hello came back")
	}
	s.Members[1].Hello = true
	if !announced(s, 1, 20) {
		t.Error("not announced once our own hello counts")
	}
	if announced(s, 1, 30) {
		t.Error("announced while not a member")
	}
	// Until the members that were in the group before us have spoken, the
	// daemon answers for nobody, us included.
	s.Members[2].Awaited = true
	if announced(s, 1, 20) {
		t.Error("announced while an earlier member's hello is awaited")
	}
	s.Members[2].Awaited = false
	// A daemon whose loop stopped (corosync lost) keeps its last member
	// list: that is not a daemon in the group.
	s.Phase, s.Joined = groupd.PhaseStopped, false
	if announced(s, 1, 20) {
		t.Error("announced after the daemon stopped")
	}
}

// recordCast records the hellos that got out, failing while failing is
// set; with gate set, a multicast says so on entered and waits for gate.
type recordCast struct {
	mu      sync.Mutex
	failing bool
	out     []string
	gate    chan struct{}
	entered chan struct{}
}

func (r *recordCast) Multicast(ctx context.Context, _ cpg.Guarantee, bufs ...[]byte) error {
	r.mu.Lock()
	gate, entered := r.gate, r.entered
	r.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing {
		return cpg.ErrTryAgain
	}
	r.out = append(r.out, string(bufs[0]))
	return nil
}

// A hello that failed and waits for its background retry is not sent once
// a newer one got out: a daemon waiting for our answer to a join or merge
// would take the older one, written before, for it.
func TestHelloNewerSupersedesRetry(t *testing.T) {
	r := &recordCast{}
	s := testHello(r)
	s.backoff = 300 * time.Millisecond // not before the newer hello
	if err := s.SendHello([]byte("first")); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.failing = true
	r.mu.Unlock()
	if err := s.SendHello([]byte("older")); err == nil {
		t.Fatal("the older hello got out while multicasts fail")
	}
	r.mu.Lock()
	r.failing = false
	r.mu.Unlock()
	if err := s.SendHello([]byte("newer")); err != nil {
		t.Fatal(err)
	}
	waitRetries(t, s)
	r.mu.Lock()
	defer r.mu.Unlock()
	if want := []string{"first", "newer"}; !slices.Equal(r.out, want) {
		t.Errorf("hellos out %q, want %q", r.out, want)
	}
}

// A later hello does not wait for a background attempt under way (a kill
// may be queued behind it): it is handed to the retry, which sends it
// right after the older one.
func TestHelloHandedToRetryUnderWay(t *testing.T) {
	r := &recordCast{}
	s := testHello(r)
	if err := s.SendHello([]byte("first")); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.failing = true
	r.mu.Unlock()
	s.SendHello([]byte("older"))
	gate := make(chan struct{})
	r.mu.Lock()
	r.failing = false
	r.gate, r.entered = gate, make(chan struct{}, 8)
	entered := r.entered
	r.mu.Unlock()
	<-entered // the background attempt for "older" is under way
	done := make(chan error, 1)
	go func() { done <- s.SendHello([]byte("newer")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("SendHello of a hello handed to the retry: %v", err)
		}
	case <-time.After(10 * time.Second):
		close(gate)
		t.Fatal("SendHello waited for the background attempt")
	}
	r.mu.Lock()
	r.gate = nil
	r.mu.Unlock()
	close(gate)
	waitRetries(t, s)
	r.mu.Lock()
	defer r.mu.Unlock()
	if want := []string{"first", "older", "newer"}; !slices.Equal(r.out, want) {
		t.Errorf("hellos out %q, want %q", r.out, want)
	}
}
