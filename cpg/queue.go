package cpg

import (
	"sync"
	"sync/atomic"
)

// queue carries events from the dispatch goroutine to the consumer's
// channel. It has no bound: the dispatcher never waits for the consumer,
// so corosync's IPC ring is always drained and a slow consumer costs
// memory, not lost or reordered events (see "Buffering" in the package doc).
type queue struct {
	mu      sync.Mutex
	pending []Event
	wake    chan struct{} // capacity 1: "pending may be non-empty"
	ended   bool          // no more pushes will come
	length  atomic.Int64  // events pushed and not yet handed to the channel
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

// push appends a batch in order. Only the dispatch goroutine pushes.
func (q *queue) push(batch []Event, end bool) {
	q.mu.Lock()
	q.pending = append(q.pending, batch...)
	q.length.Add(int64(len(batch)))
	if end {
		q.ended = true
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns everything pending, and whether the stream has ended.
func (q *queue) take(spare []Event) ([]Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.pending
	q.pending = spare[:0]
	return batch, q.ended
}

func (q *queue) len() int { return int(q.length.Load()) }

// pump moves events from q to out in order until the stream has ended and
// everything was delivered, or stop is closed; then it closes out.
func (q *queue) pump(out chan<- Event, stop <-chan struct{}) {
	defer close(out)
	var spare []Event
	for {
		batch, ended := q.take(spare)
		for i, ev := range batch {
			select {
			case out <- ev:
				q.length.Add(-1)
				batch[i] = nil // let the consumer's copy be the only one
			case <-stop:
				return
			}
		}
		spare = batch
		if ended {
			// The final push set ended together with its batch, and
			// nothing is pushed after it: this batch was the rest.
			return
		}
		select {
		case <-q.wake:
		case <-stop:
			return
		}
	}
}
