package cman

import (
	"encoding/json"
	"fmt"
	"sync"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventMembership is a nodelist notification: the members of a new
	// ring, and which nodes joined and left it.
	EventMembership EventKind = iota + 1
	// EventQuorum is a quorum notification: whether the cluster is quorate
	// and the member list that decision was made on.
	EventQuorum
	// EventError is the last event of a stream: the connection to corosync
	// is gone, Err says why, and the channel is closed after it.
	EventError
)

var kindNames = map[EventKind]string{
	EventMembership: "membership",
	EventQuorum:     "quorum",
	EventError:      "error",
}

// String returns the kind's name, as in the JSON form.
func (k EventKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// MarshalText writes the kind as "membership", "quorum" or "error".
func (k EventKind) MarshalText() ([]byte, error) {
	if s, ok := kindNames[k]; ok {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("cman: unknown event kind %d", uint8(k))
}

// UnmarshalText reads what MarshalText writes.
func (k *EventKind) UnmarshalText(b []byte) error {
	for kind, s := range kindNames {
		if s == string(b) {
			*k = kind
			return nil
		}
	}
	return fmt.Errorf("cman: unknown event kind %q", b)
}

// RingID identifies a membership: the node that formed the ring and a
// sequence number that grows with every new ring (struct quorum_ring_id).
type RingID struct {
	NodeID uint32 `json:"nodeid"`
	Seq    uint64 `json:"seq"`
}

// String formats the ring id as corosync's tools do ("1.5", both in hex).
func (r RingID) String() string { return fmt.Sprintf("%x.%x", r.NodeID, r.Seq) }

// Event is one entry of the stream returned by Cluster.Events.
//
// Node id lists are copies the caller owns. They are never nil, so JSON
// shows them as [] when empty.
type Event struct {
	Kind EventKind `json:"kind"`
	// Initial marks the first membership and the first quorum event of a
	// stream: the state when the stream started, not a change. Joined and
	// Left are empty in the initial membership event.
	Initial bool `json:"initial,omitempty"`
	// Ring is the ring id of the membership (membership and quorum events).
	Ring RingID `json:"ring"`
	// Members are the node ids of the ring, in corosync's order.
	Members []uint32 `json:"members"`
	// Joined and Left come straight from corosync's nodelist notification
	// (membership events only). A node that left and came back between
	// two notifications is in both.
	Joined []uint32 `json:"joined"`
	Left   []uint32 `json:"left"`
	// Quorate is set on quorum events only.
	Quorate bool `json:"quorate"`
	// Err is set on the terminal EventError only. When corosync went
	// away it wraps a cs.Error (cs.ErrLibrary, as a rule); a failure to
	// wait for the quorum fd or a panic in a notification handler gives
	// other errors. JSON carries its text as "error".
	Err error `json:"-"`
}

// MarshalJSON encodes the event with Err as the string field "error".
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	v := struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain: plain(e)}
	if e.Err != nil {
		v.Error = e.Err.Error()
	}
	return json.Marshal(v)
}

// String is a one-line description of the event, for logs.
func (e Event) String() string {
	switch e.Kind {
	case EventMembership:
		return fmt.Sprintf("membership ring %s members %v joined %v left %v", e.Ring, e.Members, e.Joined, e.Left)
	case EventQuorum:
		return fmt.Sprintf("quorum ring %s quorate %v members %v", e.Ring, e.Quorate, e.Members)
	case EventError:
		return fmt.Sprintf("error: %v", e.Err)
	}
	return e.Kind.String()
}

// queue carries events from the dispatch goroutine to the consumer's
// channel. push never blocks and never drops, so a slow consumer can not
// stall quorum_dispatch (and with it corosync's IPC to us) nor lose or
// reorder events; the cost is memory while the consumer lags.
type queue struct {
	out  chan Event
	wake chan struct{} // one pending wake-up for run
	stop chan struct{} // closed by abandon
	done chan struct{} // closed when run has closed out and returned

	mu       sync.Mutex
	items    []Event
	finished bool // no more pushes; run drains items, then closes out
	stopOnce sync.Once
}

func newQueue() *queue {
	return &queue{
		out:  make(chan Event),
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
}

// push appends an event. Pushes after finish are dropped.
func (q *queue) push(e Event) {
	q.mu.Lock()
	if q.finished {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, e)
	q.mu.Unlock()
	q.signal()
}

// finish says no event follows: run delivers what is queued, then closes
// the channel.
func (q *queue) finish() {
	q.mu.Lock()
	q.finished = true
	q.mu.Unlock()
	q.signal()
}

// abandon makes run close the channel now, dropping what is queued, and
// waits for it to return.
func (q *queue) abandon() {
	q.stopOnce.Do(func() { close(q.stop) })
	<-q.done
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run forwards queued events to out, in order, until finish or abandon.
func (q *queue) run() {
	defer close(q.done)
	defer close(q.out)
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			finished := q.finished
			q.items = nil // let a burst's backing array go
			q.mu.Unlock()
			if finished {
				return
			}
			select {
			case <-q.wake:
				continue
			case <-q.stop:
				return
			}
		}
		e := q.items[0]
		q.items[0] = Event{}
		q.items = q.items[1:]
		q.mu.Unlock()
		select {
		case q.out <- e:
		case <-q.stop:
			return
		}
	}
}
