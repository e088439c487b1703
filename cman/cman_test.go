package cman

// Unit tier: no corosync needed, except that TestOpenWithoutCorosync makes
// sure there is none.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime/cgo"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupd-go/groupd/cs"
	"github.com/groupd-go/groupd/internal/corotest"
)

func TestMain(m *testing.M) { os.Exit(corotest.Main(m)) }

// corosyncVisible reports whether a corosync process runs where we can see
// it (outside a private namespace that would be the host's).
func corosyncVisible() bool {
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, f := range comms {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == "corosync" {
			return true
		}
	}
	return false
}

func TestOpenWithoutCorosync(t *testing.T) {
	if corotest.Unavailable() == nil {
		// In our private namespace: make sure no corosync runs.
		corotest.Stop()
	} else if corosyncVisible() {
		t.Skip("a corosync outside any private namespace is running, so Open might reach it")
	}
	c, err := Open()
	if err == nil {
		c.Close()
		t.Fatal("Open succeeded with no corosync running")
	}
	if !errors.Is(err, cs.ErrLibrary) {
		t.Errorf("Open error = %v, want one wrapping cs.ErrLibrary", err)
	}
	if !strings.Contains(err.Error(), "corosync is not running") {
		t.Errorf("Open error %q does not say corosync is not running", err)
	}
}

