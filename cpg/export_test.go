package cpg

import (
	"sync"
	"time"
)

// PaceStats returns how many times h's multicasts waited for their own
// messages to come back, and how many of those waits were ended by the
// returned messages waking them.
func PaceStats(h *Handle) (waits, woken uint64) {
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	return h.paceWaits, h.paceWoken
}

// Interrupted returns how many of h's fragmented messages were sent again
// because the group's membership changed while they went out.
func Interrupted(h *Handle) uint64 {
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	return h.interrupted
}

// SetPaceStall sets paceStall for a test and returns a function that puts
// it back.
func SetPaceStall(d time.Duration) (restore func()) {
	old := paceStall
	paceStall = d
	return func() { paceStall = old }
}

// SetDeliverHook sets deliverHook for a test and returns a function that
// clears it.
func SetDeliverHook(f func(size int)) (restore func()) {
	deliverHook = f
	return func() { deliverHook = nil }
}

// SetJoining marks h as waiting for its join to be delivered, or not, for
// a test.
func SetJoining(h *Handle, v bool) { h.joining.Store(v) }

// InlineDispatchMax is the most events a Multicast delivers itself.
const InlineDispatchMax = inlineDispatchMax

// HoldDispatch makes h's dispatch goroutine wait, each time it wakes,
// until the returned function is called (it also clears the hold).
func HoldDispatch(h *Handle) (release func()) {
	held := make(chan struct{})
	gate := func(x *Handle) {
		if x == h {
			<-held
		}
	}
	dispatchGate.Store(&gate)
	var once sync.Once
	return func() {
		once.Do(func() {
			dispatchGate.Store(nil)
			close(held)
		})
	}
}
