package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/groupd-go/groupd/cman"
	"github.com/groupd-go/groupd/cpg"
	"github.com/groupd-go/groupd/internal/groupd"
)

// nameCache answers groupd.Namer from memory: the state loop must never
// wait on corosync for a name.
type nameCache struct {
	m atomic.Pointer[map[uint32]string]
}

func (c *nameCache) NodeName(id uint32) string {
	if m := c.m.Load(); m != nil {
		return (*m)[id]
	}
	return ""
}

func (c *nameCache) set(nodes []cman.Node) {
	m := make(map[uint32]string, len(nodes))
	for _, n := range nodes {
		m[n.ID] = n.Name
	}
	c.m.Store(&m)
}

// groupConfChg converts a cpg confchg for the state machine.
func groupConfChg(c *cpg.ConfChg) groupd.GroupConfChg {
	conv := func(as []cpg.Address) []groupd.Member {
		ms := make([]groupd.Member, 0, len(as))
		for _, a := range as {
			// The reason values are corosync's in both packages.
			ms = append(ms, groupd.Member{NodeID: a.NodeID, PID: a.PID, Reason: groupd.Reason(a.Reason)})
		}
		return ms
	}
	return groupd.GroupConfChg{Members: conv(c.Members), Left: conv(c.Left), Joined: conv(c.Joined)}
}

// clusterView turns cman's two kinds of events into the NodeChange the
// machine wants, which carries both the member list and quorum.
type clusterView struct {
	known   bool
	ring    groupd.RingID
	members []uint32
	quorate bool
}

// event converts ev. It returns ok false for an event that changes nothing
// the machine tracks, and err for the terminal error event.
func (v *clusterView) event(ev cman.Event) (nc groupd.NodeChange, ok bool, err error) {
	switch ev.Kind {
	case cman.EventMembership:
		v.known = true
		v.ring = groupd.RingID{NodeID: ev.Ring.NodeID, Seq: ev.Ring.Seq}
		v.members = append([]uint32(nil), ev.Members...)
		return groupd.NodeChange{
			Ring:    v.ring,
			Members: append([]uint32(nil), v.members...),
			// corosync's own lists: a node that left and came back
			// between two notifications is in both, and only they say so.
			Joined:  append([]uint32(nil), ev.Joined...),
			Left:    append([]uint32(nil), ev.Left...),
			Quorate: v.quorate,
		}, true, nil
	case cman.EventQuorum:
		v.quorate = ev.Quorate
		if !v.known {
			// Only reachable if corosync reorders its initial events;
			// the quorum event's own list is the best we have.
			v.known = true
			v.ring = groupd.RingID{NodeID: ev.Ring.NodeID, Seq: ev.Ring.Seq}
			v.members = append([]uint32(nil), ev.Members...)
		}
		// The member list stays the last nodelist notification's, so a
		// quorum event never invents joins or leaves. QuorumRing is the
		// notice's own ring: corosync sends one at every ring change,
		// after the ring's members, and more within a ring when the
		// votes change.
		return groupd.NodeChange{
			Ring: v.ring, Members: append([]uint32(nil), v.members...), Quorate: v.quorate,
			QuorumRing: groupd.RingID{NodeID: ev.Ring.NodeID, Seq: ev.Ring.Seq},
		}, true, nil
	case cman.EventError:
		err := ev.Err
		if err == nil {
			err = errors.New("the cman event stream ended")
		}
		return groupd.NodeChange{}, false, err
	}
	return groupd.NodeChange{}, false, nil
}

// adapter feeds the daemon's one event channel from the cpg and cman
// streams and from main's phase changes, in one goroutine, so the channel
// has a single writer that may close it.
type adapter struct {
	cpgEvents  <-chan cpg.Event
	cmanEvents <-chan cman.Event
	ourID      uint32
	ourPID     uint32
	log        *logrus.Logger
	// refreshNames asks for the name cache to be reloaded, without
	// waiting for it; called when a membership change is passed on, so
	// that nodes added to corosync's nodelist get names.
	refreshNames func()
	// lost is called once when corosync went away, before out is closed.
	lost func(error)

	view     clusterView
	phases   chan groupd.Phase
	out      chan groupd.Event
	left     chan struct{} // closed when our own clean leave is seen
	leftOnce sync.Once
	// quorate is closed the first time the cluster is seen quorate.
	quorate     chan struct{}
	quorateOnce sync.Once
	done        chan struct{} // closed when run returns
}

func newAdapter(cpgEvents <-chan cpg.Event, cmanEvents <-chan cman.Event, ourID, ourPID uint32, quorate bool) *adapter {
	a := &adapter{
		cpgEvents:  cpgEvents,
		cmanEvents: cmanEvents,
		ourID:      ourID,
		ourPID:     ourPID,
		view:       clusterView{quorate: quorate},
		phases:     make(chan groupd.Phase),
		out:        make(chan groupd.Event, 16),
		left:       make(chan struct{}),
		quorate:    make(chan struct{}),
		done:       make(chan struct{}),
	}
	if quorate {
		a.quorateOnce.Do(func() { close(a.quorate) })
	}
	return a
}

// setPhase tells the machine, through the adapter, that the daemon moved
// on. It gives up when the adapter has stopped (corosync went away).
func (a *adapter) setPhase(ctx context.Context, p groupd.Phase) {
	select {
	case a.phases <- p:
	case <-a.done:
	case <-ctx.Done():
	}
}

// run forwards events until ctx ends or corosync goes away.
func (a *adapter) run(ctx context.Context) {
	defer close(a.done)
	send := func(ev groupd.Event) bool {
		select {
		case a.out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	gone := func(err error) {
		if a.lost != nil {
			a.lost(err)
		}
		close(a.out)
	}
	cpgEvents, cmanEvents := a.cpgEvents, a.cmanEvents
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-a.phases:
			if !send(groupd.SetPhase{Phase: p}) {
				return
			}
		case ev, ok := <-cmanEvents:
			if !ok {
				// Closed without an error event: our own Close.
				cmanEvents = nil
				continue
			}
			nc, ok, err := a.view.event(ev)
			if err != nil {
				gone(fmt.Errorf("cluster membership (cman) connection: %w", err))
				return
			}
			if a.view.quorate {
				a.quorateOnce.Do(func() { close(a.quorate) })
			}
			if !ok {
				continue
			}
			if ev.Kind == cman.EventMembership && a.refreshNames != nil {
				a.refreshNames()
			}
			if !send(nc) {
				return
			}
		case ev, ok := <-cpgEvents:
			if !ok {
				cpgEvents = nil
				continue
			}
			switch ev := ev.(type) {
			case *cpg.ConfChg:
				for _, l := range ev.Left {
					if l.NodeID == a.ourID && l.PID == a.ourPID && l.Reason == cpg.ReasonLeave {
						a.leftOnce.Do(func() { close(a.left) })
					}
				}
				if !send(groupConfChg(ev)) {
					return
				}
			case *cpg.Message:
				if !send(groupd.GroupMessage{NodeID: ev.NodeID, PID: ev.PID, Data: ev.Data}) {
					return
				}
			case *cpg.TotemConfChg:
				if a.log != nil {
					a.log.Debugf("corosync ring %s has %d nodes: %v", groupd.RingID{NodeID: ev.Ring.NodeID, Seq: ev.Ring.Seq}, len(ev.Members), ev.Members)
				}
			case *cpg.Terminated:
				gone(fmt.Errorf("process group (cpg) connection: %w", ev.Err))
				return
			}
		}
	}
}
