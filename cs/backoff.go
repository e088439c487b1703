package cs

import (
	"context"
	"time"
)

// Backoff paces the retries of a call that corosync answered with
// CS_ERR_TRY_AGAIN (it syncs a new ring, or its queues are full). Each Wait
// sleeps the current delay and doubles it, up to Max. The zero value is not
// usable: set Delay and Max. Call Stop when done.
type Backoff struct {
	Delay, Max time.Duration
	timer      *time.Timer
}

// Wait sleeps the current delay, or less if wake is closed first (a sign
// that corosync has moved; a nil wake never is). It returns ctx's error if
// ctx ends first, else nil.
func (b *Backoff) Wait(ctx context.Context, wake <-chan struct{}) error {
	if b.timer == nil {
		b.timer = time.NewTimer(b.Delay)
	} else {
		b.timer.Reset(b.Delay) // Go 1.23 timers: no stale fire to drain
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
		return nil
	case <-b.timer.C:
		b.Delay = min(2*b.Delay, b.Max)
		return nil
	}
}

// Stop releases the timer.
func (b *Backoff) Stop() {
	if b.timer != nil {
		b.timer.Stop()
	}
}
