package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/groupd-go/groupd/internal/groupd"
	"github.com/groupd-go/groupd/internal/query"
)

// The JSON the tool prints is its own, stable for scripts (fence_tool reads
// it): node ids are "nodeid", names are always present, lists are never
// null. It is deliberately not the wire protocol, which may grow.

type jsonNode struct {
	NodeID uint32 `json:"nodeid"`
	Name   string `json:"name"`
}

type jsonMember struct {
	NodeID       uint32    `json:"nodeid"`
	Name         string    `json:"name"`
	PID          uint32    `json:"pid"`
	Since        time.Time `json:"since,omitzero"`
	Hello        bool      `json:"hello"`
	HelloVersion uint16    `json:"hello_version,omitempty"`
	HelloStart   time.Time `json:"hello_start,omitzero"`
	StaleHello   bool      `json:"stale_hello"`
}

type jsonSet struct {
	NodeID            uint32      `json:"nodeid"`
	Name              string      `json:"name"`
	Reason            string      `json:"reason"`
	State             string      `json:"state"`
	Failed            time.Time   `json:"failed"`
	FailedMonotonicNS int64       `json:"failed_monotonic_ns"`
	Ring              string      `json:"ring"`
	PID               uint32      `json:"pid,omitempty"`
	Start             time.Time   `json:"start,omitzero"`
	Runs              []query.Run `json:"runs"`
	MoreRuns          bool        `json:"more_runs"`
	GroupReported     time.Time   `json:"group_reported,omitzero"`
	ClusterReported   time.Time   `json:"cluster_reported,omitzero"`
	KillRequested     bool        `json:"kill_requested"`
	KillError         string      `json:"kill_error,omitempty"`
	Failures          int         `json:"failures"`
	LastFailure       time.Time   `json:"last_failure,omitzero"`
	Acked             time.Time   `json:"acked,omitzero"`
	Closed            time.Time   `json:"closed,omitzero"`
}

type jsonStatus struct {
	Time         time.Time    `json:"time"`
	NodeID       uint32       `json:"nodeid"`
	Name         string       `json:"name"`
	PID          uint32       `json:"pid"`
	Started      time.Time    `json:"started,omitzero"`
	Phase        string       `json:"phase"`
	ClusterKnown bool         `json:"cluster_known"`
	Quorate      bool         `json:"quorate"`
	Ring         string       `json:"ring"`
	ClusterNodes []jsonNode   `json:"cluster_nodes"`
	Joined       bool         `json:"joined"`
	Members      []jsonMember `json:"members"`
	Recovery     []jsonSet    `json:"recovery"`
	Closed       []jsonSet    `json:"closed"`
}

type jsonEvent struct {
	Time   time.Time `json:"time"`
	Level  string    `json:"level"`
	Kind   string    `json:"kind"`
	NodeID uint32    `json:"nodeid,omitempty"`
	Text   string    `json:"text"`
}

func membersJSON(ms []query.Member) []jsonMember {
	out := []jsonMember{}
	for _, m := range ms {
		out = append(out, jsonMember{
			NodeID: m.NodeID, Name: m.Name, PID: m.PID, Since: m.Since, Hello: m.Hello,
			HelloVersion: m.HelloVersion, HelloStart: m.HelloStart, StaleHello: m.StaleHello,
		})
	}
	return out
}

func setsJSON(rs []query.RecoverySet) []jsonSet {
	out := []jsonSet{}
	for _, r := range rs {
		out = append(out, jsonSet{
			NodeID: r.NodeID, Name: r.Name, Reason: r.Reason, State: r.State, Failed: r.Failed,
			FailedMonotonicNS: int64(r.FailedMonotonic), Ring: r.Ring, PID: r.PID, Start: r.Start,
			Runs: append([]query.Run{}, r.Runs...), MoreRuns: r.MoreRuns,
			GroupReported: r.GroupReported, ClusterReported: r.ClusterReported, KillRequested: r.KillRequested,
			KillError: r.KillError, Failures: r.Failures, LastFailure: r.LastFailure, Acked: r.Acked, Closed: r.Closed,
		})
	}
	return out
}

func statusJSON(s *query.Status) jsonStatus {
	js := jsonStatus{
		Time: s.Time, NodeID: s.NodeID, Name: s.NodeName, PID: s.PID, Started: s.Started, Phase: s.Phase,
		ClusterKnown: s.ClusterKnown, Quorate: s.Quorate, Ring: s.Ring, ClusterNodes: []jsonNode{},
		Joined: s.Joined, Members: membersJSON(s.Members), Recovery: setsJSON(s.Recovery), Closed: setsJSON(s.Closed),
	}
	for _, n := range clusterNodes(s) {
		js.ClusterNodes = append(js.ClusterNodes, jsonNode{n.NodeID, n.Name})
	}
	return js
}

// clusterNodes lists the cluster members with names where known.
func clusterNodes(s *query.Status) []query.Node {
	if len(s.Nodes) > 0 {
		return s.Nodes
	}
	var ns []query.Node
	for _, id := range s.ClusterMembers {
		ns = append(ns, query.Node{NodeID: id})
	}
	return ns
}

func eventJSON(e query.Event) jsonEvent {
	return jsonEvent{Time: e.Time, Level: e.Level, Kind: e.Kind, NodeID: e.NodeID, Text: e.Text}
}

