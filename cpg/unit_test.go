package cpg

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/groupd-go/groupd/cs"
)

func TestReasonAndGuaranteeNames(t *testing.T) {
	for r, want := range map[Reason]string{ReasonJoin: "join", ReasonLeave: "leave",
		ReasonNodeDown: "nodedown", ReasonNodeUp: "nodeup", ReasonProcDown: "procdown", 9: "reason(9)"} {
		if r.String() != want {
			t.Errorf("Reason(%d) = %q, want %q", uint32(r), r, want)
		}
	}
	if Agreed.String() != "agreed" || Guarantee(7).String() != "guarantee(7)" {
		t.Error("guarantee names")
	}
}

// Bad arguments are refused before anything reaches corosync, so a zero
// Handle (no connection at all) is enough to check them.
func TestArgumentChecks(t *testing.T) {
	var h Handle
	ctx := context.Background()
	long := strings.Repeat("g", MaxNameLength+1)
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"empty name", h.Join(ctx, ""), cs.ErrInvalidParam},
		{"129-byte name", h.Join(ctx, long), cs.ErrNameTooLong},
		{"membership of a long name", second(h.MembershipGet(ctx, long)), cs.ErrNameTooLong},
		{"iteration of an empty name", second(h.GroupMembers(ctx, "")), cs.ErrInvalidParam},
		{"64 buffers", h.Multicast(ctx, Agreed, make([][]byte, 64)...), cs.ErrInvalidParam},
		{"unknown guarantee", h.Multicast(ctx, Guarantee(4), []byte("x")), cs.ErrInvalidParam},
		{"leave without join", h.Leave(ctx), cs.ErrNotExist},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
	if err := checkName(strings.Repeat("g", MaxNameLength)); err != nil {
		t.Errorf("128-byte name refused: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

// A message above corosync's 32-bit length limit is refused with
// ErrTooBig. The buffers are never touched, so they cost no memory.
func TestMessageTooBig(t *testing.T) {
	var h Handle
	gig := make([]byte, 1<<30)
	err := h.Multicast(context.Background(), Agreed, gig, gig, gig, gig, gig)
	if !errors.Is(err, cs.ErrTooBig) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("5 GiB message: %v", err)
	}
}

func TestRetryHonoursContext(t *testing.T) {
	var h Handle
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	calls := 0
	err := h.retry(ctx, func() _Ctype_cs_error_t { calls++; return 6 })
	// The context's error, not TRY_AGAIN: a caller looping on
	// ErrTryAgain would spin on its done context.
	if errors.Is(err, cs.ErrTryAgain) || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "CS_ERR_TRY_AGAIN") {
		t.Fatalf("retry gave %v", err)
	}
	if calls < 3 || calls > 200 {
		t.Fatalf("%d attempts in 30ms: back-off is wrong", calls)
	}
	h.closed.Store(true)
	if err := h.retry(context.Background(), func() _Ctype_cs_error_t { return 6 }); !errors.Is(err, ErrClosed) {
		t.Fatalf("retry on a closed handle: %v", err)
	}
}

// Large buffers come back from the pools once released; small ones are
// plain copies; a released message no longer refers to its buffer.
func TestBufferRecycling(t *testing.T) {
	src := make([]byte, 100<<10)
	src[len(src)-1] = 7
	data, pooled := copyIn(src)
	if pooled == nil || len(data) != len(src) || cap(*pooled) != 128<<10 || data[len(data)-1] != 7 {
		t.Fatalf("100 KiB copy: len %d buffer %d pooled %v", len(data), cap(*pooled), pooled != nil)
	}
	// Data reaches no further than the message: what the buffer held
	// before stays out of sight, and an append gets memory of its own
	// instead of writing into the buffer, which goes to another message
	// after Release.
	if cap(data) != len(data) {
		t.Errorf("cap(Data) = %d, want its length %d", cap(data), len(data))
	}
	if grown := append(data, 1); &grown[0] == &(*pooled)[:1][0] {
		t.Error("an append to Data wrote into the pooled buffer")
	}
	m := &Message{Data: data, pooled: pooled}
	m.Release()
	m.Release()
	if m.Data != nil || m.pooled != nil {
		t.Fatal("Data kept after Release")
	}
	// The buffer released last is the next one used, and the kept
	// buffers stay within keptLimit, the rest going to the pool.
	a, pa := copyIn(src)
	b, pb := copyIn(src)
	(&Message{Data: a, pooled: pa}).Release()
	(&Message{Data: b, pooled: pb}).Release()
	if _, p := copyIn(src); p != pb {
		t.Error("the buffer released last was not reused first")
	}
	var many []*Message
	for range keptLimit/(128<<10) + 8 {
		d, p := copyIn(src)
		many = append(many, &Message{Data: d, pooled: p})
	}
	for _, m := range many {
		m.Release()
	}
	keptMu.Lock()
	over := keptBytes > keptLimit
	keptMu.Unlock()
	if over {
		t.Errorf("kept %d bytes of released buffers, limit %d", keptBytes, keptLimit)
	}
	small, pooled := copyIn([]byte("abc"))
	if pooled != nil || string(small) != "abc" {
		t.Fatalf("small copy %q pooled %v", small, pooled != nil)
	}
	for n, want := range map[int]int{1 << 10: 0, 1<<10 + 1: 1, 16 << 10: 4, 1 << 20: 10, 64 << 20: 16, 64<<20 + 1: -1, 1023: -1, 100: -1} {
		if got := poolClass(n); got != want {
			t.Errorf("poolClass(%d) = %d, want %d", n, got, want)
		}
	}
}

