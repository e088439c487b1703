package cman

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Node is one entry of corosync's nodelist.
type Node struct {
	ID uint32 `json:"id"`
	// Name is nodelist.node.X.name; without one, ring0_addr; without
	// that either, "node<ID>" (such as "node3").
	Name string `json:"name"`
	// Addresses holds the ringN_addr values by link number: Addresses[N]
	// is ringN_addr, "" for a link the node does not configure.
	Addresses []string `json:"addresses"`
	// Member reports whether the node is in the current membership, as
	// votequorum sees it.
	Member bool `json:"member"`
	// Votes is the node's vote count (votequorum_getinfo; for a node not
	// yet seen, its configured quorum_votes, default 1).
	Votes uint32 `json:"votes"`
	// Local marks our own node.
	Local bool `json:"local"`
}

func fallbackName(id uint32) string { return fmt.Sprintf("node%d", id) }

// parseNodelist builds the nodes from the cmap keys under "nodelist." with
// their values as text, ordered by their position X in the nodelist. The
// entry at nodelist.local_node_pos (corosync sets it) is ours, unless it
// has another node's nodeid: it is marked Local and, if it has no nodeid,
// given ourID. Other entries without a nodeid (allowed with udpu over
// IPv4, where corosync derives the id from the address) get ID 0. Keys it
// does not know are ignored.
func parseNodelist(kv map[string]string, ourID uint32) ([]Node, error) {
	type entry struct {
		node  Node
		addrs map[int]string
	}
	byPos := map[int]*entry{}
	localPos := -1
	if v, ok := kv["nodelist.local_node_pos"]; ok {
		if p, err := strconv.Atoi(v); err == nil && p >= 0 {
			localPos = p
		}
	}
	for key, val := range kv {
		rest, ok := strings.CutPrefix(key, "nodelist.node.")
		if !ok {
			continue
		}
		posText, field, ok := strings.Cut(rest, ".")
		if !ok {
			continue
		}
		pos, err := strconv.Atoi(posText)
		if err != nil || pos < 0 {
			continue
		}
		e := byPos[pos]
		if e == nil {
			e = &entry{node: Node{Votes: 1}, addrs: map[int]string{}}
			byPos[pos] = e
		}
		switch {
		case field == "nodeid":
			id, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("cman: %s = %q: not a node id", key, val)
			}
			e.node.ID = uint32(id)
		case field == "name":
			e.node.Name = val
		case field == "quorum_votes":
			v, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("cman: %s = %q: not a vote count", key, val)
			}
			e.node.Votes = uint32(v)
		case strings.HasPrefix(field, "ring") && strings.HasSuffix(field, "_addr"):
			link, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(field, "ring"), "_addr"))
			if err != nil || link < 0 || link > 7 {
				continue // knet has links 0-7
			}
			e.addrs[link] = val
		}
	}

	positions := make([]int, 0, len(byPos))
	for pos := range byPos {
		positions = append(positions, pos)
	}
	sort.Ints(positions)
	nodes := make([]Node, 0, len(positions))
	for _, pos := range positions {
		e := byPos[pos]
		n := e.node
		// An entry with another node's id is not ours, whatever the
		// position says (a reload may have moved the entries).
		if pos == localPos && (n.ID == 0 || n.ID == ourID) {
			n.Local = true
			n.ID = ourID
		}
		last := -1
		for link := range e.addrs {
			last = max(last, link)
		}
		n.Addresses = make([]string, last+1)
		for link, a := range e.addrs {
			n.Addresses[link] = a
		}
		if n.Name == "" {
			if len(n.Addresses) > 0 && n.Addresses[0] != "" {
				n.Name = n.Addresses[0]
			} else {
				n.Name = fallbackName(n.ID)
			}
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}
