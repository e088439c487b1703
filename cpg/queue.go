package cpg

import (
	"sync"
	"sync/atomic"
)

// queue carries events from the dispatch goroutine to the consumer's
// channel. It has no bound: the dispatcher never waits for the consumer,
// so corosync's IPC ring is always drained and a slow consumer costs
// memory, not lost or reordered events (see "Buffering" in the package doc).
//
// While the consumer keeps up, the dispatcher puts events straight into
// the channel. Once the channel is full, the rest spill into pending, and
// the pump goroutine feeds them to the channel in order; until it has
// caught up, every new event spills too, so nothing overtakes.
type queue struct {
	out chan Event

	mu      sync.Mutex
	pending []Event
	pumping bool          // the pump holds events not yet in the channel
	ended   bool          // no more events will come
	wake    chan struct{} // capacity 1: "pending may be non-empty"
	length  atomic.Int64  // events spilled and not yet in the channel
}

// maxSpare is the most events the pump's spare slice may hold on to.
const maxSpare = 4096

func newQueue(out chan Event) *queue {
	return &queue{out: out, wake: make(chan struct{}, 1)}
}

// push hands over a batch, in order. Pushes come from whoever holds the
// handle's dispatchMu (the dispatch goroutine, a multicast delivering
// what is ready, terminate), so never two at once; end marks the last
// batch.
func (q *queue) push(batch []Event, end bool) {
	q.mu.Lock()
	if !end && len(q.pending) == 0 && !q.pumping {
		for len(batch) > 0 {
			select {
			case q.out <- batch[0]:
				batch = batch[1:]
				continue
			default:
			}
			break
		}
		if len(batch) == 0 {
			q.mu.Unlock()
			return
		}
	}
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

// take returns everything spilled, and whether the stream has ended. With
// nothing spilled it lets the dispatcher use the channel directly again.
func (q *queue) take(spare []Event) ([]Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.pending
	q.pending = spare[:0]
	q.pumping = len(batch) > 0
	return batch, q.ended
}

func (q *queue) len() int { return int(q.length.Load()) + len(q.out) }

// pump moves spilled events to the channel in order until the stream has
// ended and everything was delivered, or stop is closed; then it closes
// the channel. Stopped, it discards what it had not delivered, which then
// no longer counts in len. The dispatcher must have stopped pushing before
// stop is closed.
func (q *queue) pump(stop <-chan struct{}) {
	defer close(q.out)
	defer func() {
		q.mu.Lock()
		q.pending = nil
		q.length.Store(0)
		q.mu.Unlock()
	}()
	var spare []Event
	for {
		batch, ended := q.take(spare)
		for i, ev := range batch {
			select {
			case q.out <- ev:
				q.length.Add(-1)
				batch[i] = nil // let the consumer's copy be the only one
			case <-stop:
				return
			}
		}
		// A burst's backlog is not kept once it has been delivered.
		spare = batch
		if cap(spare) > maxSpare {
			spare = nil
		}
		if ended && len(batch) == 0 {
			return
		}
		if len(batch) > 0 {
			continue // see whether more spilled meanwhile
		}
		select {
		case <-q.wake:
		case <-stop:
			return
		}
	}
}
