package cpg

import "time"

// PaceStats returns how many times h's multicasts waited for their own
// messages to come back, how many of those waits ended on the pacing
// timeout instead, and how many bytes of its own messages are in flight.
func PaceStats(h *Handle) (waits, gaveUp, inFlight uint64) {
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	return h.paceWaits, h.paceGaveUp, h.inFlight()
}

// InFlightLimit is inFlightLimit, for tests.
const InFlightLimit = inFlightLimit

// SetPaceStall sets paceStall for a test and returns a function that puts
// it back.
func SetPaceStall(d time.Duration) (restore func()) {
	old := paceStall
	paceStall = d
	return func() { paceStall = old }
}