func TestParseNodelist(t *testing.T) {
	tests := []struct {
		name string
		kv   map[string]string
		ours uint32
		want []Node
	}{{
		name: "named nodes with two links, in position order",
		kv: map[string]string{
			"nodelist.node.0.nodeid":       "1",
			"nodelist.node.0.name":         "alpha",
			"nodelist.node.0.ring0_addr":   "10.0.0.1",
			"nodelist.node.0.ring1_addr":   "10.1.0.1",
			"nodelist.node.10.nodeid":      "3",
			"nodelist.node.10.name":        "gamma",
			"nodelist.node.10.ring0_addr":  "10.0.0.3",
			"nodelist.node.2.nodeid":       "2",
			"nodelist.node.2.name":         "beta",
			"nodelist.node.2.ring0_addr":   "10.0.0.2",
			"nodelist.node.2.quorum_votes": "3",
			"nodelist.local_node_pos":      "0",
		},
		ours: 1,
		want: []Node{
			{ID: 1, Name: "alpha", Addresses: []string{"10.0.0.1", "10.1.0.1"}, Votes: 1, Local: true},
			{ID: 2, Name: "beta", Addresses: []string{"10.0.0.2"}, Votes: 3},
			{ID: 3, Name: "gamma", Addresses: []string{"10.0.0.3"}, Votes: 1},
		},
	}, {
		name: "no name: ring0_addr",
		kv: map[string]string{
			"nodelist.node.0.nodeid":     "7",
			"nodelist.node.0.ring0_addr": "fe80::1",
		},
		want: []Node{{ID: 7, Name: "fe80::1", Addresses: []string{"fe80::1"}, Votes: 1}},
	}, {
		name: "no name, no ring0_addr: node<ID>, link gap kept",
		kv: map[string]string{
			"nodelist.node.0.nodeid":     "12",
			"nodelist.node.0.ring1_addr": "192.168.1.12",
		},
		want: []Node{{ID: 12, Name: "node12", Addresses: []string{"", "192.168.1.12"}, Votes: 1}},
	}, {
		name: "no nodeid",
		kv:   map[string]string{"nodelist.node.0.name": "lonely"},
		want: []Node{{ID: 0, Name: "lonely", Addresses: []string{}, Votes: 1}},
	}, {
		name: "no nodeids (udpu): ours found by local_node_pos",
		kv: map[string]string{
			"nodelist.node.0.name":       "a",
			"nodelist.node.0.ring0_addr": "10.0.0.1",
			"nodelist.node.1.name":       "b",
			"nodelist.node.1.ring0_addr": "10.0.0.2",
			"nodelist.local_node_pos":    "1",
		},
		ours: 167772162,
		want: []Node{
			{ID: 0, Name: "a", Addresses: []string{"10.0.0.1"}, Votes: 1},
			{ID: 167772162, Name: "b", Addresses: []string{"10.0.0.2"}, Votes: 1, Local: true},
		},
	}, {
		name: "local_node_pos at another node's entry: not ours",
		kv: map[string]string{
			"nodelist.node.0.nodeid":  "1",
			"nodelist.node.0.name":    "a",
			"nodelist.node.1.nodeid":  "2",
			"nodelist.node.1.name":    "b",
			"nodelist.local_node_pos": "0",
		},
		ours: 2,
		want: []Node{
			{ID: 1, Name: "a", Addresses: []string{}, Votes: 1},
			{ID: 2, Name: "b", Addresses: []string{}, Votes: 1},
		},
	}, {
		name: "empty",
		kv:   map[string]string{},
		want: []Node{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNodelist(tt.kv, tt.ours)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseNodelistBadValues(t *testing.T) {
	for _, kv := range []map[string]string{
		{"nodelist.node.0.nodeid": "one"},
		{"nodelist.node.0.nodeid": "4294967296"},
		{"nodelist.node.0.nodeid": "1", "nodelist.node.0.quorum_votes": "-1"},
	} {
		if _, err := parseNodelist(kv, 1); err == nil {
			t.Errorf("parseNodelist(%v) succeeded", kv)
		}
	}
}

func TestRingIDString(t *testing.T) {
	for _, tt := range []struct {
		r    RingID
		want string
	}{{RingID{1, 5}, "1.5"}, {RingID{0x10, 0x1f}, "10.1f"}} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestEventJSON(t *testing.T) {
	e := Event{Kind: EventMembership, Ring: RingID{2, 9}, Members: []uint32{1, 2}, Joined: []uint32{2}, Left: []uint32{2}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"membership","ring":{"nodeid":2,"seq":9},"members":[1,2],"joined":[2],"left":[2],"quorate":false}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}

	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Errorf("round trip: got %+v, want %+v", back, e)
	}

	b, err = json.Marshal(Event{Kind: EventError, Err: fmt.Errorf("lost: %w", cs.ErrLibrary)})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("error event JSON %s: %v", b, err)
	}
	if m["kind"] != "error" || !strings.Contains(fmt.Sprint(m["error"]), "CS_ERR_LIBRARY") {
		t.Errorf("error event JSON %s lacks kind or error text", b)
	}

	var k EventKind
	if err := k.UnmarshalText([]byte("gossip")); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := EventKind(99).MarshalText(); err == nil {
		t.Error("unknown kind marshalled")
	}
}

// A consumer that stalls until everything is pushed, then reads slowly,
// still gets every event in order and the terminal event last; the
// producer (quorum_dispatch's callbacks) never waits for it.
func TestQueueSlowConsumerGetsEverythingInOrder(t *testing.T) {
	q := newQueue()
	go q.run()
	const n = 20000
	pushed := make(chan struct{})
	go func() {
		for i := range n {
			q.push(Event{Kind: EventQuorum, Ring: RingID{Seq: uint64(i)}})
		}
		q.push(Event{Kind: EventError, Err: cs.ErrLibrary})
		q.finish()
		q.push(Event{Kind: EventQuorum, Ring: RingID{Seq: n}}) // after finish: dropped
		close(pushed)
	}()

	var got uint64
	var last Event
	for e := range q.out {
		if got == 0 {
			select {
			case <-pushed:
			case <-time.After(10 * time.Second):
				t.Fatal("the producer blocked on a consumer that does not read")
			}
		}
		if got%1000 == 0 {
			time.Sleep(time.Millisecond)
		}
		if e.Kind == EventError {
			last = e
			continue
		}
		if last.Kind == EventError {
			t.Fatalf("event %v after the terminal error", e)
		}
		if e.Ring.Seq != got {
			t.Fatalf("event %d arrived as number %d", e.Ring.Seq, got)
		}
		got++
	}
	if got != n || last.Kind != EventError {
		t.Fatalf("got %d events and last %v, want %d and the terminal error", got, last, n)
	}
}

// abandon closes the channel promptly while events are pushed and read,
// from any goroutine.
func TestQueueAbandonWhileFlowing(t *testing.T) {
	for range 20 {
		q := newQueue()
		go q.run()
		stopPush := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopPush:
					return
				default:
					q.push(Event{Kind: EventMembership, Ring: RingID{Seq: uint64(i)}})
				}
			}
		}()
		go func() {
			defer wg.Done()
			next := uint64(0)
			for e := range q.out {
				if e.Ring.Seq != next {
					t.Errorf("got seq %d, want %d", e.Ring.Seq, next)
					return
				}
				next++
			}
		}()
		time.Sleep(time.Millisecond)
		done := make(chan struct{})
		go func() { q.abandon(); q.abandon(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("abandon did not return")
		}
		close(stopPush)
		wg.Wait()
	}
}

