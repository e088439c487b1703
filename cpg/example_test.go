package cpg_test

import (
	"context"
	"fmt"
	"log"

	"github.com/groupd-go/groupd/cpg"
)

// Join a group, say hello, and print what happens in it until corosync
// goes away. It needs a running corosync, so it is compiled but not run by
// go test; the tests do the same against a private corosync.
func Example() {
	ctx := context.Background()
	h, err := cpg.New()
	if err != nil {
		log.Fatal(err) // errors.Is(err, cpg.ErrLibrary): corosync is not running
	}
	defer h.Close()
	if err := h.Join(ctx, "example"); err != nil {
		log.Fatal(err)
	}
	if err := h.Multicast(ctx, cpg.Agreed, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	for ev := range h.Events() {
		switch e := ev.(type) {
		case *cpg.ConfChg:
			for _, a := range e.Left {
				fmt.Printf("node %d pid %d left: %s\n", a.NodeID, a.PID, a.Reason)
			}
			fmt.Printf("%s has %d members\n", e.Group, len(e.Members))
		case *cpg.Message:
			fmt.Printf("node %d pid %d says %q\n", e.NodeID, e.PID, e.Data)
		case *cpg.TotemConfChg:
			fmt.Printf("ring %s: nodes %v\n", e.Ring, e.Members)
		case *cpg.Terminated:
			log.Fatal(e.Err)
		}
	}
}
