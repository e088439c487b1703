package groupd

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// SetState is where a recovery set is on its way to being closed.
type SetState string

const (
	// StateWaitCPG: cman reported a groupd member's node down; the groupd
	// confchg for it has not arrived yet. It will: the node is a member.
	StateWaitCPG SetState = "waiting-for-cpg"
	// StateWaitCman: the groupd confchg reported the failure; cman still
	// lists the node (its nodedown is on its way, or a kill is).
	StateWaitCman SetState = "waiting-for-cman"
	// StateWaitFencing: the failure is fully recorded; the node must be
	// fenced. Closed by an ack, or by the node coming back cleanly.
	StateWaitFencing SetState = "waiting-for-fencing"
	// StateAcked: fencing was acknowledged. A set acked before its groupd
	// confchg arrived stays in this state until it does, so that the late
	// confchg does not open a new set; otherwise it is closed at once. A
	// failure that is not that confchg (another groupd run of the node, or
	// the node leaving the cluster again) closes it and opens a new set.
	StateAcked SetState = "acked"
	// StateRejoined: closed because the node came back as a cluster member
	// and groupd member and announced a new daemon run (a clean start,
	// which passed the residual check).
	StateRejoined SetState = "rejoined"
	// StateLeftCleanly: closed because the groupd confchg said the member
	// left cleanly after all.
	StateLeftCleanly SetState = "left-cleanly"
	// StateQuorateSide: closed because the node merged back after a
	// partition in which our side was not quorate, neither in the ring it
	// was seen gone in, nor at any time while it was out, nor just before
	// the merge: we could not act on its absence, so what it holds is not state left behind by our recovery,
	// and the fencing to be done (if any) is ours, by its side.
	StateQuorateSide SetState = "quorate-side"
)

// Pending says whether the set still asks for the node to be fenced.
func (s SetState) Pending() bool {
	return s == StateWaitCPG || s == StateWaitCman || s == StateWaitFencing
}

// RecoverySet records one failed node until its fencing is acknowledged.
type RecoverySet struct {
	NodeID uint32
	Name   string
	State  SetState
	// Reason is how the node failed: the groupd confchg reason (nodedown,
	// procdown), or nodedown while only cman has reported it.
	Reason     Reason
	Failed     time.Time     // wall clock of the first report
	FailedMono time.Duration // monotonic clock of the first report
	// Ring is the cluster ring the node was seen gone in (the latest ring
	// we knew until cman reported it), and QuorateWhenGone whether our side
	// was quorate at some time while the node was gone, so could act on
	// its absence. The word a ring's members come with is the ring
	// before's; corosync's first quorum notice for the ring corrects it
	// (quorumSettled). From then on it only ever turns true: on any word
	// that we are quorate while the node is still out of the cluster.
	Ring            RingID
	QuorateWhenGone bool
	quorumSettled   bool
	// PID and Start identify the groupd run the set was opened for (zero
	// if unknown).
	PID   uint32
	Start time.Time
	// Runs lists every groupd run whose failure the set records, that
	// first one included, so that none of them merging back is taken for
	// a clean start. It holds at most maxSetRuns; runsFull says a run
	// failed past that and went unrecorded (see failedRun).
	Runs     []Run
	runsFull bool
	// When each side reported the failure; zero until it has.
	GroupReported, ClusterReported time.Time
	// KillRequested: we asked cman to kill the node (procdown).
	// KillError says why that kill failed, once it has; the set then
	// waits for fencing, as no cman report of the node's departure will
	// come.
	KillRequested bool
	KillError     string
	killSeq       uint64 // which kill request was this set's
	// killPending: the set's latest kill was requested, has not failed,
	// and cman has not reported the node gone since.
	killPending bool
	// Failures counts the failures folded into this set; 1 means none
	// repeated.
	Failures    int
	LastFailure time.Time
	Acked       time.Time
	Closed      time.Time // set for closed sets (history)
}

// maxSetRuns bounds the failed runs one set records. Only a node whose
// groupd keeps failing, never fenced and never starting cleanly, fills it.
// Past it a further run is counted in Failures but not recorded, and any
// run of the node that merges back is taken for one that failed: more
// fencing, never less.
const maxSetRuns = 8

// addRun records r as a failed run of the set, unless it already is.
func (s *RecoverySet) addRun(r Run) {
	if s.failedRun(r.PID, r.Start, false) {
		return // the same run, or one recorded without a start
	}
	if len(s.Runs) >= maxSetRuns {
		s.runsFull = true
		return
	}
	s.Runs = append(s.Runs, r)
}

// failedRun reports whether the run pid, whose hello shows start, is one
// the set records as failed; a recorded run without a start stands for
// any run of its pid. merged says the run merged back after a partition
// (nodeup): once runs went unrecorded, any such run is taken for one of
// them.
func (s *RecoverySet) failedRun(pid uint32, start time.Time, merged bool) bool {
	if merged && s.runsFull {
		return true
	}
	return slices.ContainsFunc(s.Runs, func(r Run) bool {
		return r.PID == pid && (r.Start.IsZero() || r.Start.Equal(start))
	})
}

// clone is a copy of s that shares nothing with it.
func (s *RecoverySet) clone() RecoverySet {
	c := *s
	c.Runs = slices.Clone(s.Runs)
	return c
}

// ErrNoRecoverySet is returned by Ack for a node without a pending set.
var ErrNoRecoverySet = errors.New("no recovery set for that node")

// Config sets up a Machine. Kill, Hello and Clock are required; NewMachine
// and NewDaemon return an error without them.
type Config struct {
	OurNodeID uint32
	OurPID    uint32
	// Start is when this daemon started; sent in our hello.
	Start time.Time
	// NoKillOnProcDown stops the machine from killing, from the cluster,
	// a node whose groupd died while its corosync stayed up. By default
	// (false) such a node is killed, so it gets fenced rather than running
	// on with uncontrolled dlm/gfs state.
	NoKillOnProcDown bool

	Kill  Killer
	Hello HelloSender
	Clock Clock
	Names Namer  // nil: names unknown
	Log   Logger // nil: no logging
	// Notify, if set, is called in the machine's goroutine for every
	// notable change (the watch stream).
	Notify func(Notice)
	// History is how many closed sets to keep for status; default 32.
	History int
}

// Notice is a notable change, as logged; streamed to watchers.
type Notice struct {
	Time   time.Time
	Level  string // "debug", "info", "warn"
	Kind   string // e.g. "member-joined", "recovery-opened"
	NodeID uint32 // the node concerned, 0 if none
	Text   string
}

type memberKey struct{ nodeID, pid uint32 }

