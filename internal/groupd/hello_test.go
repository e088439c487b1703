package groupd

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHelloRoundTrip(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	runs := []Run{{NodeID: 3, PID: 3003, Start: start.Add(-time.Hour)}, {NodeID: 4, PID: 44}}
	for _, tt := range []struct {
		h    Hello
		size int
	}{
		{Hello{Version: 1, NodeID: 7, Start: start}, helloSize},
		{Hello{Version: 2, NodeID: 7, Start: start}, helloV2Size},
		{Hello{Version: 2, NodeID: 7, Start: start, Distrusted: runs}, helloV2Size + 2*helloRunSize},
		{Hello{Version: 3, NodeID: 7, Start: start, Distrusted: runs, Members: []Process{{7, 70}, {3, 3003}}},
			helloV2Size + 2*helloRunSize + 2 + 2*helloMemberSize},
		{Hello{Version: 3, NodeID: 7, Start: start, Members: []Process{}}, helloV2Size + 2},
	} {
		b := tt.h.Marshal()
		if len(b) != tt.size {
			t.Fatalf("%+v is %d bytes, want %d", tt.h, len(b), tt.size)
		}
		got, err := ParseHello(b)
		if err != nil || !reflect.DeepEqual(got, tt.h) {
			t.Errorf("ParseHello(Marshal(%+v)) = %+v, %v", tt.h, got, err)
		}
	}
}

func TestParseHelloRejectsGarbage(t *testing.T) {
	good := Hello{Version: 1, NodeID: 7, Start: time.Unix(1700000000, 0)}.Marshal()
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	goodV2 := Hello{Version: 2, NodeID: 7, Start: time.Unix(1700000000, 0), Distrusted: []Run{{NodeID: 3, PID: 30}}}.Marshal()
	goodV3 := Hello{Version: 3, NodeID: 7, Start: time.Unix(1700000000, 0), Distrusted: []Run{{NodeID: 3, PID: 30}},
		Members: []Process{{7, 70}, {3, 30}}}.Marshal()
	v3mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(goodV3)) }
	v2mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(goodV2)) }
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "not a groupd hello"},
		{"short", good[:19], "not a groupd hello"},
		{"wrong magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), "not a groupd hello"},
		{"text", []byte("hello from node 7 at 12:00"), "not a groupd hello"},
		{"version 0", mod(func(b []byte) []byte { b[5] = 0; return b }), "version 0"},
		{"v1 too long", append(bytes.Clone(good), 0), "20"},
		{"v1 with flags", mod(func(b []byte) []byte { b[7] = 1; return b }), "flags"},
		{"node 0", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 0); return b }), "node id 0"},
		{"no start", mod(func(b []byte) []byte { binary.BigEndian.PutUint64(b[12:], 0); return b }), "start time"},
		{"negative start", mod(func(b []byte) []byte { b[12] = 0x80; return b }), "start time"},
		{"v2 without its count", v2mod(func(b []byte) []byte { return b[:21] }), "too short"},
		{"v2 count beyond the end", v2mod(func(b []byte) []byte { b[21]++; return b }), "distrusted runs, want"},
		{"v2 too long", v2mod(func(b []byte) []byte { return append(b, 0) }), "distrusted runs, want"},
		{"v2 with flags", v2mod(func(b []byte) []byte { b[7] = 1; return b }), "flags"},
		{"v2 run of node 0", v2mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[22:], 0); return b }), "invalid distrusted run"},
		{"v2 run of pid 0", v2mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[26:], 0); return b }), "invalid distrusted run"},
		{"v2 run started before 1970", v2mod(func(b []byte) []byte { b[30] = 0x80; return b }), "invalid distrusted run"},
		{"v2 too many runs", v2mod(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[20:], maxDistrusted+1)
			return append(b, make([]byte, maxDistrusted*helloRunSize)...)
		}), "at most"},
		// goodV3: one distrusted run (22-37), then 2 members from 38.
		{"v3 without its members", v3mod(func(b []byte) []byte { return b[:39] }), "too short for its members"},
		{"v3 member count beyond the end", v3mod(func(b []byte) []byte { b[39]++; return b }), "members, want"},
		{"v3 too long", v3mod(func(b []byte) []byte { return append(b, 0) }), "members, want"},
		{"v3 with flags", v3mod(func(b []byte) []byte { b[7] = 1; return b }), "flags"},
		{"v3 member of node 0", v3mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[40:], 0); return b }), "invalid member"},
		{"v3 member of pid 0", v3mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[44:], 0); return b }), "invalid member"},
		{"v3 too many members", v3mod(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[38:], maxSeen+1)
			return append(b, make([]byte, (maxSeen-1)*helloMemberSize)...)
		}), "at most"},
	}
	for _, tt := range tests {
		_, err := ParseHello(tt.b)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ParseHello = %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

// A newer peer appends fields; we still understand the ones we know, so a
// rolling upgrade does not make every upgraded node look unknown. A
// version 1 hello (a daemon not yet upgraded) is understood too.
func TestParseHelloNewerVersion(t *testing.T) {
	runs := []Run{{NodeID: 3, PID: 30}}
	members := []Process{{7, 70}}
	b := Hello{Version: 3, NodeID: 7, Start: time.Unix(1700000000, 0), Distrusted: runs, Members: members}.Marshal()
	binary.BigEndian.PutUint16(b[4:], 4)
	b[7] = 3 // flags mean something to version 4
	b = append(b, "more fields"...)
	h, err := ParseHello(b)
	if err != nil || h.Version != 4 || h.NodeID != 7 || !reflect.DeepEqual(h.Distrusted, runs) || !reflect.DeepEqual(h.Members, members) {
		t.Errorf("ParseHello(v4) = %+v, %v", h, err)
	}
	// A version 2 hello (a daemon not yet upgraded) says nothing of the
	// members it saw.
	h, err = ParseHello(Hello{Version: 2, NodeID: 7, Start: time.Unix(1700000000, 0), Distrusted: runs}.Marshal())
	if err != nil || h.Version != 2 || h.Members != nil {
		t.Errorf("ParseHello(v2) = %+v, %v", h, err)
	}
	h, err = ParseHello(Hello{Version: 1, NodeID: 7, Start: time.Unix(1700000000, 0)}.Marshal())
	if err != nil || h.Version != 1 || len(h.Distrusted) != 0 {
		t.Errorf("ParseHello(v1) = %+v, %v", h, err)
	}
}

func FuzzParseHello(f *testing.F) {
	f.Add(Hello{Version: 1, NodeID: 1, Start: time.Unix(1, 0)}.Marshal())
	f.Add([]byte("GDHL"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHello(b)
		if err != nil {
			return
		}
		if h.NodeID == 0 || h.Version == 0 || h.Start.UnixNano() <= 0 {
			t.Fatalf("accepted an invalid hello %+v", h)
		}
		if h.Version <= 2 && !bytes.Equal(h.Marshal(), b) {
			t.Fatalf("version %d hello %x does not re-encode to itself", h.Version, b)
		}
	})
}
