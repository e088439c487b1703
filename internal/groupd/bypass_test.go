package groupd

import (
	"strings"
	"testing"
)

func TestBypassTable(t *testing.T) {
	tests := []struct {
		cman, group, hello bool
		allowed            bool
		reason             string
	}{
		{cman: true, group: true, hello: true, allowed: true, reason: "may skip fencing"},
		{cman: true, group: true, hello: false, reason: "has not announced itself"},
		{cman: true, group: false, hello: true, reason: "not in the groupd group"},
		{cman: true, group: false, hello: false, reason: "not in the groupd group"},
		{cman: false, group: true, hello: true, reason: "not a cluster member"},
		{cman: false, group: true, hello: false, reason: "not a cluster member"},
		{cman: false, group: false, hello: true, reason: "not a cluster member"},
		{cman: false, group: false, hello: false, reason: "not a cluster member"},
	}
	for _, tt := range tests {
		h := newHarness(t, true)
		cluster := []uint32{1}
		if tt.cman {
			cluster = append(cluster, 2)
		}
		h.nodes(cluster...)
		h.join(us, ourPID)
		h.sayHello(us, ourPID)
		if tt.group || tt.hello {
			h.join(2, pidOf(2))
		}
		if tt.hello {
			h.sayHello(2, pidOf(2))
		}
		if !tt.group && tt.hello {
			// it said hello, then left the group cleanly: the hello
			// belonged to that membership only
			h.leave(2, pidOf(2), ReasonLeave)
		}
		s := h.snap()
		ok, reason := s.Bypass(2)
		if ok != tt.allowed || !strings.Contains(reason, tt.reason) {
			t.Errorf("cman=%v group=%v hello=%v: Bypass = %v %q, want %v and %q",
				tt.cman, tt.group, tt.hello, ok, reason, tt.allowed, tt.reason)
		}
		d := s.BypassDetail(2)
		if !d.Known || d.ClusterMember != tt.cman || d.GroupMember != tt.group || d.Hello != (tt.group && tt.hello) {
			t.Errorf("cman=%v group=%v hello=%v: detail %+v", tt.cman, tt.group, tt.hello, d)
		}
		if len(s.Recovery) != 0 {
			t.Errorf("cman=%v group=%v hello=%v: unexpected sets %+v", tt.cman, tt.group, tt.hello, s.Recovery)
		}
	}
}

// Without its own full view the daemon cannot vouch for anyone.
func TestBypassUnknownView(t *testing.T) {
	tests := []struct {
		name   string
		script func(h *harness)
		reason string
	}{
		{"before any cluster membership", func(h *harness) {
			h.join(us, ourPID)
			h.join(2, pidOf(2))
			h.sayHello(2, pidOf(2))
		}, "no cluster membership yet"},
		{"before we joined the group", func(h *harness) {
			h.nodes(1, 2)
			h.join(2, pidOf(2))
		}, "not in the groupd group, so it cannot tell"},
		{"node id 0", func(h *harness) {
			h.up([]uint32{1, 2}, 1, 2)
		}, "not a node"},
	}
	for _, tt := range tests {
		h := newHarness(t, true)
		tt.script(h)
		node := uint32(2)
		if tt.name == "node id 0" {
			node = 0
		}
		d := h.snap().BypassDetail(node)
		if d.Allowed || d.Known || !strings.Contains(d.Reason, tt.reason) {
			t.Errorf("%s: %+v, want not allowed, not known, reason %q", tt.name, d, tt.reason)
		}
	}
}

func TestBypassRefusedWhilePendingSet(t *testing.T) {
	h := newHarness(t, false)
	h.up([]uint32{1, 2}, 1, 2)
	// node 2's groupd died; killing is off, so node 2 stays in the cluster
	h.leave(2, pidOf(2), ReasonProcDown)
	// the same pid cannot come back, but another run on node 2 that is
	// in the group without a hello must not count
	h.join(2, 4242)
	if ok, _ := h.snap().Bypass(2); ok {
		t.Error("bypass allowed with a pending set and no hello")
	}
	h.sayHello(2, 4242) // a clean start closes the set
	if ok, why := h.snap().Bypass(2); !ok {
		t.Errorf("bypass after a clean restart of node 2's groupd refused: %s", why)
	}
}
