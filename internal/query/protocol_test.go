package query

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		line    string
		want    Request
		wantErr string
	}{
		{line: `{"v":1,"op":"status"}`, want: Request{V: 1, Op: OpStatus}},
		{line: ` {"op":"members","v":1} `, want: Request{V: 1, Op: OpMembers}},
		{line: `{"v":1,"op":"recovery"}`, want: Request{V: 1, Op: OpRecovery}},
		{line: `{"v":1,"op":"bypass","node":3}`, want: Request{V: 1, Op: OpBypass, Node: 3}},
		{line: `{"v":1,"op":"ack","node":4294967295}`, want: Request{V: 1, Op: OpAck, Node: 4294967295}},
		{line: `{"v":1,"op":"dump"}`, want: Request{V: 1, Op: OpDump}},
		{line: `{"v":1,"op":"watch"}`, want: Request{V: 1, Op: OpWatch}},
		{line: ``, wantErr: "malformed"},
		{line: `status`, wantErr: "malformed"},
		{line: `{"v":1,"op":"status"`, wantErr: "malformed"},
		{line: `[{"v":1,"op":"status"}]`, wantErr: "malformed"},
		{line: `{"v":1,"op":"status"} {"v":1,"op":"dump"}`, wantErr: "more than one"},
		{line: `{"v":1,"op":"status"}x`, wantErr: "more than one"},
		{line: `{"v":1,"op":"status","extra":true}`, wantErr: "unknown field"},
		{line: `{"op":"status"}`, wantErr: "unsupported protocol version 0"},
		{line: `{"v":2,"op":"status"}`, wantErr: "unsupported protocol version 2"},
		{line: `{"v":"1","op":"status"}`, wantErr: "malformed"},
		{line: `{"v":1,"op":"reboot"}`, wantErr: "unknown op"},
		{line: `{"v":1}`, wantErr: "unknown op"},
		{line: `{"v":1,"op":"bypass"}`, wantErr: "needs a node id"},
		{line: `{"v":1,"op":"ack","node":0}`, wantErr: "needs a node id"},
		{line: `{"v":1,"op":"ack","node":-1}`, wantErr: "malformed"},
		{line: `{"v":1,"op":"ack","node":4294967296}`, wantErr: "malformed"},
		{line: `{"v":1,"op":"ack","node":1.5}`, wantErr: "malformed"},
		{line: `{"v":1,"op":"status","node":2}`, wantErr: "takes no node"},
		{line: `null`, wantErr: "unsupported protocol version"},
		{line: `{"v":1,"OP":"status"}`, wantErr: `unknown field "OP"`},
		{line: `{"V":1,"op":"status"}`, wantErr: `unknown field "V"`},
		{line: `{"v":1,"op":"bypass","Node":3}`, wantErr: `unknown field "Node"`},
		{line: `{"v":1,"op":"bypass","node":3,"node":4}`, wantErr: `field "node" given twice`},
		{line: `{"v":1,"op":"ack","op":"status"}`, wantErr: `field "op" given twice`},
		{line: `{"v":1,"v":1,"op":"status"}`, wantErr: `field "v" given twice`},
	}
	for _, tt := range tests {
		got, err := ParseRequest([]byte(tt.line))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRequest(%s) = %+v, %v; want error %q", tt.line, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRequest(%s) = %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
}