func TestClusterForDropsUnknownContexts(t *testing.T) {
	c := &Cluster{}
	live := cgo.NewHandle(c)
	defer live.Delete()
	other := cgo.NewHandle("not a cluster")
	defer other.Delete()
	deleted := cgo.NewHandle(c)
	deleted.Delete()

	if clusterFor(uintptr(live)) != c {
		t.Error("live handle not found")
	}
	for name, ctx := range map[string]uintptr{"zero": 0, "other type": uintptr(other), "deleted": uintptr(deleted)} {
		if got := clusterFor(ctx); got != nil {
			t.Errorf("%s context: got %p, want nil", name, got)
		}
	}
}

// The handlers behind the trampolines: the first event of each kind is
// marked Initial, corosync's joined and left lists pass through untouched
// (a node can be in both), and a panicking callback ends the stream with
// an error instead of leaving a gap.
func TestNotificationHandlers(t *testing.T) {
	c := &Cluster{events: newQueue()}
	go c.events.run()
	defer c.events.abandon()

	c.onNodelist(RingID{1, 4}, []uint32{1, 2}, []uint32{}, []uint32{})
	c.onQuorum(true, RingID{1, 4}, []uint32{1, 2})
	c.onNodelist(RingID{1, 8}, []uint32{1, 2}, []uint32{2}, []uint32{2})
	c.onQuorum(true, RingID{1, 8}, []uint32{1, 2})

	want := []Event{
		{Kind: EventMembership, Initial: true, Ring: RingID{1, 4}, Members: []uint32{1, 2}, Joined: []uint32{}, Left: []uint32{}},
		{Kind: EventQuorum, Initial: true, Ring: RingID{1, 4}, Members: []uint32{1, 2}, Joined: []uint32{}, Left: []uint32{}, Quorate: true},
		{Kind: EventMembership, Ring: RingID{1, 8}, Members: []uint32{1, 2}, Joined: []uint32{2}, Left: []uint32{2}},
		{Kind: EventQuorum, Ring: RingID{1, 8}, Members: []uint32{1, 2}, Joined: []uint32{}, Left: []uint32{}, Quorate: true},
	}
	for i, w := range want {
		if got := <-c.events.out; !reflect.DeepEqual(got, w) {
			t.Errorf("event %d: got %+v, want %+v", i, got, w)
		}
	}

	func() {
		defer guard(c, "test")
		panic("boom")
	}()
	if c.callbackErr == nil || !strings.Contains(c.callbackErr.Error(), "boom") {
		t.Fatalf("callbackErr = %v after a panicking callback", c.callbackErr)
	}
	c.onQuorum(false, RingID{1, 12}, []uint32{1}) // after the failure: not delivered
	c.fail(c.callbackErr)
	if got := <-c.events.out; got.Kind != EventError {
		t.Errorf("after a callback panic got %v, want the terminal error", got)
	}
	if _, open := <-c.events.out; open {
		t.Error("stream not closed after the terminal error")
	}
}

// hungUp is what stops the dispatch goroutine if quorum_dispatch ever
// returns CS_OK on a dead connection.
func TestHungUp(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if hungUp(int(r.Fd())) {
		t.Error("open pipe reported hung up")
	}
	w.Write([]byte{1})
	if hungUp(int(r.Fd())) {
		t.Error("readable pipe reported hung up")
	}
	w.Close()
	if !hungUp(int(r.Fd())) {
		t.Error("pipe with its writer closed not reported hung up")
	}
}
