package cman_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/groupd-go/groupd/cman"
)

// A small probe: who are we, who is configured, and then every membership
// and quorum change as one JSON line, until corosync goes away.
func Example() {
	c, err := cman.Open()
	if err != nil {
		log.Fatal(err) // errors.Is(err, cs.ErrLibrary): corosync is not running
	}
	defer c.Close()

	me, err := c.LocalNode()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("we are node %d (%s)\n", me.ID, me.Name)

	nodes, err := c.Nodes()
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range nodes {
		fmt.Printf("node %d %s %v member=%v votes=%d\n", n.ID, n.Name, n.Addresses, n.Member, n.Votes)
	}

	enc := json.NewEncoder(os.Stdout)
	for e := range c.Events() {
		enc.Encode(e) // {"kind":"membership","ring":{"nodeid":1,"seq":8},"members":[1,2],"joined":[2],"left":[],...}
		if e.Kind == cman.EventError {
			log.Printf("lost corosync: %v", e.Err)
		}
	}
}

// Removing a node from the cluster, as cman_kill_node did.
func ExampleCluster_KillNode() {
	c, err := cman.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.KillNode(context.Background(), 3, "fenced by groupd"); err != nil {
		log.Fatal(err)
	}
}
