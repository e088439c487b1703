package groupd

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Monotonic() time.Duration { return c.Now().Sub(t0) + time.Hour }

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type kill struct {
	node   uint32
	reason string
}

type fakeKiller struct {
	mu      sync.Mutex
	kills   []kill
	err     error
	block   chan struct{} // if set, KillNode waits on it
	entered chan struct{} // if set, KillNode sends on it when called
}

func (k *fakeKiller) KillNode(node uint32, reason string) error {
	if k.entered != nil {
		k.entered <- struct{}{}
	}
	if k.block != nil {
		<-k.block
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kills = append(k.kills, kill{node, reason})
	return k.err
}

func (k *fakeKiller) got() []kill {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.kills)
}

type fakeHello struct {
	mu   sync.Mutex
	sent [][]byte
	err  error
}

func (h *fakeHello) SendHello(b []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent = append(h.sent, b)
	return h.err
}

func (h *fakeHello) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sent)
}

type names map[uint32]string

func (n names) NodeName(id uint32) string { return n[id] }

type testLog struct{ t testing.TB }

func (l testLog) Debugf(f string, a ...any) { l.t.Logf("DEBUG "+f, a...) }
func (l testLog) Infof(f string, a ...any)  { l.t.Logf("INFO  "+f, a...) }
func (l testLog) Warnf(f string, a ...any)  { l.t.Logf("WARN  "+f, a...) }

const (
	us     = 1
	ourPID = 100
)

// harness drives a Machine with terse scripted events. It keeps the group
// membership so each step names only what changed, like corosync does.
type harness struct {
	t       *testing.T
	m       *Machine
	clock   *fakeClock
	killer  *fakeKiller
	hello   *fakeHello
	members []Member
	cluster []uint32
	seq     uint64
	notices []Notice
	looped  int // our hellos delivered back to us
}

// handle hands ev to the machine and then delivers back to it the hellos
// it sent meanwhile, as cpg does (a member receives its own multicasts),
// before the next scripted event: ours are sent from the event's handler,
// so they mostly come before other members' answers to the same event.
func (h *harness) handle(ev Event) {
	h.m.Handle(ev)
	for h.looped < h.hello.count() {
		h.hello.mu.Lock()
		b := h.hello.sent[h.looped]
		h.hello.mu.Unlock()
		h.looped++
		if h.m.joined {
			h.m.Handle(GroupMessage{NodeID: us, PID: ourPID, Data: append([]byte(nil), b...)})
		}
	}
}

