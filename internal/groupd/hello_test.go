package groupd

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

func TestHelloRoundTrip(t *testing.T) {
	h := Hello{Version: 1, NodeID: 7, Start: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	b := h.Marshal()
	if len(b) != helloSize {
		t.Fatalf("hello is %d bytes, want %d", len(b), helloSize)
	}
	got, err := ParseHello(b)
	if err != nil || got != h {
		t.Errorf("ParseHello(Marshal(%+v)) = %+v, %v", h, got, err)
	}
}

func TestParseHelloRejectsGarbage(t *testing.T) {
	good := Hello{Version: 1, NodeID: 7, Start: time.Unix(1700000000, 0)}.Marshal()
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
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
	}
	for _, tt := range tests {
		_, err := ParseHello(tt.b)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ParseHello = %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

// A newer peer appends fields; we still understand the ones we know, so a
// rolling upgrade does not make every upgraded node look unknown.
func TestParseHelloNewerVersion(t *testing.T) {
	b := Hello{Version: 1, NodeID: 7, Start: time.Unix(1700000000, 0)}.Marshal()
	binary.BigEndian.PutUint16(b[4:], 2)
	b[7] = 3 // flags mean something to version 2
	b = append(b, "more fields"...)
	h, err := ParseHello(b)
	if err != nil || h.Version != 2 || h.NodeID != 7 {
		t.Errorf("ParseHello(v2) = %+v, %v", h, err)
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
		if h.Version == 1 && !bytes.Equal(h.Marshal(), b) {
			t.Fatalf("version 1 hello %x does not re-encode to itself", b)
		}
	})
}
