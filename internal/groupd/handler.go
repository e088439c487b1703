package groupd

import (
	"context"

	"github.com/groupd-go/groupd/internal/query"
)

// QueryHandler answers the query protocol from the daemon: reads from the
// latest snapshot, ack and watch through the loop. dump supplies the
// recent log lines (a logring.Ring's Lines); nil gives none.
func (d *Daemon) QueryHandler(dump func() []string) query.Handler {
	return queryHandler{d: d, dump: dump}
}

type queryHandler struct {
	d    *Daemon
	dump func() []string
}

func (h queryHandler) Status() query.Status { return StatusOf(h.d.Snapshot()) }

func (h queryHandler) Bypass(nodeID uint32) query.Bypass {
	c := h.d.Snapshot().BypassDetail(nodeID)
	return query.Bypass{
		NodeID: c.NodeID, Allowed: c.Allowed, Known: c.Known,
		ClusterMember: c.ClusterMember, GroupMember: c.GroupMember, Hello: c.Hello,
		PendingRecovery: c.PendingRecovery, Reason: c.Reason,
	}
}

func (h queryHandler) Ack(ctx context.Context, nodeID uint32) (query.RecoverySet, error) {
	s, err := h.d.Ack(ctx, nodeID)
	if err != nil {
		return query.RecoverySet{}, err
	}
	return wireSet(s), nil
}

func (h queryHandler) Dump() []string {
	if h.dump == nil {
		return nil
	}
	return h.dump()
}

func (h queryHandler) Watch(ctx context.Context) (<-chan query.Event, error) {
	in, err := h.d.Watch(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan query.Event)
	go func() {
		defer close(out)
		for {
			// ctx is checked here as well as by the loop, which only
			// notices a finished watcher at its next event.
			select {
			case <-ctx.Done():
				return
			case n, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- query.Event{Time: n.Time, Level: n.Level, Kind: n.Kind, NodeID: n.NodeID, Text: n.Text}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// StatusOf converts a snapshot to the status the query protocol returns.
func StatusOf(s *Snapshot) query.Status {
	st := query.Status{
		Time: s.Time, NodeID: s.OurNodeID, NodeName: s.OurName, PID: s.OurPID, Started: s.Start,
		Phase: string(s.Phase), ClusterKnown: s.ClusterKnown, Quorate: s.Quorate,
		ClusterMembers: append([]uint32{}, s.ClusterMembers...), Joined: s.Joined,
		Members: []query.Member{}, Recovery: []query.RecoverySet{},
	}
	if s.ClusterKnown {
		st.Ring = s.Ring.String()
	}
	for _, id := range s.ClusterMembers {
		st.Nodes = append(st.Nodes, query.Node{NodeID: id, Name: s.ClusterNames[id]})
	}
	for _, m := range s.Members {
		st.Members = append(st.Members, query.Member{
			NodeID: m.NodeID, PID: m.PID, Name: m.Name, Since: m.Since, Hello: m.Hello,
			HelloVersion: m.HelloVersion, HelloStart: m.HelloStart, StaleHello: m.StaleHello,
		})
	}
	for _, r := range s.Recovery {
		st.Recovery = append(st.Recovery, wireSet(r))
	}
	for _, r := range s.Closed {
		st.Closed = append(st.Closed, wireSet(r))
	}
	return st
}

func wireSet(r RecoverySet) query.RecoverySet {
	w := query.RecoverySet{
		NodeID: r.NodeID, Name: r.Name, State: string(r.State), Reason: r.Reason.String(),
		Failed: r.Failed, FailedMonotonic: r.FailedMono, Ring: r.Ring.String(), PID: r.PID, Start: r.Start,
		MoreRuns:      r.runsFull,
		GroupReported: r.GroupReported, ClusterReported: r.ClusterReported, KillRequested: r.KillRequested,
		KillError: r.KillError, Failures: r.Failures, LastFailure: r.LastFailure, Acked: r.Acked, Closed: r.Closed,
	}
	for _, run := range r.Runs {
		w.Runs = append(w.Runs, query.Run{PID: run.PID, Start: run.Start})
	}
	return w
}
