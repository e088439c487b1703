package groupd

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupd-go/groupd/internal/query"
)

// The daemon behind a real query socket, as the query tool sees it.
func TestQueryOverSocket(t *testing.T) {
	k, hs := &fakeKiller{}, &fakeHello{}
	d, err := NewDaemon(Config{
		OurNodeID: us, OurPID: ourPID, Start: t0,
		Kill: k, Hello: hs, Clock: &fakeClock{now: t0},
		Names: names{1: "alpha", 2: "bravo", 3: "charlie"}, Log: testLog{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan Event)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(ctx, events) }()

	srv, err := query.Listen(query.Config{Path: filepath.Join(t.TempDir(), "groupd.sock")},
		d.QueryHandler(func() []string { return []string{"a debug line"} }))
	if err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ctx) }()

	qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
	defer qcancel()
	call := func(req query.Request) *query.Response {
		t.Helper()
		resp, err := query.Call(qctx, srv.Addr(), req)
		if err != nil {
			t.Fatalf("%s: %v", req.Op, err)
		}
		return resp
	}

	// before anything is known the daemon cannot vouch for anyone
	if b := call(query.Request{Op: query.OpBypass, Node: 2}).Bypass; b.Allowed || b.Known {
		t.Errorf("bypass before startup: %+v", b)
	}

	watcher, err := query.Dial(qctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan query.Event, 100)
	go watcher.Watch(qctx, func(e query.Event) error { seen <- e; return nil })
	// Change phase until the watcher sees it: then it is registered.
	for i := 0; ; i++ {
		events <- SetPhase{[]Phase{PhaseJoining, PhaseStarting}[i%2]}
		select {
		case <-seen:
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}

	events <- NodeChange{Ring: RingID{1, 4}, Members: []uint32{1, 2, 3}, Quorate: true}
	events <- GroupConfChg{
		Members: []Member{{NodeID: 1, PID: ourPID}, {NodeID: 2, PID: 200}, {NodeID: 3, PID: 300}},
		Joined:  []Member{{NodeID: 1, PID: ourPID, Reason: ReasonJoin}},
	}
	events <- GroupMessage{NodeID: 2, PID: 200, Data: Hello{Version: 1, NodeID: 2, Start: t0}.Marshal()}
	events <- GroupConfChg{
		Members: []Member{{NodeID: 1, PID: ourPID}, {NodeID: 2, PID: 200}},
		Left:    []Member{{NodeID: 3, PID: 300, Reason: ReasonNodeDown}},
	}
	events <- NodeChange{Ring: RingID{1, 8}, Members: []uint32{1, 2}, Quorate: true}
	events <- SetPhase{PhaseJoined} // a no-op; ensures the previous event was applied

	st := call(query.Request{Op: query.OpStatus}).Status
	if st.NodeName != "alpha" || st.Phase != "joined" || !st.Quorate || st.Ring != "1.8" || len(st.Members) != 2 {
		t.Errorf("status %+v", st)
	}
	if len(st.Recovery) != 1 || st.Recovery[0].NodeID != 3 || st.Recovery[0].State != "waiting-for-fencing" || st.Recovery[0].Reason != "nodedown" || st.Recovery[0].Name != "charlie" {
		t.Errorf("recovery %+v", st.Recovery)
	}
	// The run that failed is named (its start unknown: no hello of its was heard).
	if runs := st.Recovery[0].Runs; len(runs) != 1 || runs[0].PID != 300 || !runs[0].Start.IsZero() || st.Recovery[0].MoreRuns {
		t.Errorf("recovery runs %+v (more: %v), want pid 300 alone", runs, st.Recovery[0].MoreRuns)
	}
	if id, err := st.Resolve("bravo"); err != nil || id != 2 || len(st.Nodes) != 2 {
		t.Errorf("status names the cluster nodes %+v; Resolve(bravo) = %d, %v", st.Nodes, id, err)
	}
	if b := call(query.Request{Op: query.OpBypass, Node: 2}).Bypass; !b.Allowed || !b.Known {
		t.Errorf("bypass of healthy node 2: %+v", b)
	}
	if b := call(query.Request{Op: query.OpBypass, Node: 3}).Bypass; b.Allowed || !b.Known {
		t.Errorf("bypass of failed node 3: %+v", b)
	}
	if d := call(query.Request{Op: query.OpDump}).Dump; len(d) != 1 {
		t.Errorf("dump %q", d)
	}

	_, err = query.Call(qctx, srv.Addr(), query.Request{Op: query.OpAck, Node: 2})
	var re *query.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "no recovery set") {
		t.Errorf("ack of node 2 without a set: %v", err)
	}
	if a := call(query.Request{Op: query.OpAck, Node: 3}).Acked; a == nil || a.State != "acked" {
		t.Errorf("ack of node 3: %+v", a)
	}
	if r := call(query.Request{Op: query.OpRecovery}).Recovery; len(r) != 0 {
		t.Errorf("recovery after ack: %+v", r)
	}

	// the watcher saw the failure and the ack as they happened
	want := map[string]bool{"recovery-opened": false, "recovery-closed": false}
	deadline := time.After(5 * time.Second)
	for !want["recovery-opened"] || !want["recovery-closed"] {
		select {
		case e := <-seen:
			if _, ok := want[e.Kind]; ok && e.NodeID == 3 {
				want[e.Kind] = true
			}
		case <-deadline:
			t.Fatalf("watch stream missed events: %v", want)
		}
	}
	watcher.Close()

	cancel()
	if err := <-srvDone; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := <-runDone; err != nil {
		t.Errorf("Run: %v", err)
	}
}