func TestReadLine(t *testing.T) {
	const max = 10
	tests := []struct {
		in   string
		want []string // "!" marks errTooLong
	}{
		{in: "a\nbb\n", want: []string{"a", "bb"}},
		{in: "0123456789\n", want: []string{"0123456789"}},
		{in: "0123456789X\nok\n", want: []string{"!", "ok"}},
		{in: strings.Repeat("y", 100) + "\nnext\n", want: []string{"!", "next"}},
		{in: "last without newline", want: []string{"!"}},
		{in: "short", want: []string{"short"}},
		{in: "\n\n", want: []string{"", ""}},
	}
	for _, tt := range tests {
		// a tiny bufio buffer exercises the ErrBufferFull path
		r := bufio.NewReaderSize(strings.NewReader(tt.in), 16)
		var got []string
		for {
			line, err := readLine(r, max)
			if errors.Is(err, errTooLong) {
				got = append(got, "!")
				continue
			}
			if err != nil {
				break
			}
			got = append(got, string(line))
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("readLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseRequest: the parser must never panic, and whatever it accepts
// must encode to a line it parses back to the same request.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"op":"status"}`,
		`{"v":1,"op":"bypass","node":3}`,
		`{"v":1,"op":"ack","node":7}`,
		`{"v":1,"op":"watch"}`,
		`{"V":1,"OP":"dump"}`,
		`{"v":1,"op":"status","node":0}`,
		`{"v":1,"op":"members"}{}`,
		`{"v":1e0,"op":"recovery"}`,
		`{"v":1,"op":"\u0073tatus"}`,
		`not json`,
		``,
		"\x00\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := ParseRequest(line)
		if err != nil {
			return
		}
		enc := req.Encode()
		if len(enc) == 0 || enc[len(enc)-1] != '\n' || strings.Count(string(enc), "\n") != 1 {
			t.Fatalf("encoding of %+v is not one line: %q", req, enc)
		}
		again, err := ParseRequest(enc[:len(enc)-1])
		if err != nil || again != req {
			t.Fatalf("accepted %q as %+v, but its encoding %q parses to %+v, %v", line, req, enc, again, err)
		}
	})
}

func TestStatusResolve(t *testing.T) {
	st := &Status{
		NodeID: 1, NodeName: "alpha",
		Nodes:    []Node{{NodeID: 1, Name: "alpha"}, {NodeID: 2, Name: "bravo"}, {NodeID: 5}},
		Members:  []Member{{NodeID: 2, Name: "bravo"}},
		Recovery: []RecoverySet{{NodeID: 3, Name: "charlie"}},
		Closed:   []RecoverySet{{NodeID: 4, Name: "delta"}, {NodeID: 6, Name: "twin"}, {NodeID: 7, Name: "twin"}},
	}
	// Names are free text: node 3 is also known as "12" (with node 12 in
	// the cluster) and node 8 as "8".
	st.Nodes = append(st.Nodes, Node{NodeID: 12, Name: "lima"}, Node{NodeID: 8, Name: "8"})
	st.Recovery = append(st.Recovery, RecoverySet{NodeID: 3, Name: "12"})
	// Node 5 and 6 were both called "5" once (closed sets keep old names).
	st.Closed = append(st.Closed, RecoverySet{NodeID: 5, Name: "5"}, RecoverySet{NodeID: 6, Name: "5"})
	tests := []struct {
		arg     string
		want    uint32
		wantErr string
	}{
		{arg: "2", want: 2},
		{arg: "99", want: 99}, // ids need no lookup: the daemon answers for any
		{arg: "alpha", want: 1},
		{arg: "bravo", want: 2},
		{arg: "charlie", want: 3}, // only known from its recovery set
		{arg: "delta", want: 4},
		{arg: "0", wantErr: "not a node"},
		{arg: "echo", wantErr: "no node named"},
		{arg: "", wantErr: "no node named"},
		{arg: "twin", wantErr: "more than one"},
		// A number that names another node could mean either.
		{arg: "12", wantErr: `"12" is node id 12 and also the name of node 3: say id:12 or name:12`},
		{arg: "id:12", want: 12},
		{arg: "name:12", want: 3},
		{arg: "8", want: 8}, // its own name
		{arg: "5", wantErr: `"5" is node id 5 and also the name of node 6`},
		{arg: "name:bravo", want: 2},
		{arg: "id:99", want: 99},
		{arg: "id:bravo", wantErr: "not a node id"},
		{arg: "id:0", wantErr: "not a node"},
		{arg: "id:-3", wantErr: "not a node id"},
		{arg: "name:99", wantErr: "no node named"},
	}
	for _, tt := range tests {
		got, err := st.Resolve(tt.arg)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Resolve(%q) = %d, %v; want error %q", tt.arg, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %d, %v; want %d", tt.arg, got, err, tt.want)
		}
	}
}
