package main

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/groupd-go/groupd/cman"
	"github.com/groupd-go/groupd/cpg"
	"github.com/groupd-go/groupd/internal/groupd"
)

func TestGroupConfChg(t *testing.T) {
	got := groupConfChg(&cpg.ConfChg{
		Group:   "groupd",
		Members: []cpg.Address{{NodeID: 1, PID: 10}, {NodeID: 3, PID: 30}},
		Left:    []cpg.Address{{NodeID: 2, PID: 20, Reason: cpg.ReasonProcDown}},
		Joined:  []cpg.Address{{NodeID: 3, PID: 30, Reason: cpg.ReasonNodeUp}},
	})
	want := groupd.GroupConfChg{
		Members: []groupd.Member{{NodeID: 1, PID: 10}, {NodeID: 3, PID: 30}},
		Left:    []groupd.Member{{NodeID: 2, PID: 20, Reason: groupd.ReasonProcDown}},
		Joined:  []groupd.Member{{NodeID: 3, PID: 30, Reason: groupd.ReasonNodeUp}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groupConfChg = %+v, want %+v", got, want)
	}
	// Every cpg reason keeps its meaning.
	for _, r := range []cpg.Reason{cpg.ReasonJoin, cpg.ReasonLeave, cpg.ReasonNodeDown, cpg.ReasonNodeUp, cpg.ReasonProcDown} {
		if r.String() != groupd.Reason(r).String() {
			t.Errorf("cpg reason %s becomes %s", r, groupd.Reason(r))
		}
	}
}

func TestClusterView(t *testing.T) {
	v := clusterView{quorate: false}
	ring := cman.RingID{NodeID: 1, Seq: 8}
	steps := []struct {
		ev   cman.Event
		want groupd.NodeChange
	}{
		{
			cman.Event{Kind: cman.EventMembership, Initial: true, Ring: ring, Members: []uint32{1, 2}, Joined: []uint32{}, Left: []uint32{}},
			groupd.NodeChange{Ring: groupd.RingID{NodeID: 1, Seq: 8}, Members: []uint32{1, 2}, Quorate: false},
		},
		{
			// The quorum event's own list may lag; the nodelist's is kept.
			// It is marked as the quorum notice for its own ring.
			cman.Event{Kind: cman.EventQuorum, Ring: ring, Members: []uint32{1}, Quorate: true},
			groupd.NodeChange{Ring: groupd.RingID{NodeID: 1, Seq: 8}, Members: []uint32{1, 2}, Quorate: true, QuorumRing: groupd.RingID{NodeID: 1, Seq: 8}},
		},
		{
			cman.Event{Kind: cman.EventMembership, Ring: cman.RingID{NodeID: 1, Seq: 9}, Members: []uint32{1, 3}, Joined: []uint32{3}, Left: []uint32{2}},
			groupd.NodeChange{Ring: groupd.RingID{NodeID: 1, Seq: 9}, Members: []uint32{1, 3}, Joined: []uint32{3}, Left: []uint32{2}, Quorate: true},
		},
		{
			// A notice for a ring whose members have not come: it names
			// its own ring, the members stay the last ring's.
			cman.Event{Kind: cman.EventQuorum, Ring: cman.RingID{NodeID: 1, Seq: 10}, Members: []uint32{1}, Quorate: false},
			groupd.NodeChange{Ring: groupd.RingID{NodeID: 1, Seq: 9}, Members: []uint32{1, 3}, Quorate: false, QuorumRing: groupd.RingID{NodeID: 1, Seq: 10}},
		},
	}
	for i, s := range steps {
		got, ok, err := v.event(s.ev)
		if !ok || err != nil {
			t.Fatalf("step %d: ok %v err %v", i, ok, err)
		}
		if !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d: %+v, want %+v", i, got, s.want)
		}
	}
	_, ok, err := v.event(cman.Event{Kind: cman.EventError, Err: errors.New("gone")})
	if ok || err == nil {
		t.Errorf("error event: ok %v err %v, want an error", ok, err)
	}
}

func recv(t *testing.T, ch <-chan groupd.Event) groupd.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return nil
}

