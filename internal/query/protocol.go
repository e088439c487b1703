// Package query is the daemon's query protocol: line-delimited JSON over a
// unix socket, the server that answers it, and the client the query tool
// uses.
//
// Each request is one JSON object on one line, e.g.
//
//	{"v":1,"op":"bypass","node":3}
//
// and each answer is one JSON object on one line with "ok" and either the
// payload or "error". A watch request turns the connection into a stream of
// event lines that lasts until the client closes it. Requests longer than
// MaxLine bytes or not understood get an error reply; the connection stays
// usable. A connection that brings no complete request for the server's
// idle timeout gets a last error line with "closing":true, and is closed:
// a request the client sent meanwhile was not read.
package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Version is the protocol version. A request must carry it; a change that
// old tools would misread gets a new version.
const Version = 1

// MaxLine is the longest request line the server reads.
const MaxLine = 64 << 10

// Op is a request type.
type Op string

const (
	OpStatus   Op = "status"   // our node, quorum, members, recovery sets, phase
	OpMembers  Op = "members"  // groupd group members
	OpRecovery Op = "recovery" // recovery sets
	OpBypass   Op = "bypass"   // may Node skip fencing?
	OpAck      Op = "ack"      // fencing of Node is done: close its recovery set
	OpDump     Op = "dump"     // recent debug log lines
	OpWatch    Op = "watch"    // stream events until the client closes
)

var ops = map[Op]bool{OpStatus: true, OpMembers: true, OpRecovery: true, OpBypass: true, OpAck: true, OpDump: true, OpWatch: true}

// needsNode lists the ops that are about one node.
func (o Op) needsNode() bool { return o == OpBypass || o == OpAck }

// Request is one query.
type Request struct {
	V    int    `json:"v"`
	Op   Op     `json:"op"`
	Node uint32 `json:"node,omitempty"`
}

// ParseRequest decodes and validates one request line. It accepts exactly
// one JSON object with known fields, each spelled exactly so and given at
// most once, the current version, a known op, and a node id for (and only
// for) bypass and ack.
func ParseRequest(line []byte) (Request, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("malformed request: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Request{}, errors.New("malformed request: more than one JSON value on the line")
	}
	if err := checkKeys(line); err != nil {
		return Request{}, fmt.Errorf("malformed request: %v", err)
	}
	if r.V != Version {
		return Request{}, fmt.Errorf("unsupported protocol version %d (this daemon speaks %d)", r.V, Version)
	}
	if !ops[r.Op] {
		return Request{}, fmt.Errorf("unknown op %q", r.Op)
	}
	if r.Op.needsNode() && r.Node == 0 {
		return Request{}, fmt.Errorf("%s needs a node id", r.Op)
	}
	if !r.Op.needsNode() && r.Node != 0 {
		return Request{}, fmt.Errorf("%s takes no node id", r.Op)
	}
	return r, nil
}

// requestKeys are Request's JSON keys.
var requestKeys = map[string]bool{"v": true, "op": true, "node": true}