func (t *tool) printJSON(v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(t.stderr, "group_tool: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(t.stdout, "%s\n", b)
	return exitOK
}

func (t *tool) writeJSONLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(t.stdout, "%s\n", b)
	return err
}

// nodeName formats a node for people: "node 3 (gamma)".
func nodeName(id uint32, name string) string {
	if name == "" {
		return fmt.Sprintf("node %d", id)
	}
	return fmt.Sprintf("node %d (%s)", id, name)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func idList(s *query.Status) string {
	var ids []string
	for _, m := range s.Members {
		ids = append(ids, fmt.Sprint(m.NodeID))
	}
	return "[" + strings.Join(ids, " ") + "]"
}

// printLs is the classic group_tool ls table, for the groupd group.
func printLs(w io.Writer, s *query.Status) {
	state := s.Phase
	if !s.ClusterKnown {
		state += ", cluster membership not known yet"
	} else if s.Quorate {
		state += ", cluster quorate"
	} else {
		state += ", cluster NOT quorate"
	}
	fmt.Fprintf(w, "groupd on %s pid %d: %s\n\n", nodeName(s.NodeID, s.NodeName), s.PID, state)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "type\tname\tstate\tmembers\n")
	joined := "not joined"
	if s.Joined {
		joined = "joined"
	}
	fmt.Fprintf(tw, "groupd\tgroupd\t%s\t%s\n", joined, idList(s))
	tw.Flush()
	fmt.Fprintln(w)
	printMembers(w, s.Members)
	fmt.Fprintln(w)
	printSets(w, s.Recovery)
}

func printMembers(w io.Writer, ms []query.Member) {
	if len(ms) == 0 {
		fmt.Fprintln(w, "groupd group members: none")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "nodeid\tname\tpid\thello\tsince\n")
	for _, m := range ms {
		hello := yesNo(m.Hello)
		if m.StaleHello {
			hello = "stale"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", m.NodeID, orDash(m.Name), m.PID, hello, when(m.Since))
	}
	tw.Flush()
}

func printSets(w io.Writer, rs []query.RecoverySet) {
	if len(rs) == 0 {
		fmt.Fprintln(w, "recovery sets: none")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "recovery\tnodeid\tname\treason\tstate\tfailed\tring\tfailures\n")
	for _, r := range rs {
		fmt.Fprintf(tw, "\t%d\t%s\t%s\t%s\t%s\t%s\t%d\n", r.NodeID, orDash(r.Name), r.Reason, r.State, when(r.Failed), orDash(r.Ring), r.Failures)
	}
	tw.Flush()
	for _, r := range rs {
		if len(r.Runs) > 1 || r.MoreRuns {
			fmt.Fprintf(w, "  %s failed in %s\n", nodeName(r.NodeID, r.Name), runList(r))
		}
	}
	for _, r := range rs {
		if r.KillError != "" {
			fmt.Fprintf(w, "  the kill of %s from the cluster failed: %s\n", nodeName(r.NodeID, r.Name), r.KillError)
		}
	}
}

// runList names the groupd runs a set records: "groupd runs pid 7
// (started ...), pid 9 (started ...)".
func runList(r query.RecoverySet) string {
	var runs []string
	for _, run := range r.Runs {
		runs = append(runs, fmt.Sprintf("pid %d (started %s)", run.PID, when(run.Start)))
	}
	s := "groupd runs " + strings.Join(runs, ", ")
	if r.MoreRuns {
		s += ", and more than the daemon keeps"
	}
	return s
}

func printStatus(w io.Writer, s *query.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "node:\t%s\n", nodeName(s.NodeID, s.NodeName))
	fmt.Fprintf(tw, "daemon:\tpid %d, started %s, %s\n", s.PID, when(s.Started), s.Phase)
	if s.ClusterKnown {
		var ns []string
		for _, n := range clusterNodes(s) {
			ns = append(ns, nodeName(n.NodeID, n.Name))
		}
		q := "quorate"
		if !s.Quorate {
			q = "NOT quorate"
		}
		fmt.Fprintf(tw, "cluster:\t%s, ring %s, members: %s\n", q, s.Ring, strings.Join(ns, ", "))
	} else {
		fmt.Fprintf(tw, "cluster:\tmembership not known yet\n")
	}
	if s.Joined {
		fmt.Fprintf(tw, "groupd group:\tjoined, members %s\n", idList(s))
	} else {
		fmt.Fprintf(tw, "groupd group:\tnot joined\n")
	}
	pending := 0
	for _, r := range s.Recovery {
		if groupd.SetState(r.State).Pending() {
			pending++
		}
	}
	fmt.Fprintf(tw, "recovery sets:\t%d open, %d waiting for fencing\n", len(s.Recovery), pending)
	tw.Flush()
	if len(s.Recovery) > 0 {
		fmt.Fprintln(w)
		printSets(w, s.Recovery)
	}
}

func formatEvent(e query.Event) string {
	node := ""
	if e.NodeID != 0 {
		node = fmt.Sprintf(" node=%d", e.NodeID)
	}
	return fmt.Sprintf("%s %-5s %s%s: %s", e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Level, e.Kind, node, e.Text)
}