// Pacing: a multicast waits while its own messages in flight would go over
// the limit, is let go as they come back, keeps waiting while they come
// back slowly, gives up on them once none has for paceStall, and messages
// it gave up on that come back after all do not upset the count.
func TestPaceAccounting(t *testing.T) {
	defer func(d time.Duration) { paceStall = d }(paceStall)
	// Long enough that a loaded machine running -race does not stall a
	// goroutine past it between two slow returns (paceStall/5 apart).
	paceStall = 500 * time.Millisecond
	h := &Handle{paceWake: make(chan struct{}, 1)}
	ctx := context.Background()
	const msg = 1 << 20
	// The dispatcher: once a multicast waits, n messages come back, one
	// every interval.
	giveBack := func(n int, size uint64, interval time.Duration) {
		for h.paceTarget.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		for i := 0; i < n; i++ {
			time.Sleep(interval)
			h.dispatchMu.Lock()
			h.ownReturned(size)
			h.wakePacer()
			h.dispatchMu.Unlock()
		}
	}

	h.sent = inFlightLimit // four 1 MiB messages on their way
	if !h.mustWait(msg) {
		t.Fatal("a fifth 1 MiB message would not wait")
	}
	go giveBack(1, 2*msg, 0) // two come back at once: enough to go on
	start := time.Now()
	if err := h.pace(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited >= paceStall {
		t.Fatalf("pace was not woken by the returned messages: waited %v", waited)
	}
	if got := h.inFlight(); got != 2*msg || h.paceGaveUp != 0 {
		t.Fatalf("in flight %d, gave up %d times", got, h.paceGaveUp)
	}

	// Back over the limit (5 MiB in flight); the 3 MiB that must return
	// come back in twelve slow pieces, over longer than paceStall: pace
	// waits for all of them.
	h.sent += 3 * msg
	go giveBack(12, msg/4, paceStall/5)
	start = time.Now()
	if err := h.pace(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < paceStall || h.paceGaveUp != 0 || h.inFlight() != 2*msg {
		t.Fatalf("slow returns: waited %v, gave up %d times, in flight %d", waited, h.paceGaveUp, h.inFlight())
	}

	// Nothing comes back: pace gives up after paceStall and writes
	// what is in flight off.
	h.sent += 2 * msg
	start = time.Now()
	if err := h.pace(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < paceStall {
		t.Fatalf("pace gave up after %v, before paceStall", waited)
	}
	if got := h.inFlight(); got != 0 || h.paceGaveUp != 1 || h.paceWaits != 3 {
		t.Fatalf("after giving up: in flight %d, gave up %d of %d", got, h.paceGaveUp, h.paceWaits)
	}
	// The written-off messages come back after all.
	h.ownReturned(5 * msg)
	if got := h.inFlight(); got != 0 || h.mustWait(msg) {
		t.Fatalf("late messages: in flight %d", got)
	}
	h.sent += msg
	if got := h.inFlight(); got != msg {
		t.Fatalf("one message sent after the late ones: in flight %d", got)
	}

	// A cancelled context ends the wait.
	h.sent += inFlightLimit
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := h.pace(cctx, msg); !errors.Is(err, context.Canceled) {
		t.Fatalf("pace with a cancelled context: %v", err)
	}
}

// A dispatch that fails ends the stream before dispatchMu is let go:
// otherwise the other dispatcher (the dispatch goroutine, or a multicast
// delivering what is ready) could take the lock first and deliver events
// from after the lost one ahead of the *Terminated.
func TestFailedDispatchEndsStreamUnderLock(t *testing.T) {
	h := &Handle{events: make(chan Event, 4), paceWake: make(chan struct{}, 1)}
	h.q = newQueue(h.events)
	stop := make(chan struct{})
	defer close(stop)
	go h.q.pump(stop)

	h.dispatchMu.Lock()
	err := h.dispatchSome(1) // no such handle: libcpg answers CS_ERR_BAD_HANDLE
	ended := h.Err()
	h.dispatchMu.Unlock()
	if !errors.Is(err, cs.ErrBadHandle) {
		t.Fatalf("dispatchSome on no handle: %v, want CS_ERR_BAD_HANDLE", err)
	}
	if ended == nil {
		t.Fatal("the stream had not ended when dispatchSome returned its error, with dispatchMu still held")
	}
	select {
	case ev := <-h.events:
		if term, ok := ev.(*Terminated); !ok || !errors.Is(term.Err, cs.ErrBadHandle) {
			t.Fatalf("first event %#v, want *Terminated with the dispatch error", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no *Terminated event")
	}
	if ev, ok := <-h.events; ok {
		t.Fatalf("event %#v after *Terminated", ev)
	}
}
