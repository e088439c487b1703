package groupd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// SystemClock is the real Clock.
type SystemClock struct{}

// Now returns the wall clock time (time.Now).
func (SystemClock) Now() time.Time { return time.Now() }

// Monotonic reads CLOCK_MONOTONIC, the clock the kernel and corosync log
// against.
func (SystemClock) Monotonic() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// ErrInputClosed is returned by Run when its event channel is closed: the
// adapter lost corosync, and the state must not be served as current.
var ErrInputClosed = errors.New("groupd: event input closed")

// ErrStopped is returned by Ack and Watch once Run has returned.
var ErrStopped = errors.New("groupd: daemon stopped")

// effectGrace is how long Run, on its way out, waits for a kill or hello
// already running in corosync before it leaves it to finish on its own.
var effectGrace = 500 * time.Millisecond

// WatchBuffer is how many notices a watcher may fall behind before it is
// dropped; a slow client must not hold the state loop.
const WatchBuffer = 256

// Daemon runs a Machine in the goroutine that calls Run. Other goroutines
// read Snapshot (never blocked by the loop) and send Ack and Watch requests
// that the loop answers between events.
type Daemon struct {
	m       *Machine
	log     Logger
	snap    atomic.Pointer[Snapshot]
	acks    chan ackRequest
	watches chan watchRequest
	// killsMu guards kills, the failed kills the effect goroutine hands
	// to the loop (however many: each one matters to its recovery set),
	// and loopGone, set once Run no longer takes them: a failure after
	// that is logged by the effect goroutine itself. killsWake (capacity
	// 1) tells the loop there are some.
	killsMu   sync.Mutex
	kills     []killFailure
	loopGone  bool
	killsWake chan struct{}
	done      chan struct{}
	effects   *effectQueue

	// Owned by the Run goroutine.
	watchers map[*watcher]bool
}

type killFailure struct {
	nodeID uint32
	seq    uint64
	err    error
}

type ackRequest struct {
	nodeID uint32
	reply  chan ackReply
}

type ackReply struct {
	set RecoverySet
	err error
}

type watchRequest struct {
	w     *watcher
	reply chan struct{}
}

type watcher struct {
	ctx context.Context
	ch  chan Notice
}

// NewDaemon makes a daemon around a new Machine; it returns an error when
// cfg lacks Kill, Hello or Clock. cfg.Kill and cfg.Hello are called from a
// separate goroutine in the order the machine asked, so a corosync call
// that retries does not hold up events or queries; their errors are logged
// there. A call still running when Run returns is left to finish on that
// goroutine. cfg.Notify is taken over for watchers.
func NewDaemon(cfg Config) (*Daemon, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	d := &Daemon{
		log:       cfg.Log,
		acks:      make(chan ackRequest),
		killsWake: make(chan struct{}, 1),
		watches:   make(chan watchRequest),
		done:      make(chan struct{}),
		watchers:  map[*watcher]bool{},
	}
	d.effects = newEffectQueue()
	kill, hello := cfg.Kill, cfg.Hello
	cfg.Kill = asyncKiller{d, kill}
	cfg.Hello = asyncHello{d, hello}
	cfg.Notify = d.fanOut
	m, err := NewMachine(cfg)
	if err != nil {
		return nil, err
	}
	d.m = m
	d.snap.Store(d.m.Snapshot())
	return d, nil
}

// Snapshot returns the latest published state. Safe from any goroutine; it
// never waits for the loop.
func (d *Daemon) Snapshot() *Snapshot { return d.snap.Load() }

// Run owns the state until ctx ends (returns nil) or events is closed
// (returns ErrInputClosed). Before it returns it publishes a last snapshot
// in PhaseStopped that claims no cluster or group view, so no query is
// answered from state that is no longer kept up to date. Side effects
// still queued are dropped: the daemon is going away and its node will be
// handled by others. One already running in corosync gets effectGrace to
// finish; Run does not wait longer for it.
func (d *Daemon) Run(ctx context.Context, events <-chan Event) error {
	defer close(d.done)
	effectsDone := make(chan struct{})
	go func() {
		defer close(effectsDone)
		d.effects.run(ctx)
	}()
	defer func() {
		d.killsMu.Lock()
		d.loopGone = true
		late := d.kills // failed before loopGone was set
		d.kills = nil
		d.killsMu.Unlock()
		d.m.stop()
		d.snap.Store(d.m.Snapshot())
		d.effects.stop()
		t := time.NewTimer(effectGrace)
		defer t.Stop()
		select {
		case <-effectsDone:
		case <-t.C:
			if d.log != nil {
				d.log.Warnf("the daemon stops without waiting for %s, which is still running in corosync after %s", d.effects.current(), effectGrace)
			}
		}
		for _, f := range late {
			d.logKillFailure(f)
		}
		for w := range d.watchers {
			close(w.ch)
		}
	}()
	// A wait for members' hellos (those in the group before us, and those
	// a merge into our inquorate side awaits) ends on a timer
	// (Machine.HelloDeadline).
	var helloTimer *time.Timer
	var helloDeadline time.Time
	defer func() {
		if helloTimer != nil {
			helloTimer.Stop()
		}
	}()
	for {
		var helloC <-chan time.Time
		if at, ok := d.m.HelloDeadline(); ok {
			if helloTimer == nil || !at.Equal(helloDeadline) {
				if helloTimer != nil {
					helloTimer.Stop()
				}
				helloTimer, helloDeadline = time.NewTimer(at.Sub(d.m.cfg.Clock.Now())), at
			}
			helloC = helloTimer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-helloC:
			helloTimer = nil
			d.m.Handle(HelloWaitOver{})
		case ev, ok := <-events:
			if !ok {
				return ErrInputClosed
			}
			d.m.Handle(ev)
		case r := <-d.acks:
			set, err := d.m.Ack(r.nodeID)
			// Publish first, so the acker's next query sees its ack.
			d.snap.Store(d.m.Snapshot())
			r.reply <- ackReply{set, err}
		case <-d.killsWake:
			d.killsMu.Lock()
			failed := d.kills
			d.kills = nil
			d.killsMu.Unlock()
			for _, f := range failed {
				d.m.KillFailed(f.nodeID, f.seq, f.err)
			}
		case r := <-d.watches:
			d.watchers[r.w] = true
			close(r.reply)
		}
		d.pruneWatchers()
		d.snap.Store(d.m.Snapshot())
	}
}