func newHarness(t *testing.T, killOnProcDown bool) *harness {
	h := &harness{t: t, clock: &fakeClock{now: t0}, killer: &fakeKiller{}, hello: &fakeHello{}}
	m, err := NewMachine(Config{
		OurNodeID:        us,
		OurPID:           ourPID,
		Start:            t0.Add(-time.Minute),
		NoKillOnProcDown: !killOnProcDown,
		Kill:             h.killer,
		Hello:            h.hello,
		Clock:            h.clock,
		Names:            names{1: "alpha", 2: "bravo", 3: "charlie", 4: "delta"},
		Log:              testLog{t},
		Notify:           func(n Notice) { h.notices = append(h.notices, n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

// up starts a normal cluster: cman members, and the given nodes in the
// groupd group (us first), each having said hello.
func (h *harness) up(clusterNodes []uint32, groupNodes ...uint32) {
	h.nodes(clusterNodes...)
	h.join(us, ourPID)
	for _, n := range groupNodes {
		if n != us {
			h.join(n, pidOf(n))
		}
		h.sayHello(n, pidOf(n))
	}
}

func pidOf(node uint32) uint32 {
	if node == us {
		return ourPID
	}
	return 1000 + node
}

// nodes sends a quorate cman membership change with exactly these members.
func (h *harness) nodes(ids ...uint32) { h.nodesQuorate(true, ids...) }

func (h *harness) nodesQuorate(quorate bool, ids ...uint32) {
	h.seq += 4
	h.cluster = slices.Clone(ids)
	h.clock.advance(time.Second)
	h.handle(NodeChange{Ring: RingID{NodeID: 1, Seq: h.seq}, Members: ids, Quorate: quorate})
}

// ringMembers is a cluster membership notice for a new ring, with the
// quorum word carried over from the ring before, as the adapter sends it.
func (h *harness) ringMembers(ids ...uint32) { h.nodesQuorate(h.m.quorate, ids...) }

// quorumNotice is corosync's quorum notice for the current ring, as sent
// after the ring's members and again whenever the votes change within it.
func (h *harness) quorumNotice(quorate bool) {
	h.clock.advance(time.Second)
	ring := RingID{NodeID: 1, Seq: h.seq}
	h.handle(NodeChange{Ring: ring, Members: slices.Clone(h.cluster), Quorate: quorate, QuorumRing: ring})
}

// mergeBackRefused has node's run that failed merge back, with a quorate
// ring of members, and say its hello, and fails the test if the node may
// then skip fencing.
func (h *harness) mergeBackRefused(node uint32, members ...uint32) {
	h.t.Helper()
	h.ringMembers(members...)
	h.quorumNotice(true)
	h.joinWith(node, pidOf(node), ReasonNodeUp)
	h.sayHello(node, pidOf(node))
	if ok, why := h.snap().Bypass(node); ok {
		h.t.Errorf("node %d, merged back as the run that failed, may skip fencing: %s", node, why)
	}
}

// joinBesideNodeTwo starts us on a side of nodes 1 and 2 without quorum
// and joins the groupd group, where node 2's daemon already is (its hello
// is the test's to say).
func (h *harness) joinBesideNodeTwo() {
	h.nodesQuorate(false, 1, 2)
	h.quorumNotice(false)
	h.members = []Member{{NodeID: 2, PID: pidOf(2)}}
	h.join(us, ourPID)
}

// noticeAhead is a quorum notice for the ring ringMembers makes next,
// come before that ring's members.
func (h *harness) noticeAhead(quorate bool) { h.noticeAheadBy(1, quorate) }

// noticeAheadBy is a quorum notice for the ring rings after the current
// one (ringMembers makes the next), come before that ring's members.
func (h *harness) noticeAheadBy(rings int, quorate bool) {
	h.noticeFor(uint64(int(h.seq)+4*rings), quorate)
}

// noticeFor is a quorum notice for the ring of sequence seq, come while
// the current ring is h.seq's (ahead of its ring, or late).
func (h *harness) noticeFor(seq uint64, quorate bool) {
	h.clock.advance(time.Second)
	ring := RingID{NodeID: 1, Seq: h.seq}
	h.handle(NodeChange{Ring: ring, Members: slices.Clone(h.cluster), Quorate: quorate, QuorumRing: RingID{NodeID: 1, Seq: seq}})
}

func (h *harness) join(node, pid uint32) { h.joinWith(node, pid, ReasonJoin) }

func (h *harness) joinWith(node, pid uint32, r Reason) {
	m := Member{NodeID: node, PID: pid, Reason: r}
	h.members = append(h.members, Member{NodeID: node, PID: pid})
	h.clock.advance(time.Second)
	h.handle(GroupConfChg{Members: slices.Clone(h.members), Joined: []Member{m}})
}

func (h *harness) leave(node, pid uint32, r Reason) {
	h.members = slices.DeleteFunc(h.members, func(m Member) bool { return m.NodeID == node && m.PID == pid })
	h.clock.advance(time.Second)
	h.handle(GroupConfChg{Members: slices.Clone(h.members), Left: []Member{{NodeID: node, PID: pid, Reason: r}}})
}

func (h *harness) sayHello(node, pid uint32) {
	h.sayHelloStart(node, pid, t0.Add(-time.Hour*time.Duration(node)))
}

// sayHelloStart is node's hello, of this version, written having seen the
// group's members as they are now.
func (h *harness) sayHelloStart(node, pid uint32, start time.Time) {
	h.sayHelloFull(node, pid, start, h.members)
}

// sayHelloDistrusting is node's hello (its run's start as sayHello gives
// it, written having seen the group's members as they are now) naming
// runs its daemon distrusts.
func (h *harness) sayHelloDistrusting(node uint32, runs ...Run) {
	h.sayHelloSaw(node, h.members, runs...)
}

// sayHelloSaw is sayHelloDistrusting written when node's daemon saw the
// group as saw.
func (h *harness) sayHelloSaw(node uint32, saw []Member, runs ...Run) {
	h.sayHelloFull(node, pidOf(node), t0.Add(-time.Hour*time.Duration(node)), saw, runs...)
}

// sayHelloFull is the hello of run (node, pid) that started at start,
// written having seen the group as saw, naming runs its daemon distrusts.
func (h *harness) sayHelloFull(node, pid uint32, start time.Time, saw []Member, runs ...Run) {
	hl := Hello{Version: HelloVersion, NodeID: node, Start: start, Distrusted: runs, Members: []Process{}}
	for _, m := range saw {
		hl.Members = append(hl.Members, Process{NodeID: m.NodeID, PID: m.PID})
	}
	h.handle(GroupMessage{NodeID: node, PID: pid, Data: hl.Marshal()})
}

func (h *harness) snap() *Snapshot { return h.m.Snapshot() }

// set returns node's open set, failing the test if there is none.
func (h *harness) set(node uint32) RecoverySet {
	h.t.Helper()
	for _, s := range h.snap().Recovery {
		if s.NodeID == node {
			return s
		}
	}
	h.t.Fatalf("no recovery set for node %d; sets: %s", node, h.describeSets())
	return RecoverySet{}
}

func (h *harness) describeSets() string {
	var out []string
	for _, s := range h.snap().Recovery {
		out = append(out, fmt.Sprintf("%d:%s", s.NodeID, s.State))
	}
	return fmt.Sprint(out)
}

func (h *harness) wantSets(want ...string) {
	h.t.Helper()
	var got []string
	for _, s := range h.snap().Recovery {
		got = append(got, fmt.Sprintf("%d:%s", s.NodeID, s.State))
	}
	if !slices.Equal(got, want) {
		h.t.Fatalf("recovery sets %q, want %q", got, want)
	}
}
