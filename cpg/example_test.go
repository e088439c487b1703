package cpg_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/groupd-go/groupd/cpg"
)

// Join a group, send it a message, leave it, and follow all three in the
// group's one ordered stream of events: the membership change of the
// join, the message (every member receives it, the sender included), and
// the membership change of the leave. It needs a running corosync; the
// package's tests start a private one and run it there.
func Example() {
	ctx := context.Background()
	h, err := cpg.New()
	if err != nil {
		log.Fatal(err) // errors.Is(err, cpg.ErrLibrary): corosync is not running
	}
	defer h.Close()
	node, err := h.LocalGet(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// Corosync tells group members apart by node id and process id.
	who := func(nodeID, pid uint32) string {
		if nodeID == node && pid == uint32(os.Getpid()) {
			return "this process"
		}
		return fmt.Sprintf("node %d pid %d", nodeID, pid)
	}
	if err := h.Join(ctx, "example"); err != nil {
		log.Fatal(err)
	}
	if err := h.Multicast(ctx, cpg.Agreed, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	for ev := range h.Events() {
		switch e := ev.(type) {
		case *cpg.ConfChg:
			for _, a := range e.Joined {
				fmt.Printf("%s: %s joined (%s), %d member(s)\n", e.Group, who(a.NodeID, a.PID), a.Reason, len(e.Members))
			}
			for _, a := range e.Left {
				fmt.Printf("%s: %s left (%s), %d member(s)\n", e.Group, who(a.NodeID, a.PID), a.Reason, len(e.Members))
				if who(a.NodeID, a.PID) == "this process" {
					return
				}
			}
		case *cpg.Message:
			fmt.Printf("%s: %q from %s\n", e.Group, e.Data, who(e.NodeID, e.PID))
			// Leave, rather than only Close, lets the other members see
			// ReasonLeave instead of ReasonProcDown, as for a crash.
			if err := h.Leave(ctx); err != nil {
				log.Fatal(err)
			}
		case *cpg.TotemConfChg:
			// The nodes of the ring: cluster membership, not the group's.
		case *cpg.Terminated:
			log.Fatal(e.Err) // corosync went away
		}
	}
	// Output:
	// example: this process joined (join), 1 member(s)
	// example: "hello" from this process
	// example: this process left (leave), 0 member(s)
}