type member struct {
	memberKey
	since time.Time
	born  uint64 // the machine's births when it joined: 1 for the first member seen
	// reason is how it joined the group as we saw it: ReasonJoin (a
	// cpg_join), ReasonNodeUp (its node merged into our membership), or 0
	// when it was already a member when we joined.
	reason Reason
	hello  *Hello // a counted hello from this run since it joined; nil if none
	// stale: no hello from it counts until it leaves the group and joins
	// again: it merged back (reason nodeup) into our side while it was
	// quorate; it is a run that failed earlier; its node left the cluster
	// while it was listed; or another member's daemon distrusts it (see
	// Hello.Distrusted).
	stale bool
	// staleStart is the start time of a stale run's hello, once heard.
	staleStart time.Time
	// awaited: it was in the group when we joined, or it merged into our
	// side while ours was not quorate, or was in the group then (its
	// hello on the merge names the runs it holds sets for), and we have
	// not heard a hello of it written after it saw that. Its daemon may
	// distrust runs we take for clean (it saw them merge back or fail; we
	// did not), and says so only in its hello.
	// awaitedSince: helloWait runs from it: when this wait began (a join
	// or merge during the wait does not move it), or the member's latest
	// hello that did not answer it, at most helloWait after awaitBegan;
	// awaitFor: the members at
	// the latest join or merge, which a hello of version 3 must list to
	// end the wait (one written before it saw them knows nothing of them).
	awaited      bool
	awaitedSince time.Time
	awaitFor     []memberKey
	awaitBegan   time.Time // when this wait began: it ends by 2*helloWait
	// distrustedStarts: starts of runs of this pid other daemons distrust,
	// named before we heard its hello; it turns stale if its hello shows
	// one of them.
	distrustedStarts []time.Time
	// distrustAny: a hello (another daemon's) named this pid with no
	// start before we heard its own: it turns stale with its hello, once
	// what that hello distrusts has been taken. Our hellos pass it on.
	distrustAny bool
	// pendingDistrust: what a stale run that merged in named in its latest
	// hello, not taken because our side was quorate all the time its
	// node was out as far as we knew then (see nodeChange).
	pendingDistrust []Run
}

// await starts waiting, or waiting again, for a hello of the member that
// it wrote having seen the group as members are now. A wait already under
// way keeps its start, so that merges in quick succession cannot keep a
// silent member awaited for more than helloWait; a member that answers
// with an older hello meanwhile gets helloWait from that hello, up to
// twice helloWait from the start.
func (mb *member) await(now time.Time, members []*member) {
	if !mb.awaited {
		mb.awaited, mb.awaitedSince, mb.awaitBegan = true, now, now
	}
	mb.awaitFor = mb.awaitFor[:0]
	for _, o := range members {
		mb.awaitFor = append(mb.awaitFor, o.memberKey)
	}
}

// answersWait reports whether h, the member's hello, ends our wait for it:
// it lists every member we waited for it to see that is still in the
// group. Daemons before version 3 do not say what they saw; any hello of
// theirs ends the wait (it may be one written before they saw the
// members that joined, and so not name runs they hold sets for against
// them).
func (m *Machine) answersWait(mb *member, h Hello) bool {
	if h.Version < 3 {
		return true
	}
	for _, k := range mb.awaitFor {
		if m.findMember(k) == nil {
			continue // left since
		}
		if !slices.Contains(h.Members, Process{NodeID: k.nodeID, PID: k.pid}) {
			return false
		}
	}
	return true
}

// run is the member's run as far as we know it: its start is from its
// counted hello, or from the hello it sent while stale.
func (mb *member) run() Run {
	r := Run{NodeID: mb.nodeID, PID: mb.pid, Start: mb.staleStart}
	if mb.hello != nil {
		r.Start = mb.hello.Start
	}
	return r
}

// markStale stops counting the member's hellos until it leaves the group,
// keeping its run's start if known: start, else its counted hello's.
func (mb *member) markStale(start time.Time) {
	if start.IsZero() && mb.hello != nil {
		start = mb.hello.Start
	}
	if mb.staleStart.IsZero() {
		mb.staleStart = start
	}
	mb.stale = true
	mb.hello = nil
}

// Machine is the daemon state. It is not safe for concurrent use: one
// goroutine (Daemon.Run) owns it.
type Machine struct {
	cfg     Config
	phase   Phase
	killSeq uint64 // kill requests made so far

	clusterKnown bool
	quorate      bool
	// quorateBefore is whether the ring before the current one was
	// quorate: a merge's cpg confchg may come after cman's change.
	quorateBefore bool
	ring          RingID
	// noticeRing is the ring of corosync's last quorum notice, and
	// ringQuorateSeen whether any notice for that ring said quorate.
	noticeRing      RingID
	ringQuorateSeen bool
	// quorateNotices counts the quorum notices that said we were quorate,
	// and seenAt holds that count for each node when it was last a
	// cluster member: more since means a notice said quorate while it was
	// out.
	quorateNotices uint64
	seenAt         map[uint32]uint64
	// Whether our side was not quorate at some time while a node was out
	// (inquorateWhileOut), by ring sequence numbers, so that the order
	// corosync's notices come in does not matter (ahead of their ring's
	// members, for a ring cut short before its members came, late):
	// inquorateRings holds the rings any notice said we were not quorate
	// in (sorted, the latest maxInquorateRings); outFrom the last ring a
	// node was present in before its absence (the ring of the change
	// before the one that showed it gone: every change, quorum notices
	// included, lists the members of m.ring), backAt the ring it came
	// back in.
	// It was out in every ring between the two, both excluded: a ring we
	// never saw the members of counts.
	inquorateRings []uint64
	outFrom        map[uint32]uint64
	backAt         map[uint32]uint64
	// absentSince marks a node whose absence is not over for this: it
	// left when the group had had that many members (births), and no
	// hello has been heard since from a run that joined the group after
	// (a node that flaps before its daemons answered keeps its first
	// absence's start; a hello its old run wrote before it left,
	// delivered late, does not end the absence).
	absentSince map[uint32]uint64
	births      uint64
	cluster     map[uint32]bool

	joined  bool // our process is in the group membership
	members []*member
	sets    map[uint32]*RecoverySet
	closed  []RecoverySet
}

// NewMachine returns a machine in PhaseStarting, or an error when cfg lacks
// Kill, Hello or Clock.
func NewMachine(cfg Config) (*Machine, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.History <= 0 {
		cfg.History = 32
	}
	return &Machine{
		cfg:     cfg,
		phase:   PhaseStarting,
		cluster: map[uint32]bool{},
		sets:    map[uint32]*RecoverySet{},

		seenAt:      map[uint32]uint64{},
		outFrom:     map[uint32]uint64{},
		backAt:      map[uint32]uint64{},
		absentSince: map[uint32]uint64{},
	}, nil
}

func (cfg *Config) check() error {
	var missing []string
	if cfg.Kill == nil {
		missing = append(missing, "Kill")
	}
	if cfg.Hello == nil {
		missing = append(missing, "Hello")
	}
	if cfg.Clock == nil {
		missing = append(missing, "Clock")
	}
	if len(missing) > 0 {
		return fmt.Errorf("groupd: config lacks %s", strings.Join(missing, ", "))
	}
	return nil
}

func (m *Machine) name(id uint32) string {
	if m.cfg.Names == nil {
		return ""
	}
	return m.cfg.Names.NodeName(id)
}

// node formats a node for log lines: `node 3 (alpha)`.
func (m *Machine) node(id uint32) string {
	if n := m.name(id); n != "" {
		return fmt.Sprintf("node %d (%s)", id, n)
	}
	return fmt.Sprintf("node %d", id)
}