func TestAdapter(t *testing.T) {
	cpgCh := make(chan cpg.Event, 8)
	cmanCh := make(chan cman.Event, 8)
	a := newAdapter(cpgCh, cmanCh, 1, 100, true)
	names := &nameCache{}
	a.refreshNames = func() { names.set([]cman.Node{{ID: 1, Name: "alpha"}, {ID: 2, Name: "beta"}}) }
	lostErr := make(chan error, 1)
	a.lost = func(err error) {
		// The daemon closes its socket here, before the state loop can
		// see the input end.
		select {
		case <-a.out:
			t.Error("out was closed before lost was called")
		default:
		}
		lostErr <- err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { a.run(ctx); close(done) }()

	cmanCh <- cman.Event{Kind: cman.EventMembership, Ring: cman.RingID{NodeID: 1, Seq: 4}, Members: []uint32{1, 2}}
	if nc, ok := recv(t, a.out).(groupd.NodeChange); !ok || !nc.Quorate || len(nc.Members) != 2 {
		t.Errorf("first event %+v, want the membership with the quorum from Open", nc)
	}
	if names.NodeName(2) != "beta" {
		t.Error("names were not refreshed before the membership was passed on")
	}

	go a.setPhase(ctx, groupd.PhaseJoining)
	if p, ok := recv(t, a.out).(groupd.SetPhase); !ok || p.Phase != groupd.PhaseJoining {
		t.Errorf("phase event %+v", p)
	}

	cpgCh <- &cpg.TotemConfChg{Members: []uint32{1, 2}} // not for the machine
	cpgCh <- &cpg.Message{NodeID: 2, PID: 200, Data: []byte("hi")}
	if m, ok := recv(t, a.out).(groupd.GroupMessage); !ok || m.PID != 200 || string(m.Data) != "hi" {
		t.Errorf("message event %+v", m)
	}
	// Another process's leave is not ours.
	cpgCh <- &cpg.ConfChg{Left: []cpg.Address{{NodeID: 1, PID: 101, Reason: cpg.ReasonLeave}}}
	recv(t, a.out)
	select {
	case <-a.left:
		t.Error("left closed for another process's leave")
	default:
	}
	cpgCh <- &cpg.ConfChg{Left: []cpg.Address{{NodeID: 1, PID: 100, Reason: cpg.ReasonLeave}}}
	recv(t, a.out)
	select {
	case <-a.left:
	case <-time.After(5 * time.Second):
		t.Error("left not closed after our own clean leave")
	}

	cpgCh <- &cpg.Terminated{Err: errors.New("corosync died")}
	select {
	case err := <-lostErr:
		if err == nil {
			t.Error("lost called with nil")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lost not called")
	}
	if _, ok := <-a.out; ok {
		t.Error("out not closed after corosync went away")
	}
	<-done
	// A phase change after that must not hang the daemon's shutdown.
	a.setPhase(context.Background(), groupd.PhaseLeaving)
}

// The join waits on a.quorate: it must open on the first quorate event and
// only then.
func TestAdapterQuorateOpensOnQuorum(t *testing.T) {
	cmanCh := make(chan cman.Event, 8)
	a := newAdapter(make(chan cpg.Event), cmanCh, 1, 100, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.run(ctx)

	cmanCh <- cman.Event{Kind: cman.EventMembership, Ring: cman.RingID{NodeID: 1, Seq: 4}, Members: []uint32{1}}
	recv(t, a.out)
	select {
	case <-a.quorate:
		t.Fatal("quorate open while the cluster is not quorate")
	default:
	}
	cmanCh <- cman.Event{Kind: cman.EventQuorum, Quorate: true, Ring: cman.RingID{NodeID: 1, Seq: 8}, Members: []uint32{1, 2}}
	select {
	case <-a.quorate:
	case <-time.After(5 * time.Second):
		t.Fatal("quorate not opened by a quorate event")
	}
	if q := newAdapter(nil, nil, 1, 100, true); q != nil {
		select {
		case <-q.quorate:
		default:
			t.Fatal("an adapter created quorate does not say so")
		}
	}
}

// corosync's cluster side going away (cman's error event) ends the adapter
// as the cpg side does: lost first, with the cause, then out closed.
func TestAdapterCmanError(t *testing.T) {
	cmanCh := make(chan cman.Event, 8)
	a := newAdapter(make(chan cpg.Event), cmanCh, 1, 100, true)
	lostErr := make(chan error, 1)
	a.lost = func(err error) {
		select {
		case <-a.out:
			t.Error("out was closed before lost was called")
		default:
		}
		lostErr <- err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { a.run(ctx); close(done) }()

	cmanCh <- cman.Event{Kind: cman.EventMembership, Ring: cman.RingID{NodeID: 1, Seq: 4}, Members: []uint32{1}}
	recv(t, a.out)
	cause := errors.New("quorum service gone")
	cmanCh <- cman.Event{Kind: cman.EventError, Err: cause}
	select {
	case err := <-lostErr:
		if !errors.Is(err, cause) {
			t.Errorf("lost(%v), want the cman error wrapped", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lost not called after the cman error event")
	}
	if _, ok := <-a.out; ok {
		t.Error("out not closed after the cman error event")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the adapter still runs after the cman error event")
	}
	a.setPhase(context.Background(), groupd.PhaseLeaving)
}
