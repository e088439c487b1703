package cs

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The delay doubles up to Max; a closed wake ends a wait early without
// growing it; an ended context ends it with the context's error.
func TestBackoff(t *testing.T) {
	b := Backoff{Delay: time.Millisecond, Max: 3 * time.Millisecond}
	defer b.Stop()
	ctx := context.Background()
	for _, want := range []time.Duration{2, 3, 3} {
		if err := b.Wait(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if b.Delay != want*time.Millisecond {
			t.Fatalf("delay %v, want %v", b.Delay, want*time.Millisecond)
		}
	}
	woken := make(chan struct{})
	close(woken)
	b.Delay = time.Hour
	if err := b.Wait(ctx, woken); err != nil || b.Delay != time.Hour {
		t.Fatalf("woken wait: %v, delay %v", err, b.Delay)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Wait(ended, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with an ended context: %v", err)
	}
}