// Ack acknowledges the fencing of nodeID through the loop.
func (d *Daemon) Ack(ctx context.Context, nodeID uint32) (RecoverySet, error) {
	r := ackRequest{nodeID: nodeID, reply: make(chan ackReply, 1)}
	select {
	case d.acks <- r:
	case <-d.done:
		return RecoverySet{}, ErrStopped
	case <-ctx.Done():
		return RecoverySet{}, ctx.Err()
	}
	rep := <-r.reply
	return rep.set, rep.err
}

// Watch streams notices from now on until ctx ends, the daemon stops, or
// the watcher falls WatchBuffer notices behind; then the channel is closed.
func (d *Daemon) Watch(ctx context.Context) (<-chan Notice, error) {
	w := &watcher{ctx: ctx, ch: make(chan Notice, WatchBuffer)}
	r := watchRequest{w: w, reply: make(chan struct{})}
	select {
	case d.watches <- r:
	case <-d.done:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-r.reply
	return w.ch, nil
}

// fanOut runs in the loop (as the machine's Notify).
func (d *Daemon) fanOut(n Notice) {
	for w := range d.watchers {
		if w.ctx.Err() != nil {
			continue
		}
		select {
		case w.ch <- n:
		default:
			if d.log != nil {
				d.log.Warnf("dropped a watcher that fell %d notices behind", WatchBuffer)
			}
			delete(d.watchers, w)
			close(w.ch)
		}
	}
}

func (d *Daemon) pruneWatchers() {
	for w := range d.watchers {
		if w.ctx.Err() != nil {
			delete(d.watchers, w)
			close(w.ch)
		}
	}
}

type asyncKiller struct {
	d *Daemon
	k Killer
}

// KillNode is called by the machine, in the loop, right after it numbered
// the request; a failure goes back to the loop (Machine.KillFailed).
func (a asyncKiller) KillNode(nodeID uint32, reason string) error {
	seq := a.d.m.lastKillSeq()
	a.d.effects.push(fmt.Sprintf("the kill of node %d from the cluster", nodeID), func() {
		err := a.k.KillNode(nodeID, reason)
		if err == nil {
			return
		}
		f := killFailure{nodeID, seq, err}
		a.d.killsMu.Lock()
		gone := a.d.loopGone
		if !gone {
			a.d.kills = append(a.d.kills, f)
		}
		a.d.killsMu.Unlock()
		if gone {
			a.d.logKillFailure(f)
			return
		}
		select {
		case a.d.killsWake <- struct{}{}:
		default: // a wake-up is pending already
		}
	})
	return nil
}

// logKillFailure logs a failed kill that the state loop will not see.
func (d *Daemon) logKillFailure(f killFailure) {
	if d.log != nil {
		d.log.Warnf("could not kill node %d from the cluster: %v; it still needs fencing", f.nodeID, f.err)
	}
}

type asyncHello struct {
	d *Daemon
	h HelloSender
}

func (a asyncHello) SendHello(data []byte) error {
	a.d.effects.push("our hello to the groupd group", func() {
		if err := a.h.SendHello(data); err != nil && a.d.log != nil {
			a.d.log.Warnf("could not send our hello to the groupd group: %v; other nodes will not bypass fencing us until we do", err)
		}
	})
	return nil
}

// effectQueue runs side effects in order on its own goroutine. Its mutex
// guards only the queue, never daemon state; pushing never blocks the loop.
type effectQueue struct {
	mu      sync.Mutex
	q       []effect
	running string // what is running now, for the log; "" if nothing
	stopped bool
	wake    chan struct{}
}

type effect struct {
	what string
	f    func()
}

func newEffectQueue() *effectQueue {
	return &effectQueue{wake: make(chan struct{}, 1)}
}

func (e *effectQueue) push(what string, f func()) {
	e.mu.Lock()
	if !e.stopped {
		e.q = append(e.q, effect{what, f})
	}
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *effectQueue) stop() {
	e.mu.Lock()
	e.stopped = true
	e.q = nil
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// current says what is running now.
func (e *effectQueue) current() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running == "" {
		return "a side effect"
	}
	return e.running
}

func (e *effectQueue) run(ctx context.Context) {
	for {
		e.mu.Lock()
		if e.stopped {
			e.mu.Unlock()
			return
		}
		var next effect
		if len(e.q) > 0 {
			next = e.q[0]
			e.q = e.q[1:]
		}
		e.running = next.what
		e.mu.Unlock()
		if next.f != nil {
			next.f()
			continue
		}
		select {
		case <-e.wake:
		case <-ctx.Done():
			return
		}
	}
}