// checkKeys refuses keys that Go's decoder would take but a reader of the
// line would not: another spelling of a known key ("OP" for "op") and a
// key given twice (the decoder keeps the last). line holds one valid JSON
// value.
func checkKeys(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil // null: no keys
	}
	seen := make(map[string]bool, len(requestKeys))
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if !requestKeys[key] {
			return fmt.Errorf("unknown field %q (fields are lower case)", key)
		}
		if seen[key] {
			return fmt.Errorf("field %q given twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// Encode returns the request as one line, newline included.
func (r Request) Encode() []byte {
	b, _ := json.Marshal(r) // cannot fail: plain fields
	return append(b, '\n')
}

// Response answers a Request. On failure OK is false and Error says why.
type Response struct {
	V     int    `json:"v"`
	Op    Op     `json:"op,omitempty"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Closing marks the line the server writes before it closes a
	// connection idle for too long, without reading further: it answers
	// no request.
	Closing  bool          `json:"closing,omitempty"`
	Status   *Status       `json:"status,omitempty"`
	Members  []Member      `json:"members,omitempty"`
	Recovery []RecoverySet `json:"recovery,omitempty"`
	Bypass   *Bypass       `json:"bypass,omitempty"`
	Acked    *RecoverySet  `json:"acked,omitempty"`
	Dump     []string      `json:"dump,omitempty"`
	Event    *Event        `json:"event,omitempty"`
}

// Status is the answer to status.
type Status struct {
	Time           time.Time     `json:"time"`
	NodeID         uint32        `json:"node_id"`
	NodeName       string        `json:"node_name,omitempty"`
	PID            uint32        `json:"pid"`
	Started        time.Time     `json:"started,omitzero"`
	Phase          string        `json:"phase"`
	ClusterKnown   bool          `json:"cluster_known"`
	Quorate        bool          `json:"quorate"`
	Ring           string        `json:"ring,omitempty"`
	ClusterMembers []uint32      `json:"cluster_members"`
	Nodes          []Node        `json:"nodes,omitempty"` // cluster members with names
	Joined         bool          `json:"joined"`
	Members        []Member      `json:"members"`
	Recovery       []RecoverySet `json:"recovery"`
	Closed         []RecoverySet `json:"closed,omitempty"`
}

// Node is a cluster member.
type Node struct {
	NodeID uint32 `json:"node_id"`
	Name   string `json:"name,omitempty"`
}

// Resolve turns a tool's NODE argument into a node id: "id:N" is node id
// N, "name:X" the node named X, and anything else an id if it is a number
// and a name if not. Names are looked up in everything the status names.
// A number that is also the name of another node (corosync's names are
// free text) is refused as ambiguous. Requests carry ids only, so the
// daemon never guesses which node a name meant.
func (s *Status) Resolve(arg string) (uint32, error) {
	if v, ok := strings.CutPrefix(arg, "id:"); ok {
		return nodeID(v)
	}
	if v, ok := strings.CutPrefix(arg, "name:"); ok {
		return s.byName(v)
	}
	if _, err := strconv.ParseUint(arg, 10, 32); err != nil {
		return s.byName(arg)
	}
	id, err := nodeID(arg)
	if err != nil {
		return 0, err
	}
	for _, named := range s.named(arg) {
		if named != id {
			return 0, fmt.Errorf("%q is node id %s and also the name of node %d: say id:%s or name:%s", arg, arg, named, arg, arg)
		}
	}
	return id, nil
}

// nodeID parses a node id.
func nodeID(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q is not a node id (a number from 1 to %d)", v, uint32(math.MaxUint32))
	case n == 0:
		return 0, errors.New("node id 0 is not a node")
	}
	return uint32(n), nil
}

// byName finds the one node id named arg.
func (s *Status) byName(arg string) (uint32, error) {
	switch found := s.named(arg); len(found) {
	case 0:
		return 0, fmt.Errorf("no node named %q is known to groupd; give its node id", arg)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("more than one node id is named %q; give the node id", arg)
}

// named returns the ids of the nodes named arg, in order, anywhere in the
// status.
func (s *Status) named(arg string) []uint32 {
	found := map[uint32]bool{}
	add := func(id uint32, name string) {
		if name != "" && name == arg {
			found[id] = true
		}
	}
	if s.NodeName != "" {
		add(s.NodeID, s.NodeName)
	}
	for _, n := range s.Nodes {
		add(n.NodeID, n.Name)
	}
	for _, m := range s.Members {
		add(m.NodeID, m.Name)
	}
	for _, r := range append(slices.Clone(s.Recovery), s.Closed...) {
		add(r.NodeID, r.Name)
	}
	return slices.Sorted(maps.Keys(found))
}

// Member is a groupd group member.
type Member struct {
	NodeID       uint32    `json:"node_id"`
	PID          uint32    `json:"pid"`
	Name         string    `json:"name,omitempty"`
	Since        time.Time `json:"since,omitzero"`
	Hello        bool      `json:"hello"`
	HelloVersion uint16    `json:"hello_version,omitempty"`
	HelloStart   time.Time `json:"hello_start,omitzero"`
	StaleHello   bool      `json:"stale_hello,omitempty"`
}

// RecoverySet is a failed node waiting for fencing, or a recently closed one.
type RecoverySet struct {
	NodeID          uint32        `json:"node_id"`
	Name            string        `json:"name,omitempty"`
	State           string        `json:"state"`
	Reason          string        `json:"reason"`
	Failed          time.Time     `json:"failed"`
	FailedMonotonic time.Duration `json:"failed_monotonic_ns"`
	Ring            string        `json:"ring,omitempty"`
	PID             uint32        `json:"pid,omitempty"`
	Start           time.Time     `json:"start,omitzero"`
	// Runs are the node's groupd runs whose failure the set records (PID
	// and Start repeat the one it was opened for); MoreRuns says more
	// failed than it keeps.
	Runs            []Run     `json:"runs,omitempty"`
	MoreRuns        bool      `json:"more_runs,omitempty"`
	GroupReported   time.Time `json:"group_reported,omitzero"`
	ClusterReported time.Time `json:"cluster_reported,omitzero"`
	KillRequested   bool      `json:"kill_requested,omitempty"`
	KillError       string    `json:"kill_error,omitempty"`
	Failures        int       `json:"failures"`
	LastFailure     time.Time `json:"last_failure,omitzero"`
	Acked           time.Time `json:"acked,omitzero"`
	Closed          time.Time `json:"closed,omitzero"`
}

// Run is one groupd process: its pid and when it started (zero if not
// known).
type Run struct {
	PID   uint32    `json:"pid"`
	Start time.Time `json:"start,omitzero"`
}

// Bypass is the answer to bypass. Known is false when the daemon could not
// tell (its own view is incomplete); Allowed is then false too.
type Bypass struct {
	NodeID          uint32 `json:"node_id"`
	Allowed         bool   `json:"allowed"`
	Known           bool   `json:"known"`
	ClusterMember   bool   `json:"cluster_member"`
	GroupMember     bool   `json:"group_member"`
	Hello           bool   `json:"hello"`
	PendingRecovery bool   `json:"pending_recovery"`
	Reason          string `json:"reason"`
}

// Event is one line of a watch stream.
type Event struct {
	Time   time.Time `json:"time"`
	Level  string    `json:"level"`
	Kind   string    `json:"kind"`
	NodeID uint32    `json:"node_id,omitempty"`
	Text   string    `json:"text"`
}

func errorResponse(op Op, format string, args ...any) Response {
	return Response{V: Version, Op: op, Error: fmt.Sprintf(format, args...)}
}
