package cpg

import (
	"testing"
	"time"
)

// The queue hands events over in push order, however far the consumer is
// behind, and ends the channel after the final batch.
func TestQueueSlowConsumer(t *testing.T) {
	out := make(chan Event, 4)
	q := newQueue(out)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { q.pump(stop); close(done) }()

	const n = 100000
	batch := make([]Event, 0, 100)
	for i := 0; i < n; i++ {
		batch = append(batch, &Message{NodeID: uint32(i)})
		if len(batch) == cap(batch) {
			q.push(batch, false)
			batch = batch[:0]
		}
	}
	q.push([]Event{&Terminated{}}, true)
	time.Sleep(10 * time.Millisecond) // the consumer is asleep meanwhile
	if got := q.len(); got != n+1 {
		t.Fatalf("queued %d, want %d", got, n+1)
	}
	for i := 0; i < n; i++ {
		m := (<-out).(*Message)
		if m.NodeID != uint32(i) {
			t.Fatalf("event %d is %d", i, m.NodeID)
		}
	}
	if _, ok := (<-out).(*Terminated); !ok {
		t.Fatal("last event is not Terminated")
	}
	if _, ok := <-out; ok {
		t.Fatal("channel open after the final batch")
	}
	<-done
}

func TestQueueStop(t *testing.T) {
	out := make(chan Event)
	q := newQueue(out)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { q.pump(stop); close(done) }()
	q.push([]Event{&Message{}, &Message{}}, false)
	<-out
	close(stop) // nobody reads the second event
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("pump did not stop")
	}
	if _, ok := <-out; ok {
		t.Fatal("channel not closed after stop")
	}
	if n := q.len(); n != 0 {
		t.Errorf("%d events still counted as pending after the stop discarded them", n)
	}
}