func (m *Machine) notice(level, kind string, nodeID uint32, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	if l := m.cfg.Log; l != nil {
		switch level {
		case "debug":
			l.Debugf("%s", text)
		case "warn":
			l.Warnf("%s", text)
		default:
			l.Infof("%s", text)
		}
	}
	if m.cfg.Notify != nil {
		m.cfg.Notify(Notice{Time: m.cfg.Clock.Now(), Level: level, Kind: kind, NodeID: nodeID, Text: text})
	}
}

// Handle applies one event.
func (m *Machine) Handle(ev Event) {
	switch ev := ev.(type) {
	case GroupConfChg:
		m.confChg(ev)
	case GroupMessage:
		m.message(ev)
	case NodeChange:
		m.nodeChange(ev)
	case HelloWaitOver:
		m.helloWaitOver()
	case SetPhase:
		if ev.Phase != m.phase {
			m.notice("info", "phase", 0, "daemon phase %s -> %s", m.phase, ev.Phase)
			m.phase = ev.Phase
		}
	default:
		m.notice("warn", "bad-event", 0, "ignored an input of unknown type %T", ev)
	}
	m.closeRejoined()
}

func (m *Machine) isUs(k memberKey) bool {
	return k.nodeID == m.cfg.OurNodeID && k.pid == m.cfg.OurPID
}

func (m *Machine) findMember(k memberKey) *member {
	for _, mb := range m.members {
		if mb.memberKey == k {
			return mb
		}
	}
	return nil
}

func (m *Machine) groupMember(nodeID uint32) bool {
	for _, mb := range m.members {
		if mb.nodeID == nodeID {
			return true
		}
	}
	return false
}

func (m *Machine) confChg(ev GroupConfChg) {
	now := m.cfg.Clock.Now()
	m.notice("debug", "confchg", 0, "groupd group membership: %d members, %d left, %d joined",
		len(ev.Members), len(ev.Left), len(ev.Joined))

	old := map[memberKey]*member{}
	for _, mb := range m.members {
		old[mb.memberKey] = mb
	}
	fresh := map[memberKey]Reason{}
	for _, j := range ev.Joined {
		fresh[memberKey{j.NodeID, j.PID}] = j.Reason
	}

	// Failures are recorded before the member list changes, so the set can
	// take the failed run's identity (pid, hello start) from it.
	for _, l := range ev.Left {
		k := memberKey{l.NodeID, l.PID}
		if l.Reason == ReasonLeave {
			m.notice("info", "member-left", l.NodeID, "%s pid %d left the groupd group cleanly", m.node(l.NodeID), l.PID)
			m.leftCleanly(l.NodeID, now)
			continue
		}
		m.groupFailure(l, old[k], now)
	}

	var members []*member
	wasJoined := m.joined
	m.joined = false
	for _, e := range ev.Members {
		k := memberKey{e.NodeID, e.PID}
		mb := old[k]
		if r, joined := fresh[k]; mb == nil || joined {
			// A (re)joined member has announced nothing yet in this run of
			// its membership. One that came in with a partition healing,
			// not by a cpg_join, into our side that was quorate may be a
			// run that kept dlm/gfs state through the partition, whatever
			// we saw of it before (we may have started since, or acked its
			// set): no hello counts. Into our side that was not quorate,
			// its side may be the one that could act: its hello names the
			// runs it distrusts, and ours of the runs we hold sets for.
			m.births++
			mb = &member{memberKey: k, since: now, born: m.births, reason: r, stale: r == ReasonNodeUp && m.heldQuorumBeforeMerge(e.NodeID)}
		}
		members = append(members, mb)
		if m.isUs(k) {
			m.joined = true
		}
	}
	m.members = members

	for _, j := range ev.Joined {
		if j.Reason == ReasonNodeUp && !m.heldQuorumBeforeMerge(j.NodeID) {
			mb := m.findMember(memberKey{j.NodeID, j.PID})
			m.notice("info", "member-merged", j.NodeID, "%s pid %d merged into the groupd group (nodeup); we were not quorate before the merge, so its side may be the one that could act, and its hello counts unless a daemon names it or it is a failed run we hold a recovery set for", m.node(j.NodeID), j.PID)
			// Its hello names the runs of our side its side saw fail:
			// until it comes, we can tell about nobody.
			if mb != nil && m.joined && !m.isUs(mb.memberKey) {
				mb.await(now, m.members)
			}
			// Every other daemon sends a hello on this confchg, naming the
			// runs it distrusts; one may hold a set for this run that we,
			// started later, lack. A daemon we hold stale too: its run
			// is suspect, not the sets it holds.
			if m.joined && wasJoined {
				for _, o := range m.members {
					if !m.isUs(o.memberKey) {
						o.await(now, m.members)
					}
				}
			}
			// Only on a settled word: before corosync's notice for the
			// ring the node left in, we may yet learn we were quorate.
			if s := m.sets[j.NodeID]; s != nil && s.State.Pending() && !s.ClusterReported.IsZero() && !s.QuorateWhenGone && s.quorumSettled {
				// Opened when it was cut off from us, in a ring where we
				// were not quorate either: we could not act on its
				// absence. Left open, the run's hello would be taken for
				// the failed run merging back, and our side would fence
				// the side that may have held the cluster. A set opened
				// while we were quorate stays: we may have recovered
				// its locks meanwhile.
				m.closeSet(s, StateQuorateSide, now, "%s merged back after a partition in which we were not quorate (ring %s); its recovery set is closed", m.node(j.NodeID), s.Ring)
			}
			continue
		}
		if j.Reason == ReasonNodeUp {
			m.notice("warn", "member-merged", j.NodeID, "%s pid %d merged back into the groupd group after a partition (nodeup); it may hold dlm/gfs state from before, so it must be fenced unless its groupd leaves and rejoins the group", m.node(j.NodeID), j.PID)
			continue
		}
		m.notice("info", "member-joined", j.NodeID, "%s pid %d joined the groupd group (%s)", m.node(j.NodeID), j.PID, j.Reason)
	}
	switch {
	case m.joined && !wasJoined:
		for _, mb := range m.members {
			mb.awaited = false
			if !m.isUs(mb.memberKey) && mb.reason == 0 {
				mb.await(now, m.members)
			}
		}
		m.phase = PhaseJoined
		m.notice("info", "joined", m.cfg.OurNodeID, "we joined the groupd group as %s pid %d", m.node(m.cfg.OurNodeID), m.cfg.OurPID)
	case !m.joined && wasJoined && m.phase == PhaseLeaving:
		m.notice("info", "left", m.cfg.OurNodeID, "we (%s pid %d) left the groupd group", m.node(m.cfg.OurNodeID), m.cfg.OurPID)
	case !m.joined && wasJoined:
		m.notice("warn", "not-member", m.cfg.OurNodeID, "we (%s pid %d) are no longer in the groupd group membership", m.node(m.cfg.OurNodeID), m.cfg.OurPID)
	}
	// Announce ourselves to whoever joined, including to all when we did:
	// a member that missed our hello cannot bypass fencing us.
	if m.joined && len(ev.Joined) > 0 {
		m.sendHello()
	}
}

