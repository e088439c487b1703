// Command groupd-probe is built into the test cluster's node image. The
// cluster-tier tests run it inside the containers to see corosync through
// this project's cpg and cman packages.
//
//	groupd-probe watch GROUP
//
// joins the cpg group GROUP and prints every cpg and cman event as a JSON
// line (clustertest.Event), starting with a "ready" line once it sees itself
// in the group. Lines it reads on standard input are multicast to the group.
// It leaves the group and exits 0 when standard input ends, and exits 1 when
// corosync goes away.
//
//	groupd-probe status
//
// prints this node's id, name, quorum and members through cman as one JSON
// line (clustertest.Status).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/groupd-go/groupd/cman"
	"github.com/groupd-go/groupd/cpg"
	"github.com/groupd-go/groupd/internal/clustertest"
)

const usage = `usage: groupd-probe watch GROUP
       groupd-probe status`

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "watch":
		err = watch(os.Args[2])
	case len(os.Args) == 2 && os.Args[1] == "status":
		err = status()
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "groupd-probe: %v\n", err)
		os.Exit(1)
	}
}

func status() error {
	cl, err := cman.Open()
	if err != nil {
		return err
	}
	defer cl.Close()
	local, err := cl.LocalNode()
	if err != nil {
		return err
	}
	quorate, err := cl.Quorate()
	if err != nil {
		return err
	}
	nodes, err := cl.Nodes()
	if err != nil {
		return err
	}
	st := clustertest.Status{Node: local.ID, Name: local.Name, Quorate: quorate, Members: []uint32{}}
	for _, n := range nodes {
		if n.Member {
			st.Members = append(st.Members, n.ID)
		}
	}
	slices.Sort(st.Members)
	return json.NewEncoder(os.Stdout).Encode(st)
}

func watch(group string) error {
	cl, err := cman.Open()
	if err != nil {
		return err
	}
	defer cl.Close()
	h, err := cpg.New()
	if err != nil {
		return err
	}
	defer h.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = h.Join(ctx, group)
	cancel()
	if err != nil {
		return err
	}

	node := cl.NodeID()
	pid := uint32(os.Getpid())
	out := json.NewEncoder(os.Stdout)
	emit := func(ev clustertest.Event) error {
		ev.Node = node
		ev.Time = time.Now()
		return out.Encode(ev)
	}

	// Standard input: each line is a message to multicast; its end means
	// "leave and exit".
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	cpgEvents, cmanEvents := h.Events(), cl.Events()
	joined, cmanStarted, ready := false, false, false
	for cpgEvents != nil || cmanEvents != nil {
		var ev clustertest.Event
		select {
		case e, ok := <-cpgEvents:
			if !ok {
				cpgEvents = nil
				continue
			}
			ev = fromCPG(e)
			if cc, ok := e.(*cpg.ConfChg); ok && slices.Contains(cc.Members, cpg.Address{NodeID: node, PID: pid}) {
				joined = true
			}
		case e, ok := <-cmanEvents:
			if !ok {
				cmanEvents = nil
				continue
			}
			ev = fromCman(e)
			if e.Kind == cman.EventQuorum {
				cmanStarted = true
			}
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := h.Multicast(ctx, cpg.Agreed, []byte(line))
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		if err := emit(ev); err != nil {
			return err
		}
		if !ready && joined && cmanStarted {
			ready = true
			self := &clustertest.Proc{NodeID: node, PID: pid}
			if err := emit(clustertest.Event{Kind: clustertest.KindReady, Group: group, From: self}); err != nil {
				return err
			}
		}
	}
	return errors.New("corosync went away")
}

func procs(as []cpg.Address, withReason bool) []clustertest.Proc {
	ps := make([]clustertest.Proc, 0, len(as))
	for _, a := range as {
		p := clustertest.Proc{NodeID: a.NodeID, PID: a.PID}
		if withReason {
			p.Reason = a.Reason.String()
		}
		ps = append(ps, p)
	}
	return ps
}

func fromCPG(e cpg.Event) clustertest.Event {
	switch e := e.(type) {
	case *cpg.ConfChg:
		return clustertest.Event{
			Kind:    clustertest.KindConfChg,
			Group:   e.Group,
			Members: procs(e.Members, false),
			Joined:  procs(e.Joined, true),
			Left:    procs(e.Left, true),
		}
	case *cpg.TotemConfChg:
		return clustertest.Event{Kind: clustertest.KindTotem, Ring: e.Ring.String(), Nodes: e.Members}
	case *cpg.Message:
		return clustertest.Event{
			Kind:  clustertest.KindMessage,
			Group: e.Group,
			From:  &clustertest.Proc{NodeID: e.NodeID, PID: e.PID},
			Data:  string(e.Data),
		}
	case *cpg.Terminated:
		return clustertest.Event{Kind: clustertest.KindLost, Source: "cpg", Error: fmt.Sprint(e.Err)}
	}
	return clustertest.Event{Kind: fmt.Sprintf("cpg-unknown-%T", e)}
}

func fromCman(e cman.Event) clustertest.Event {
	switch e.Kind {
	case cman.EventMembership:
		return clustertest.Event{
			Kind:        clustertest.KindMembership,
			Ring:        e.Ring.String(),
			Nodes:       e.Members,
			NodesJoined: e.Joined,
			NodesLeft:   e.Left,
			Initial:     e.Initial,
		}
	case cman.EventQuorum:
		return clustertest.Event{
			Kind:    clustertest.KindQuorum,
			Ring:    e.Ring.String(),
			Nodes:   e.Members,
			Quorate: e.Quorate,
			Initial: e.Initial,
		}
	case cman.EventError:
		return clustertest.Event{Kind: clustertest.KindLost, Source: "cman", Error: fmt.Sprint(e.Err)}
	}
	return clustertest.Event{Kind: "cman-unknown-" + e.Kind.String()}
}
