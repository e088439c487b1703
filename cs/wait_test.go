package cs

import (
	"errors"
	"os"
	"testing"
	"time"
)

func waitAsync(w *Waiter) chan error {
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()
	return done
}

func TestWaiterWakesOnReadable(t *testing.T) {
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer wr.Close()
	w, err := NewWaiter(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	done := waitAsync(w)
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v with nothing to read", err)
	case <-time.After(50 * time.Millisecond):
	}
	wr.Write([]byte{1})
	if err := <-done; err != nil {
		t.Fatalf("Wait after write: %v", err)
	}
	// Level triggered: unread data keeps it ready.
	if err := w.Wait(); err != nil {
		t.Fatalf("second Wait: %v", err)
	}
}

func TestWaiterWakesOnHangup(t *testing.T) {
	r, wr, _ := os.Pipe()
	defer r.Close()
	w, err := NewWaiter(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	done := waitAsync(w)
	wr.Close()
	if err := <-done; err != nil {
		t.Fatalf("Wait after hang-up: %v", err)
	}
}

func TestWaiterClose(t *testing.T) {
	r, wr, _ := os.Pipe()
	defer r.Close()
	defer wr.Close()
	w, err := NewWaiter(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	done := waitAsync(w)
	time.Sleep(10 * time.Millisecond)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait on closed waiter = %v", err)
	}
}

func TestWaiterBadFD(t *testing.T) {
	if _, err := NewWaiter(-1); err == nil {
		t.Fatal("NewWaiter(-1) succeeded")
	}
}