// helloWait is how long a daemon waits for the hello of an awaited
// member: one in the group before it joined, or, after a merge into its
// side while it was not quorate, one there then. Hellos come within
// milliseconds of the join or merge; one held up by corosync's flow control takes seconds. A
// member silent for longer (a process in the group that is no groupd, or
// a daemon that cannot send) is given up on, with a warning, so that it
// cannot keep every later daemon from answering. A variable for tests.
var helloWait = HelloWait

// HelloWait is how long a wait for an awaited member's hello lasts; a
// member that answers with older hellos meanwhile can stretch it to twice
// that.
const HelloWait = 30 * time.Second

// HelloDeadline returns when the first wait for an awaited member's hello
// ends, if we wait for any.
func (m *Machine) HelloDeadline() (time.Time, bool) {
	var first time.Time
	for _, mb := range m.members {
		if at := mb.awaitedSince.Add(helloWait); mb.awaited && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// helloWaitOver stops waiting for the members whose helloWait is over.
func (m *Machine) helloWaitOver() {
	now := m.cfg.Clock.Now()
	for _, mb := range m.members {
		if mb.awaited && !now.Before(mb.awaitedSince.Add(helloWait)) {
			mb.awaited = false
			m.notice("warn", "hello-missing", mb.nodeID, "%s pid %d, in the groupd group before we joined, or there or merging in when a node merged into our side without quorum, has not answered within %s (no hello of it written after it saw the latest join or merge); we answer without it, so any run its daemon distrusts (one that merged back after a partition, or failed) is unknown to us", m.node(mb.nodeID), mb.pid, now.Sub(mb.awaitBegan).Round(time.Second))
		}
	}
}

func (m *Machine) sendHello() {
	h := Hello{Version: HelloVersion, NodeID: m.cfg.OurNodeID, Start: m.cfg.Start}
	// The members as we see them, so that a daemon waiting for our answer
	// to a join or merge can tell it from a hello we wrote before.
	for _, mb := range m.members {
		if len(h.Members) < maxSeen {
			h.Members = append(h.Members, Process{NodeID: mb.nodeID, PID: mb.pid})
		}
	}
	// What we know against other members goes with it, for daemons that
	// joined after they merged back.
	for _, mb := range m.members {
		if m.isUs(mb.memberKey) || len(h.Distrusted) >= maxDistrusted {
			continue
		}
		if mb.stale {
			h.Distrusted = append(h.Distrusted, Run{NodeID: mb.nodeID, PID: mb.pid, Start: mb.staleStart})
			continue
		}
		// Runs others named before we heard the member's hello: passed on
		// with their starts, which receivers compare with its hello.
		if mb.distrustAny && mb.hello == nil {
			h.Distrusted = append(h.Distrusted, Run{NodeID: mb.nodeID, PID: mb.pid})
		}
		for _, start := range mb.distrustedStarts {
			if len(h.Distrusted) < maxDistrusted {
				h.Distrusted = append(h.Distrusted, Run{NodeID: mb.nodeID, PID: mb.pid, Start: start})
			}
		}
		if mb.reason != ReasonNodeUp {
			continue
		}
		// Merged back with the pid of a run we hold a set for: a run that
		// failed, unless its hello shows another start (which the
		// receivers check). Named now, not only once its hello has come,
		// for daemons that joined meanwhile.
		var runs []Run
		if s := m.sets[mb.nodeID]; s != nil && s.State.Pending() {
			for _, r := range s.Runs {
				if r.PID == mb.pid {
					runs = append(runs, r)
				}
			}
			if len(runs) == 0 && s.runsFull {
				runs = append(runs, Run{NodeID: mb.nodeID, PID: mb.pid})
			}
		}
		for _, r := range runs {
			if len(h.Distrusted) < maxDistrusted {
				h.Distrusted = append(h.Distrusted, r)
			}
		}
	}
	if err := m.cfg.Hello.SendHello(h.Marshal()); err != nil {
		m.notice("warn", "hello-failed", m.cfg.OurNodeID, "could not send our hello to the groupd group: %v; other nodes will not bypass fencing us until we do", err)
		return
	}
	m.notice("debug", "hello-sent", m.cfg.OurNodeID, "sent our hello (started %s)", m.cfg.Start.Format(time.RFC3339))
}

// leftCleanly handles a member that left with reason leave. A set opened
// by cman for it (cman's nodedown overtook the confchg) is closed: the
// daemon shut down cleanly before its node went.
func (m *Machine) leftCleanly(nodeID uint32, now time.Time) {
	s := m.sets[nodeID]
	if s == nil || (s.State != StateWaitCPG && s.State != StateAcked) || m.otherRuns(nodeID) {
		return
	}
	m.closeSet(s, StateLeftCleanly, now, "%s left the groupd group cleanly before leaving the cluster; its recovery set is closed", m.node(nodeID))
}

// otherRuns says whether nodeID has more than one process in the group,
// so one leaving does not settle what cman reported for the node.
func (m *Machine) otherRuns(nodeID uint32) bool {
	n := 0
	for _, mb := range m.members {
		if mb.nodeID == nodeID {
			n++
		}
	}
	return n > 1
}

func (m *Machine) groupFailure(l Member, was *member, now time.Time) {
	id := l.NodeID
	run := Run{NodeID: id, PID: l.PID}
	if was != nil {
		run = was.run()
	}
	s := m.sets[id]
	if s != nil && s.State == StateAcked && s.PID != 0 && s.PID != l.PID {
		// The acked set waits for the confchg of run s.PID; this is another
		// run failing, so a new failure that needs its own fencing.
		m.closeSet(s, StateAcked, now, "%s pid %d failed (%s) while the acknowledged recovery set of its earlier groupd run (pid %d) still waited for that run's confchg; that set is closed and a new one opened", m.node(id), l.PID, l.Reason, s.PID)
		s = nil
	}
	if s != nil {
		switch s.State {
		case StateWaitCPG:
			s.Reason = l.Reason
			s.GroupReported = now
			s.State = StateWaitFencing
			s.addRun(run)
			m.notice("info", "recovery-updated", id, "groupd group reported %s pid %d gone (%s) after cman did; waiting for it to be fenced", m.node(id), l.PID, l.Reason)
		case StateAcked:
			m.closeSet(s, StateAcked, now, "groupd group reported %s pid %d gone (%s); its fencing was already acknowledged, recovery set closed", m.node(id), l.PID, l.Reason)
		default:
			s.Failures++
			s.LastFailure = now
			s.addRun(run)
			m.notice("warn", "recovery-repeat", id, "%s pid %d failed again (%s); it already has a recovery set (%s), failure %d", m.node(id), l.PID, l.Reason, s.State, s.Failures)
			if m.mayKill(l) && !s.killPending {
				// Its groupd died while the node is a cluster member,
				// and no kill of ours is under way: none was asked, the
				// last one failed, or the node has left the cluster and
				// come back since.
				s.KillError = ""
				if s.ClusterReported.IsZero() {
					s.State = StateWaitCman
				}
				m.killFor(s, l)
			}
		}
		return
	}

	s = &RecoverySet{
		NodeID:        id,
		Name:          m.name(id),
		Reason:        l.Reason,
		Failed:        now,
		FailedMono:    m.cfg.Clock.Monotonic(),
		Ring:          m.ring,
		PID:           l.PID,
		Start:         run.Start,
		Runs:          []Run{run},
		GroupReported: now,
		Failures:      1,
		LastFailure:   now,
	}
	m.sets[id] = s

	gone := m.clusterKnown && !m.cluster[id]
	kill := m.mayKill(l)
	switch {
	case gone:
		// cman had already removed it (its event overtook ours while the
		// node was not yet in cman's list); nothing more to wait for.
		m.seenGone(s, now)
		s.State = StateWaitFencing
	case l.Reason == ReasonProcDown && !kill:
		// Its node stays in the cluster; no cman nodedown will come.
		s.State = StateWaitFencing
	default:
		s.KillRequested = kill
		s.State = StateWaitCman
	}
	m.notice("warn", "recovery-opened", id, "%s pid %d failed (%s); recovery set opened, %s", m.node(id), l.PID, l.Reason, s.State)

	if l.Reason == ReasonProcDown {
		switch {
		case id == m.cfg.OurNodeID:
			m.notice("warn", "procdown", id, "another groupd (pid %d) on our own node died; not killing our own node", l.PID)
		case s.KillRequested:
			m.killFor(s, l)
		default:
			m.notice("warn", "procdown", id, "groupd (pid %d) on %s died while its corosync kept running; killing it is disabled, so it stays a cluster member until it is fenced or its groupd restarts", l.PID, m.node(id))
		}
	}
}

// mayKill reports whether the departure l of a groupd run calls for
// killing its node from the cluster: its groupd died (procdown) while the
// node stayed a cluster member, killing is not disabled, and the node is
// not ours.
func (m *Machine) mayKill(l Member) bool {
	gone := m.clusterKnown && !m.cluster[l.NodeID]
	return l.Reason == ReasonProcDown && !gone && !m.cfg.NoKillOnProcDown && l.NodeID != m.cfg.OurNodeID
}

// killFor asks to kill the node of set s from the cluster, for the death
// of its groupd run l, under a new kill sequence number.
func (m *Machine) killFor(s *RecoverySet, l Member) {
	id := s.NodeID
	s.KillRequested = true
	s.killPending = true
	m.notice("warn", "kill", id, "killing %s from the cluster: its groupd (pid %d) died while its corosync kept running, so it must be fenced", m.node(id), l.PID)
	reason := fmt.Sprintf("groupd pid %d on this node died while corosync kept running", l.PID)
	m.killSeq++
	s.killSeq = m.killSeq
	if err := m.cfg.Kill.KillNode(id, reason); err != nil {
		m.KillFailed(id, s.killSeq, err)
	}
}

func (m *Machine) nodeChange(ev NodeChange) {
	now := m.cfg.Clock.Now()
	newSet := map[uint32]bool{}
	for _, id := range ev.Members {
		newSet[id] = true
	}
	left := slices.Clone(ev.Left)
	joined := slices.Clone(ev.Joined)
	if m.clusterKnown {
		for id := range m.cluster {
			if !newSet[id] && !slices.Contains(left, id) {
				left = append(left, id)
			}
		}
	}
	for _, id := range ev.Members {
		if !m.cluster[id] && !slices.Contains(joined, id) {
			joined = append(joined, id)
		}
	}
	slices.Sort(left)
	slices.Sort(joined)
	for _, id := range left {
		if m.cluster[id] { // an adapter's Left list may repeat a node gone before
			m.absenceBegins(id)
		}
	}
	for _, id := range joined {
		switch {
		case !m.cluster[id], slices.Contains(left, id):
			// One in both lists left and came back between two notices.
			m.backAt[id] = ev.Ring.Seq
		case slices.Contains(ev.Joined, id):
			// Corosync says it joined, and we had it as a member: it was
			// out in a ring we never saw the members of.
			m.absenceBegins(id)
			m.backAt[id] = ev.Ring.Seq
		}
	}
	if ev.QuorumRing != (RingID{}) && !ev.Quorate {
		m.noteInquorateRing(ev.QuorumRing.Seq)
	}
	// What a stale run merged in from the other side named, and was not
	// taken then, may be now: we may have learnt since that our side was
	// not quorate while its node was out (a late notice, or cman's report
	// of the partition behind cpg's).
	for _, mb := range m.members {
		if len(mb.pendingDistrust) > 0 && m.inquorateWhileOut(mb.nodeID) {
			runs := mb.pendingDistrust
			mb.pendingDistrust = nil
			m.distrust(GroupMessage{NodeID: mb.nodeID, PID: mb.pid}, runs)
		}
	}

	// Quorum is reported after the ring's members, in a notice of its own
	// for the ring, and again within the ring when the votes change. A
	// notice for another ring (ahead of its members, or late for an
	// earlier one) does not change our word for the ring we are in; the
	// members of a ring a notice came ahead of carry it when they come.
	notice := ev.QuorumRing != RingID{}
	ahead := notice && ev.QuorumRing != ev.Ring
	if !ahead && (!m.clusterKnown || ev.Quorate != m.quorate) {
		m.notice("info", "quorum", 0, "cluster is %s (ring %s, %d members)", quorateWord(ev.Quorate), ev.Ring, len(ev.Members))
	}
	prev := m.cluster
	if ev.Ring != m.ring {
		m.quorateBefore = m.quorate
	}
	m.clusterKnown = true
	if !ahead {
		m.quorate = ev.Quorate
	}
	m.ring = ev.Ring
	m.cluster = newSet
	// A quorate notice for the ring we are in; or the members of the ring
	// a notice that came ahead of them was for.
	quorateNotice := (notice && ev.Quorate && ev.QuorumRing == ev.Ring) ||
		(!notice && ev.Ring == m.noticeRing && m.ringQuorateSeen)
	if notice {
		if ev.QuorumRing != m.noticeRing {
			m.noticeRing, m.ringQuorateSeen = ev.QuorumRing, false
		}
		m.ringQuorateSeen = m.ringQuorateSeen || ev.Quorate
	}
	for _, s := range m.sets {
		if s.ClusterReported.IsZero() {
			continue
		}
		if !s.quorumSettled {
			switch {
			case notice && s.Ring == ev.QuorumRing:
				s.QuorateWhenGone, s.quorumSettled = ev.Quorate, true
				continue
			case notice && ev.QuorumRing != ev.Ring:
				continue // for another ring (ahead or late): not this set's
			case !notice && s.Ring == ev.Ring:
				s.QuorateWhenGone = ev.Quorate // still the word carried over
				continue
			}
			s.quorumSettled = true // its ring is over: the word it had stands
		}
		// A notice for the ring we are in, not the word a ring's members
		// carry over: that repeats the ring before's, applied in its time.
		if quorateNotice && !newSet[s.NodeID] {
			s.QuorateWhenGone = true
		}
	}
	// The same for nodes with no set yet (their group confchg may come
	// later, even rings later): a node counts as out since it was last a
	// member, or since we started if we never saw it.
	if quorateNotice {
		m.quorateNotices++
	}
	for id := range newSet {
		m.seenAt[id] = m.quorateNotices
	}

	for _, id := range left {
		m.clusterLeft(id, prev[id], ev.Ring, now)
	}
	for _, id := range joined {
		m.notice("info", "node-joined", id, "%s joined the cluster (ring %s)", m.node(id), ev.Ring)
	}
}

func quorateWord(q bool) string {
	if q {
		return "quorate"
	}
	return "not quorate"
}

// clusterLeft handles cman reporting node id gone; wasMember says it was in
// the previous cman membership (an adapter's Left list may repeat a node).
func (m *Machine) clusterLeft(id uint32, wasMember bool, ring RingID, now time.Time) {
	m.recordClusterLeft(id, wasMember, ring, now)
	// A run still listed after its node left the cluster (its confchg is on
	// its way) announced itself before the failure; that no longer counts.
	for _, mb := range m.members {
		if mb.nodeID == id {
			mb.markStale(time.Time{})
		}
	}
}

// seenGone records that cman reported s's node gone, in the current ring.
func (m *Machine) seenGone(s *RecoverySet, now time.Time) {
	s.ClusterReported = now
	s.KillError = "" // the node is gone: the kill's failure no longer matters
	s.killPending = false
	s.Ring = m.ring
	s.QuorateWhenGone, s.quorumSettled = m.quorumWord(s.NodeID)
}

// quorumWord is whether our side was quorate for a node seen gone now, in
// the current ring, and whether that is settled. Once corosync's notice
// for the ring has come: whether any notice in the ring said quorate (the
// node has been gone since the ring began), settled. Before: the word
// the ring's members came with, carried over from the ring before, for
// the ring's notice to correct.
//
// A notice that said quorate while the node was already out of the
// cluster, in an earlier ring, settles it true.
func (m *Machine) quorumWord(id uint32) (quorate, settled bool) {
	if m.quorateNotices > m.seenAt[id] {
		return true, true
	}
	if m.noticeRing == m.ring && m.ring != (RingID{}) {
		return m.ringQuorateSeen, true
	}
	return m.quorate, false
}

func (m *Machine) recordClusterLeft(id uint32, wasMember bool, ring RingID, now time.Time) {
	s := m.sets[id]
	if s != nil && s.State == StateAcked && wasMember {
		// Acked while waiting for its confchg, then back in the cluster and
		// gone again: a new failure, not the one that was fenced.
		m.closeSet(s, StateAcked, now, "%s left the cluster again (ring %s) while its acknowledged recovery set still waited for the groupd confchg; that set is closed and a new one opened", m.node(id), ring)
		s = nil
	}
	if s != nil {
		switch s.State {
		case StateWaitCman:
			s.State = StateWaitFencing
			m.seenGone(s, now)
			m.notice("info", "recovery-updated", id, "cman reported %s gone (ring %s); waiting for it to be fenced", m.node(id), ring)
		case StateWaitFencing:
			if s.ClusterReported.IsZero() {
				m.seenGone(s, now)
				m.notice("info", "recovery-updated", id, "%s left the cluster (ring %s); still waiting for it to be fenced", m.node(id), ring)
				return
			}
			// It came back into the cluster without a clean start, and
			// failed again. Gone once while we were quorate, it stays
			// so: that absence was ours to act on.
			if s.QuorateWhenGone {
				s.quorumSettled = true
			} else {
				s.QuorateWhenGone, s.quorumSettled = m.quorumWord(id)
			}
			s.Ring = m.ring
			killed := s.killPending
			s.KillError, s.killPending = "", false
			for _, mb := range m.members {
				if mb.nodeID == id {
					s.addRun(mb.run())
				}
			}
			if killed {
				// Our kill, for the failure of its groupd that was
				// counted then: the same failure, not another.
				m.notice("info", "recovery-updated", id, "%s left the cluster (ring %s), as our kill asked; still waiting for it to be fenced", m.node(id), ring)
				return
			}
			s.Failures++
			s.LastFailure = now
			m.notice("warn", "recovery-repeat", id, "%s left the cluster again (ring %s); it already has a recovery set, failure %d", m.node(id), ring, s.Failures)
		default:
			m.notice("debug", "node-left", id, "%s left the cluster (ring %s); its recovery set is %s", m.node(id), ring, s.State)
		}
		return
	}
	if !m.groupMember(id) {
		// Never a groupd member (or it left cleanly): no confchg will
		// come for it, so a set would wait forever.
		m.notice("info", "node-left", id, "%s left the cluster (ring %s); it was not in the groupd group, so there is no recovery set", m.node(id), ring)
		return
	}
	s = &RecoverySet{
		NodeID:          id,
		Name:            m.name(id),
		State:           StateWaitCPG,
		Reason:          ReasonNodeDown,
		Failed:          now,
		FailedMono:      m.cfg.Clock.Monotonic(),
		Ring:            ring,
		ClusterReported: now,
		Failures:        1,
		LastFailure:     now,
	}
	// Record which groupd runs were there, so that none of them merging
	// back is taken for a clean start. With several runs of one node
	// (unusual) PID and Start are the last.
	for _, mb := range m.members {
		if mb.nodeID == id {
			r := mb.run()
			s.PID, s.Start = r.PID, r.Start
			s.addRun(r)
		}
	}
	s.QuorateWhenGone, s.quorumSettled = m.quorumWord(id)
	m.sets[id] = s
	m.notice("warn", "recovery-opened", id, "%s left the cluster (ring %s) while in the groupd group; recovery set opened, waiting for the groupd confchg", m.node(id), ring)
}

func (m *Machine) message(ev GroupMessage) {
	h, err := ParseHello(ev.Data)
	if err != nil {
		m.notice("warn", "bad-message", ev.NodeID, "ignored a %d-byte message from %s pid %d in the groupd group: %v", len(ev.Data), m.node(ev.NodeID), ev.PID, err)
		return
	}
	if h.NodeID != ev.NodeID {
		m.notice("warn", "bad-message", ev.NodeID, "ignored a hello from %s pid %d claiming to be node %d", m.node(ev.NodeID), ev.PID, h.NodeID)
		return
	}
	mb := m.findMember(memberKey{ev.NodeID, ev.PID})
	if mb == nil {
		m.notice("debug", "bad-message", ev.NodeID, "ignored a hello from %s pid %d, which is not in our view of the groupd group", m.node(ev.NodeID), ev.PID)
		return
	}
	wasAwaited := mb.awaited
	if at, open := m.absentSince[ev.NodeID]; open && m.cluster[ev.NodeID] && mb.born > at {
		// A run that joined since the node left has been heard: a next
		// leave starts a new absence.
		delete(m.absentSince, ev.NodeID)
	}
	if mb.awaited {
		if m.answersWait(mb, h) {
			mb.awaited = false // answered, whether or not its hello counts
		} else {
			// A live daemon, whose hello written after the latest join
			// or merge is on its way: helloWait from now, not from when
			// the wait began (a merge late in it would leave it no time),
			// but never past twice helloWait from then, so that a member
			// whose hellos never answer cannot keep us from answering.
			mb.awaitedSince = m.cfg.Clock.Now()
			if last := mb.awaitBegan.Add(helloWait); mb.awaitedSince.After(last) {
				mb.awaitedSince = last
			}
		}
	}
	if mb.stale {
		// It stays unvouched for as long as it is a member, even after its
		// set is acked. Its view of the partition is the suspect one:
		// what it distrusts does not spread through us, unless we wait
		// for its answer: a member in the group when we joined, a run
		// merging into our side while it was not quorate, or any member
		// of our side at such a merge (the recovery sets it holds are
		// not suspect, its run is), whatever made it stale.
		//
		// Or unless it merged in from a side that may have held quorum
		// while it was out: ours was not quorate at some time meanwhile
		// (quorum can move between the sides: a node rebooting into the
		// other side, a quorum device's vote), and what that side saw
		// gone then must be fenced. While ours held quorum all along,
		// the other side never did, and what it names comes from a word
		// it had not settled (its daemon may see the merge before
		// corosync's quorum notice for its own ring): taken, it would
		// fence our healthy side.
		switch {
		case m.isUs(mb.memberKey):
		case wasAwaited || (mb.reason == ReasonNodeUp && m.inquorateWhileOut(mb.nodeID)):
			m.distrust(ev, h.Distrusted)
			mb.pendingDistrust = nil
		case mb.reason == ReasonNodeUp:
			// Kept (its latest hello's word replaces an earlier one's),
			// for nodeChange to take if it turns out our side was not
			// quorate while its node was out after all.
			mb.pendingDistrust = h.Distrusted
		}
		mb.markStale(h.Start)
		m.notice("debug", "stale-hello", ev.NodeID, "%s pid %d announced itself; that does not count until it leaves and rejoins the groupd group", m.node(ev.NodeID), ev.PID)
		return
	}
	// What it distrusts (runs it saw fail or merge back, runs of its
	// pending recovery sets, runs other daemons named): taken from any
	// hello but a stale run's, even one about to turn out the run that
	// failed (extra fencing, never less).
	if !m.isUs(mb.memberKey) {
		m.distrust(ev, h.Distrusted)
	}
	if mb.distrustAny || slices.ContainsFunc(mb.distrustedStarts, h.Start.Equal) {
		m.staleByHello(mb, h.Start, "member-distrusted", "is a run another daemon distrusts (it merged back after a partition, or failed and came back as the same run); it must be fenced unless it leaves and rejoins the groupd group")
		return
	}
	if s := m.sets[ev.NodeID]; s != nil && s.State.Pending() && s.failedRun(ev.PID, h.Start, mb.reason == ReasonNodeUp) {
		// A run that failed has merged back with whatever state it held:
		// not a clean start.
		m.staleByHello(mb, h.Start, "stale-hello", "merged back into the groupd group as a run that failed; it must still be fenced")
		return
	}
	if mb.hello == nil {
		m.notice("info", "hello", ev.NodeID, "%s pid %d announced itself (groupd started %s, protocol %d)", m.node(ev.NodeID), ev.PID, h.Start.Format(time.RFC3339), h.Version)
	}
	mb.hello = &h
	mb.stale = false
}

// staleByHello marks mb stale once its hello (run start) showed it to be a
// run that must be fenced, and says so in a new hello of ours: what told
// us (our set, or a daemon that has left since) a daemon that joined
// after our last hello may not know.
func (m *Machine) staleByHello(mb *member, start time.Time, kind, why string) {
	m.notice("warn", kind, mb.nodeID, "%s pid %d %s", m.node(mb.nodeID), mb.pid, why)
	mb.markStale(start)
	if m.joined {
		m.sendHello()
	}
}

// distrust applies the runs a member's hello says its daemon distrusts:
// those of our members become stale too. This only ever takes vouching
// away, so a daemon that joined after a partition healed learns what the
// members that saw it know, whatever order the hellos come in.
func (m *Machine) distrust(from GroupMessage, runs []Run) {
	for _, r := range runs {
		k := memberKey{r.NodeID, r.PID}
		mb := m.findMember(k)
		if mb == nil || m.isUs(k) {
			continue
		}
		if !r.Start.IsZero() && mb.hello != nil && !mb.hello.Start.Equal(r.Start) {
			continue // about another run than the one we heard
		}
		if mb.hello == nil && !mb.stale {
			if r.Start.IsZero() {
				mb.distrustAny = true
				continue
			}
			// Its hello will tell whether it is that run (the same pid
			// may be a new run); unvouched for until then anyway. Our
			// hellos pass it on meanwhile.
			if !slices.ContainsFunc(mb.distrustedStarts, r.Start.Equal) {
				mb.distrustedStarts = append(mb.distrustedStarts, r.Start)
			}
			continue
		}
		if !mb.stale {
			m.notice("warn", "member-distrusted", r.NodeID, "%s pid %d is distrusted by the daemon of %s pid %d (it merged back after a partition, or failed and came back as the same run); it must be fenced unless it leaves and rejoins the groupd group", m.node(r.NodeID), r.PID, m.node(from.NodeID), from.PID)
		}
		mb.markStale(r.Start)
	}
}

// closeRejoined closes the sets of nodes that are back with a clean start:
// cluster member, group member, and a hello from a new run. Such a node
// passed the residual check on its way in, so whatever it held before is
// gone. A set still waiting for its confchg is left alone: its old run is
// still in the member list.
func (m *Machine) closeRejoined() {
	now := m.cfg.Clock.Now()
	for _, id := range m.setIDs() {
		s := m.sets[id]
		if s.State != StateWaitCman && s.State != StateWaitFencing {
			continue
		}
		// The set itself is what is being decided, so it does not count.
		if m.bypass(id, false).Allowed {
			m.closeSet(s, StateRejoined, now, "%s rejoined with a clean start; its recovery set is closed", m.node(id))
		}
	}
}

// bypass applies the bypass rule to the machine's current state, taking
// pending as whether the node has a pending recovery set.
func (m *Machine) bypass(id uint32, pending bool) BypassCheck {
	var ms []GroupMember
	awaiting := 0
	for _, mb := range m.members {
		if mb.nodeID == id {
			ms = append(ms, m.groupMemberOf(mb))
		}
		if mb.awaited {
			awaiting++
		}
	}
	return bypassRule(id, bypassView{
		phase: m.phase, clusterKnown: m.clusterKnown, joined: m.joined,
		clusterMember: m.cluster[id], members: ms, pending: pending, awaiting: awaiting,
	})
}

func (m *Machine) groupMemberOf(mb *member) GroupMember {
	gm := GroupMember{NodeID: mb.nodeID, PID: mb.pid, Name: m.name(mb.nodeID), Since: mb.since, JoinReason: mb.reason, StaleHello: mb.stale, Awaited: mb.awaited}
	if mb.hello != nil {
		gm.Hello = true
		gm.HelloVersion = mb.hello.Version
		gm.HelloStart = mb.hello.Start
	}
	return gm
}

func (m *Machine) setIDs() []uint32 {
	ids := make([]uint32, 0, len(m.sets))
	for id := range m.sets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (m *Machine) closeSet(s *RecoverySet, state SetState, now time.Time, format string, args ...any) {
	s.State = state
	s.Closed = now
	delete(m.sets, s.NodeID)
	m.closed = append(m.closed, *s)
	if over := len(m.closed) - m.cfg.History; over > 0 {
		m.closed = slices.Delete(m.closed, 0, over)
	}
	m.notice("info", "recovery-closed", s.NodeID, format, args...)
}

// heldQuorumBeforeMerge reports whether our side of a partition was
// quorate just before nodeID merged into it. Then the merging nodes were
// the ones cut off from the quorate cluster, whose dlm/gfs state nobody
// controlled. When we were not quorate, theirs may have been the side
// that could act, and their hellos name the runs of our side they saw
// fail; but a run of theirs may still be one we hold a set for, or one
// another daemon distrusts. cman's
// change for the merge may come before or after the cpg confchg: if the
// node is already a cluster member, the ring before it is the one to ask.
func (m *Machine) heldQuorumBeforeMerge(nodeID uint32) bool {
	if m.cluster[nodeID] {
		return m.quorateBefore
	}
	return m.quorate
}

// absenceBegins records that node id, a member of the cluster in m.ring,
// is out of it now: a new absence unless one is open (it flapped before
// its daemon was heard again). Called before nodeChange moves m.ring on.
func (m *Machine) absenceBegins(id uint32) {
	delete(m.backAt, id)
	if _, open := m.absentSince[id]; !open {
		m.outFrom[id] = m.ring.Seq
		m.absentSince[id] = m.births
	}
}

// maxInquorateRings bounds inquorateRings. Only an absence older than
// that many rings of ours without quorum loses its evidence, and only for
// hellos that come after.
const maxInquorateRings = 1024

// noteInquorateRing records that a notice said we were not quorate in
// ring seq.
func (m *Machine) noteInquorateRing(seq uint64) {
	i, found := slices.BinarySearch(m.inquorateRings, seq)
	if found {
		return
	}
	m.inquorateRings = slices.Insert(m.inquorateRings, i, seq)
	if len(m.inquorateRings) > maxInquorateRings {
		m.inquorateRings = slices.Delete(m.inquorateRings, 0, 1)
	}
}

// inquorateWhileOut reports whether corosync said our side was not
// quorate in a ring while nodeID was out of the cluster (until now if it
// has not come back yet): its side may then have held quorum meanwhile.
// For a node we never saw leave (we started while it was out), we cannot
// know: yes.
func (m *Machine) inquorateWhileOut(nodeID uint32) bool {
	from, seen := m.outFrom[nodeID]
	if !seen {
		return true
	}
	to, back := m.backAt[nodeID]
	if !back {
		to = math.MaxUint64
	}
	i, _ := slices.BinarySearch(m.inquorateRings, from+1)
	return i < len(m.inquorateRings) && m.inquorateRings[i] < to
}

// stop is called when Daemon.Run returns: nothing the machine holds is
// current any more, so its snapshot must not vouch for anyone.
func (m *Machine) stop() {
	m.notice("info", "phase", 0, "daemon phase %s -> %s; no longer answering for any node's membership", m.phase, PhaseStopped)
	m.phase = PhaseStopped
	m.clusterKnown = false
	m.joined = false
}

// Ack records that the fencing of nodeID was done, closing its recovery
// set. It returns the set as it was acknowledged, or ErrNoRecoverySet.
func (m *Machine) Ack(nodeID uint32) (RecoverySet, error) {
	s := m.sets[nodeID]
	if s == nil {
		return RecoverySet{}, fmt.Errorf("ack %s: %w", m.node(nodeID), ErrNoRecoverySet)
	}
	now := m.cfg.Clock.Now()
	if s.State == StateAcked {
		return s.clone(), nil
	}
	s.Acked = now
	if s.State == StateWaitCPG {
		s.State = StateAcked
		m.notice("info", "recovery-acked", nodeID, "fencing of %s acknowledged; its recovery set closes when the groupd confchg arrives", m.node(nodeID))
		return s.clone(), nil
	}
	m.closeSet(s, StateAcked, now, "fencing of %s acknowledged; recovery set closed", m.node(nodeID))
	return m.closed[len(m.closed)-1].clone(), nil
}

// KillFailed records that kill request seq, for nodeID, failed (the
// daemon runs kills off the loop and reports failures here). A set that
// has moved on since (closed, opened anew, or with a later kill) is left
// alone.
func (m *Machine) KillFailed(nodeID uint32, seq uint64, err error) {
	s := m.sets[nodeID]
	switch {
	case s == nil || !s.State.Pending() || s.killSeq < seq:
		// A set's kill sequence only grows: one below seq is a set
		// opened after the kill's.
		m.notice("warn", "kill-failed", nodeID, "could not kill %s from the cluster: %v; the recovery set it was for is no longer pending, so nothing is recorded", m.node(nodeID), err)
		return
	case s.killSeq > seq:
		m.notice("warn", "kill-failed", nodeID, "could not kill %s from the cluster: %v; a later kill request for it supersedes this one, so nothing is recorded", m.node(nodeID), err)
		return
	}
	if !s.killPending || (m.clusterKnown && !m.cluster[nodeID]) {
		// Gone from the cluster all the same (the kill may have gone
		// through before it reported failure): nothing to record.
		m.notice("info", "kill-failed", nodeID, "the kill of %s from the cluster reported failure (%v), but it has left the cluster", m.node(nodeID), err)
		return
	}
	s.KillError = err.Error()
	s.killPending = false
	if s.State == StateWaitCman {
		s.State = StateWaitFencing
	}
	m.notice("warn", "kill-failed", nodeID, "could not kill %s from the cluster: %v; it stays a cluster member and its recovery set waits for fencing", m.node(nodeID), err)
}

// lastKillSeq is the sequence number of the latest kill request.
func (m *Machine) lastKillSeq() uint64 { return m.killSeq }

// Snapshot returns a copy of the state that shares nothing with the
// machine, for use from any goroutine.
func (m *Machine) Snapshot() *Snapshot {
	s := &Snapshot{
		Time:         m.cfg.Clock.Now(),
		OurNodeID:    m.cfg.OurNodeID,
		OurName:      m.name(m.cfg.OurNodeID),
		OurPID:       m.cfg.OurPID,
		Start:        m.cfg.Start,
		Phase:        m.phase,
		ClusterKnown: m.clusterKnown,
		Quorate:      m.quorate,
		Ring:         m.ring,
		Joined:       m.joined,
	}
	for i := range m.closed {
		s.Closed = append(s.Closed, m.closed[i].clone())
	}
	s.ClusterNames = map[uint32]string{}
	for id := range m.cluster {
		s.ClusterMembers = append(s.ClusterMembers, id)
		if n := m.name(id); n != "" {
			s.ClusterNames[id] = n
		}
	}
	slices.Sort(s.ClusterMembers)
	for _, mb := range m.members {
		s.Members = append(s.Members, m.groupMemberOf(mb))
	}
	slices.SortFunc(s.Members, func(a, b GroupMember) int {
		return cmp.Or(cmp.Compare(a.NodeID, b.NodeID), cmp.Compare(a.PID, b.PID))
	})
	for _, id := range m.setIDs() {
		s.Recovery = append(s.Recovery, m.sets[id].clone())
	}
	return s
}
