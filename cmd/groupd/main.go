// Command groupd is the groupd daemon.
//
// At startup it connects to corosync, checks the node for dlm/gfs kernel
// state left behind by a cluster stack that went away, applies the residual
// policy if it finds any, and otherwise joins the groupd process group and
// announces itself. Only then does it tell systemd it is ready (READY=1).
// While it runs it tracks the group's members and the recovery sets of
// failed nodes and answers group_tool on a unix socket.
//
// The one exception to "ready means joined" is --residual-policy stay: with
// residual state found, groupd stays a cluster member for quorum but never
// joins the group, so other nodes fence the node. It still reports READY=1,
// with a STATUS= line saying it stays out, because otherwise systemd would
// time the start out and restart it; it logs loudly that it stays out.
// Units ordered after groupd therefore start; dlm.service's drop-in
// (dlm.service.d/groupd.conf) asks `group_tool ready`, which says no.
//
// The hello that announces us is retried a few times with back-off; if it
// still cannot be sent, groupd leaves the group and exits 1 without
// reporting ready.
//
// Startup can take --quorum-wait plus the join and the hello, or, with
// residual state, the self-fence command, bounded by --fence-timeout
// (default 5m). The unit file's TimeoutStartSec covers the defaults; groupd
// also asks systemd for more time (EXTEND_TIMEOUT_USEC) before each long
// wait, so larger values work under systemd 236 and later.
//
// SIGTERM, SIGINT and SIGHUP (a terminal or ssh session ending) all leave
// the group cleanly, so other nodes see reason leave and do not fence us. A
// second signal forces the exit; during a self-fence the first one is
// ignored (groupd asks systemd for the fence's remaining time to stop) and
// the second abandons the fence command.
//
// Exit status: 0 after a clean shutdown or --help; 1 when startup failed,
// the hello could not be sent, corosync went away, or a second signal
// forced the exit; 2 for bad options; 3 when residual state was found
// (policies fence and kick; a self-fence abandoned by a second signal too)
// or sysfs could not be read for the check, which restarting cannot fix
// (the unit file's RestartPreventExitStatus).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/groupd-go/groupd/cman"
	"github.com/groupd-go/groupd/cpg"
	"github.com/groupd-go/groupd/internal/groupd"
	"github.com/groupd-go/groupd/internal/logring"
	"github.com/groupd-go/groupd/internal/query"
	"github.com/groupd-go/groupd/internal/residual"
	"github.com/groupd-go/groupd/internal/selffence"
)

const (
	// leaveTimeout bounds a clean shutdown: the cpg leave and waiting to
	// see it delivered.
	leaveTimeout = 5 * time.Second
	// helloTimeout bounds one hello multicast, so a corosync in flow
	// control cannot hold up the kills queued behind it.
	helloTimeout = 10 * time.Second
	// Our first hello, which readiness waits for, is tried helloAttempts
	// times, helloBackoff apart at first and doubling.
	helloAttempts = 4
	helloBackoff  = 500 * time.Millisecond
	// readyWait bounds the wait from the join to our first hello sent and
	// come back to us (the attempts above and the join confchg that
	// triggers them) and to the hellos of the members we await, which
	// may take twice groupd.HelloWait.
	readyWait = max(helloAttempts*helloTimeout+15*helloBackoff, 2*groupd.HelloWait) + 15*time.Second
	// stayReminder is how often a node that stays out says so again.
	stayReminder = 10 * time.Minute
)

// Exit statuses; see the package doc.
const (
	exitFailed   = 1
	exitUsage    = 2
	exitResidual = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// The usage goes to stdout when asked for, with parse errors otherwise.
	var parseOut bytes.Buffer
	o, err := parseOptions(args, &parseOut)
	if errors.Is(err, flag.ErrHelp) {
		stdout.Write(parseOut.Bytes())
		return 0
	}
	stderr.Write(parseOut.Bytes())
	if err != nil {
		fmt.Fprintf(stderr, "groupd: %v\n", err)
		return exitUsage
	}
	ring := logring.New(0)
	log, err := newLogger(o, stderr, ring)
	if err != nil {
		fmt.Fprintf(stderr, "groupd: %v\n", err)
		return exitFailed
	}
	d := &daemon{o: o, log: log, ring: ring, start: time.Now(), pid: uint32(os.Getpid())}

	// The first signal starts a clean shutdown; a second one ends the
	// process at once, whatever it is waiting for.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// SIGHUP is there because a session that ends (ssh, a terminal) sends
	// it: dying on it without a leave would get the node killed by peers.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		s := <-sigs
		// Under stopMu, so that the self-fence either sees this stop
		// before it begins or is seen here as begun; logged before the
		// cancel, which may let the daemon exit at once.
		d.stopMu.Lock()
		if d.fencing.Load() {
			log.Warnf("received %s while %s is fencing itself: the self-fence command runs to the end; send it again to abandon the fence and exit at once", s, d.who())
			// Under systemd, stopping now has TimeoutStopSec, after
			// which the whole unit, fence command included, is killed.
			d.extendTimeout(time.Until(time.Unix(0, d.fenceDeadline.Load())) + time.Minute)
		} else {
			log.Infof("received %s: shutting down cleanly; send it again to exit at once", s)
		}
		cancel()
		d.stopMu.Unlock()
		s = <-sigs
		if d.fencing.Load() {
			log.Errorf("received %s again: abandoning the self-fence of %s and exiting at once; the fence command is not waited for (outside systemd it may still be running and act), so other nodes must make sure %s is fenced", s, d.who(), d.who())
			// The residual state is still there: a restart would only
			// kill the node from the cluster and start fencing again.
			os.Exit(exitResidual)
		}
		if d.toBeRemoved.Load() {
			log.Errorf("received %s again: exiting at once; %s holds residual dlm/gfs state and was not fenced by itself, so other nodes must make sure it is", s, d.who())
			os.Exit(exitResidual)
		}
		log.Errorf("received %s again: exiting at once, without waiting for a clean leave", s)
		os.Exit(exitFailed)
	}()
	return d.run(ctx)
}

// daemon is one run of groupd, from startup to exit.
type daemon struct {
	o     *options
	log   *logrus.Logger
	ring  *logring.Ring
	start time.Time
	pid   uint32

	ourID   uint32
	ourName string

	// selfKilled: we asked corosync to remove our own node, so its going
	// away is expected.
	selfKilled atomic.Bool
	// joining: the join of the groupd group has begun, so other members
	// may have counted on our membership.
	joining atomic.Bool
	// stayingOut: residual state was found and the policy is stay.
	stayingOut atomic.Bool
	// fencing: the self-fence is under way, to end by fenceDeadline (unix
	// nanoseconds); read by the signal handler. stopMu makes the handler's
	// look at it and its cancel one step, and the self-fence's check for
	// a stop and setting it another.
	stopMu        sync.Mutex
	fencing       atomic.Bool
	fenceDeadline atomic.Int64
	// toBeRemoved: residual state was found under a policy that removes
	// the node (fence, kick), from then on until the exit: a restart
	// would do it all again, so groupd exits 3 however it stops.
	toBeRemoved atomic.Bool
}

// who formats our node for log lines.
func (d *daemon) who() string { return fmt.Sprintf("node %d (%s)", d.ourID, d.ourName) }

func (d *daemon) run(ctx context.Context) int {
	o, log := d.o, d.log
	log.Infof("groupd starting, pid %d", d.pid)

	// The lock comes first: a groupd already running here holds dlm/gfs
	// state that would look residual, and must not make this second one
	// fence the node. It is let go last, after our corosync connections
	// are closed, so that a groupd started meanwhile cannot join while
	// this one's member is still in the group.
	lock, err := lockInstance(o.lockFile)
	if err != nil {
		log.Errorf("%v; groupd did not start", err)
		return exitFailed
	}
	defer lock.Close()

	// 1. corosync, through cman: who we are.
	cl, err := cman.Open()
	if err != nil {
		log.Errorf("cannot connect to corosync: %v; groupd did not start", err)
		return exitFailed
	}
	defer closeWithin(log, "the cman connection", cl.Close)
	d.ourID = cl.NodeID()
	local, err := cl.LocalNode()
	if err != nil {
		log.Errorf("cannot read our node's name from corosync: %v; groupd did not start", err)
		return exitFailed
	}
	d.ourName = local.Name
	quorate, err := cl.Quorate()
	if err != nil {
		log.Errorf("cannot read quorum from corosync: %v; groupd did not start", err)
		return exitFailed
	}
	log.Infof("connected to corosync as %s; the cluster is %s", d.who(), quorateWord(quorate))

	names := &nameCache{}
	refresh := func() {
		nodes, err := cl.Nodes()
		if err != nil {
			log.Warnf("cannot read corosync's node list, so node names may be missing from logs and queries: %v", err)
			return
		}
		names.set(nodes)
	}
	refresh()

	h, err := cpg.New()
	if err != nil {
		log.Errorf("cannot connect to corosync's process groups (cpg): %v; groupd did not start", err)
		return exitFailed
	}
	defer closeWithin(log, "the cpg connection", h.Close)

	// effects is the context of the daemon's own calls into corosync
	// (hellos, kills); ended last, on the way out.
	effects, endEffects := context.WithCancel(context.Background())
	defer endEffects()
	hello := newHelloSender(effects, h, log)
	gd, err := groupd.NewDaemon(groupd.Config{
		OurNodeID:        d.ourID,
		OurPID:           d.pid,
		Start:            d.start,
		NoKillOnProcDown: o.noKillOnProcDown,
		Kill:             killer{cl, effects},
		Hello:            hello,
		Clock:            groupd.SystemClock{},
		Names:            names,
		Log:              log,
	})
	if err != nil {
		log.Errorf("%v; groupd did not start", err)
		return exitFailed
	}

	// The socket comes before the residual scan, as the lock does.
	srv, err := query.Listen(query.Config{Path: o.socket, Group: o.socketGroup, Log: log}, gd.QueryHandler(d.ring.Lines))
	if err != nil {
		log.Errorf("cannot open the query socket: %v; groupd did not start", err)
		return exitFailed
	}
	defer srv.Close()

	// lost ends everything when corosync goes away. The socket is closed
	// first so nobody is answered from a membership that is no longer true.
	lostCh := make(chan error, 1)
	var lostOnce sync.Once
	lost := func(err error) {
		lostOnce.Do(func() {
			srv.Close()
			switch {
			case d.selfKilled.Load():
				// Whether because of our request or not, it was asked for.
				log.Infof("our corosync went away after we asked it to remove our node from the cluster: %v", err)
			case d.stayingOut.Load():
				log.Errorf("lost corosync: %v; %s holds residual dlm/gfs state and never joined the %q group: other nodes must fence it; groupd exits", err, d.who(), o.group)
			case !d.joining.Load():
				log.Errorf("lost corosync before joining the %q group: %v; groupd exits", o.group, err)
			default:
				log.Errorf("lost corosync: %v; exiting so that no stale membership is served; %s must be fenced before it rejoins", err, d.who())
			}
			lostCh <- err
		})
	}

	// runCtx outlives the first signal, so the machine still sees our
	// leave while we shut down.
	runCtx, stopRun := context.WithCancel(context.Background())
	// Names are reloaded off the event path, coalesced: a corosync that
	// freezes right after a membership change must hold up neither the
	// events behind it nor a shutdown. Not waited for on the way out (it
	// may be inside that frozen corosync).
	namesWanted := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-namesWanted:
				refresh()
			case <-runCtx.Done():
				return
			}
		}
	}()
	ad := newAdapter(h.Events(), cl.Events(), d.ourID, d.pid, quorate)
	ad.log, ad.lost = log, lost
	ad.refreshNames = func() {
		select {
		case namesWanted <- struct{}{}:
		default: // a reload is already due
		}
	}
	var wg sync.WaitGroup
	loopDone := make(chan struct{})
	defer func() {
		stopRun()
		// The loop gives a kill or hello already in corosync a short
		// grace before it returns; only then are they cut off, so that
		// one stuck in flow control does not hold up the exit.
		<-loopDone
		endEffects()
		wg.Wait()
	}()
	wg.Add(3)
	go func() { defer wg.Done(); ad.run(runCtx) }()
	go func() {
		defer wg.Done()
		defer close(loopDone)
		if err := gd.Run(runCtx, ad.out); err != nil && !errors.Is(err, groupd.ErrInputClosed) {
			log.Errorf("the daemon state loop stopped: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := srv.Serve(runCtx); err != nil {
			log.Errorf("the query socket stopped serving: %v", err)
		}
	}()
	log.Infof("answering queries on %s", o.socket)

	// 2. The residual check.
	tmpl, err := selffence.ParseTemplate(o.fenceCommand)
	if err != nil {
		log.Errorf("%v; groupd did not start", err)
		return exitFailed
	}
	entries, err := residual.Scan(o.sysfsRoot)
	for _, e := range entries {
		log.Warnf("found uncontrolled kernel state on %s: %s", d.who(), e)
	}
	switch {
	case err != nil && len(entries) == 0:
		log.Errorf("refusing to start: %v. groupd never joins the groupd group while it cannot tell whether %s holds dlm/gfs state from before; fix the permissions or the --sysfs-root", err, d.who())
		return exitResidual
	case err != nil:
		// What was found is reason enough for the policy.
		log.Errorf("the residual scan did not finish: %v; the state found above is acted on all the same", err)
	}
	cmdErr := tmpl.Check()
	if len(entries) > 0 {
		return d.residualFound(ctx, entries, cl, tmpl, cmdErr, ad, lostCh)
	}
	log.Infof("no residual dlm/gfs kernel state under %s", o.sysfsRoot)
	if o.policy == residual.PolicyFence && cmdErr != nil {
		log.Warnf("the self-fence command %s cannot be run: %v; should residual state ever be found at startup, %s will be removed from the cluster but cannot fence itself", tmpl, cmdErr, d.who())
	}

	// 3. Join, once the cluster is quorate or the wait is over.
	d.extendTimeout(o.quorumWait + leaveTimeout + readyWait)
	if code, ok := d.awaitQuorum(ctx, ad, lostCh); !ok {
		return code
	}
	if ctx.Err() != nil {
		log.Infof("stopped before joining the groupd group; exiting")
		return 0
	}
	ad.setPhase(ctx, groupd.PhaseJoining)
	log.Infof("joining the process group %q", o.group)
	d.joining.Store(true)
	if err := h.Join(ctx, o.group); err != nil {
		if ctx.Err() != nil {
			log.Infof("stopped before joining the groupd group; exiting")
			return 0
		}
		log.Errorf("cannot join the process group %q: %v; groupd did not start", o.group, err)
		return exitFailed
	}
	// code is the exit status after the leave: 0, unless we leave because
	// we could not announce ourselves.
	code := 0
	notReady := time.NewTimer(readyWait)
	defer notReady.Stop()
	select {
	case <-hello.sent:
		// Sent is not yet announced: our hello counts, for us as for every
		// member, once it has come back through the group. Until then
		// we do not vouch for our own node, and group_tool ready, which
		// dlm.service runs as soon as we report READY=1, would say no.
		switch waitVouched(ctx, func() bool { return announced(gd.Snapshot(), d.ourID, d.pid) }, notReady.C, lostCh) {
		case vouchedYes:
			d.notify(fmt.Sprintf("READY=1\nSTATUS=%s is in the %s group", d.who(), o.group))
			log.Infof("groupd is ready: %s pid %d joined the %q group and announced itself", d.who(), d.pid, o.group)
			select {
			case <-ctx.Done():
			case <-lostCh:
				return exitFailed
			}
		case vouchedTimeout:
			log.Errorf("%s sent its hello to the %q group but did not see it come back within %s, so it cannot vouch for itself; it leaves the group and groupd exits without reporting ready", d.who(), o.group, readyWait)
			code = exitFailed
		case vouchedLost:
			return exitFailed
		case vouchedStopped:
		}
	case <-hello.failed:
		// Staying in the group unannounced would make every node fence
		// this one at its next failure; leaving cleanly does not.
		log.Errorf("could not send our hello to the %q group after %d attempts: %v; %s leaves the group and groupd exits without reporting ready", o.group, helloAttempts, hello.err, d.who())
		code = exitFailed
	case <-notReady.C:
		log.Errorf("%s joined the %q group but could not announce itself within %s; it leaves the group and groupd exits without reporting ready", d.who(), o.group, readyWait)
		code = exitFailed
	case <-ctx.Done():
	case <-lostCh:
		return exitFailed
	}

	// Shutdown after a signal.
	d.notify("STOPPING=1")
	ad.setPhase(runCtx, groupd.PhaseLeaving)
	lctx, cancelLeave := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancelLeave()
	if err := leaveWithin(lctx, h); err != nil {
		srv.Close()
		log.Errorf("could not leave the %q group cleanly: %v; other nodes may see %s fail and fence it", o.group, err, d.who())
		return exitFailed
	}
	// Closing the handle before corosync delivered the leave could still
	// look like a failure to the others.
	select {
	case <-ad.left:
	case <-lctx.Done():
		srv.Close()
		log.Errorf("did not see our own leave of the %q group within %s; other nodes may see %s fail", o.group, leaveTimeout, d.who())
		return exitFailed
	case <-lostCh:
		return exitFailed
	}
	srv.Close()
	log.Infof("%s pid %d left the %q group cleanly; groupd exits", d.who(), d.pid, o.group)
	return code
}

// awaitQuorum waits, up to --quorum-wait, for the cluster to be quorate
// before the join, so that nodes starting together join one group rather
// than merging groups formed apart. Without quorum by then it joins
// anyway: a node alone must still be able to take part in fencing the
// others. It returns false, with the exit status, when groupd should stop.
func (d *daemon) awaitQuorum(ctx context.Context, ad *adapter, lostCh <-chan error) (int, bool) {
	select {
	case <-ad.quorate:
		return 0, true
	default:
	}
	if d.o.quorumWait <= 0 {
		d.log.Infof("the cluster is not quorate; joining at once (--quorum-wait 0)")
		return 0, true
	}
	d.log.Infof("the cluster is not quorate; waiting up to %s for quorum before joining the %q group", d.o.quorumWait, d.o.group)
	t := time.NewTimer(d.o.quorumWait)
	defer t.Stop()
	select {
	case <-ad.quorate:
		d.log.Infof("the cluster is quorate")
		return 0, true
	case <-t.C:
		d.log.Warnf("the cluster is still not quorate after %s; %s joins the %q group anyway", d.o.quorumWait, d.who(), d.o.group)
		return 0, true
	case <-ctx.Done():
		d.log.Infof("stopped before joining the groupd group; exiting")
		return 0, false
	case <-lostCh:
		return exitFailed, false
	}
}

// announced reports whether our own groupd run (node id, pid) is a member
// of the group whose hello counts, while the daemon runs in the group, and
// the daemon waits for no hello of a member that was in the group before
// it (until then it can tell about no node, ours included).
func announced(s *groupd.Snapshot, id, pid uint32) bool {
	if !s.Joined || s.Phase == groupd.PhaseStopped {
		return false
	}
	ours := false
	for _, m := range s.Members {
		if m.Awaited {
			return false
		}
		if m.NodeID == id && m.PID == pid {
			ours = m.Hello
		}
	}
	return ours
}

// How waitVouched ended.
const (
	vouchedYes = iota
	vouchedTimeout
	vouchedLost
	vouchedStopped
)

// vouchPoll is how often waitVouched looks at the daemon's state: for the
// moments between our hello leaving and coming back, at startup only.
const vouchPoll = 10 * time.Millisecond

// waitVouched waits until vouched says our hello has come back and counts
// (then the daemon vouches for our node, unless something is wrong with
// it), or until timeout fires, corosync is lost, or ctx ends.
func waitVouched(ctx context.Context, vouched func() bool, timeout <-chan time.Time, lost <-chan error) int {
	tick := time.NewTicker(vouchPoll)
	defer tick.Stop()
	for {
		if ctx.Err() != nil {
			return vouchedStopped // a signal wins over a hello that just came back
		}
		if vouched() {
			return vouchedYes
		}
		select {
		case <-tick.C:
		case <-timeout:
			if ctx.Err() == nil && vouched() {
				return vouchedYes
			}
			return vouchedTimeout
		case <-lost:
			return vouchedLost
		case <-ctx.Done():
		}
	}
}

// residualFound applies the residual policy. Under fence and kick it
// returns the exit status at once; under stay it keeps the daemon running
// outside the group until a signal.
func (d *daemon) residualFound(ctx context.Context, entries []residual.Entry, cl *cman.Cluster, tmpl selffence.Template, cmdErr error, ad *adapter, lostCh <-chan error) int {
	o, log := d.o, d.log
	log.Errorf("%s holds %d uncontrolled dlm/gfs kernel instance(s) from a cluster stack that went away; it must be reset before it may join the groupd group (residual policy %s)", d.who(), len(entries), o.policy)

	if o.policy != residual.PolicyStay {
		d.toBeRemoved.Store(true)
	}
	if o.policy == residual.PolicyStay {
		d.stayingOut.Store(true)
		ad.setPhase(ctx, groupd.PhaseStayingOut)
		stay := fmt.Sprintf("%s stays a cluster member for quorum but will NEVER join the groupd group: other nodes must fence it; reboot it to clear the residual state", d.who())
		log.Errorf("%s", stay)
		// Without READY=1 systemd would time the start out and restart
		// us, pulling the node through the check again and again.
		log.Warnf("telling systemd groupd is ready although %s is NOT in the groupd group (residual policy stay); see STATUS in systemctl status groupd", d.who())
		d.notify(fmt.Sprintf("READY=1\nSTATUS=residual dlm/gfs state: %s stays OUT of the groupd group (policy stay); other nodes must fence it", d.who()))
		tick := time.NewTicker(stayReminder)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				log.Errorf("still: %s", stay)
			case <-ctx.Done():
				d.notify("STOPPING=1")
				log.Infof("%s exits; it never joined the groupd group", d.who())
				return 0
			case <-lostCh:
				return exitFailed
			}
		}
	}

	if o.policy == residual.PolicyFence && cmdErr != nil {
		log.Errorf("cannot fence %s: the self-fence command %s cannot be run: %v; removing the node from the cluster anyway so that other nodes fence it", d.who(), tmpl, cmdErr)
	}
	// The fence command runs to the end even after a first signal: a node
	// half way through fencing itself is worse than one that finished.
	fctx, cancel := context.WithTimeout(context.Background(), o.fenceTimeout)
	defer cancel()
	d.extendTimeout(o.fenceTimeout + time.Minute)
	d.fenceDeadline.Store(time.Now().Add(o.fenceTimeout).UnixNano())
	d.stopMu.Lock()
	stopped := ctx.Err() != nil
	d.fencing.Store(!stopped)
	d.stopMu.Unlock()
	defer d.fencing.Store(false)
	if stopped {
		// Asked to stop during startup, before the kill began: the node
		// stays as it is (out of the group: other nodes fence it when
		// they must), and groupd does what it was asked.
		log.Errorf("a stop was requested before %s began removing itself from the cluster: it is neither removed nor fenced, and it holds residual dlm/gfs state, so other nodes must fence it", d.who())
		return exitResidual
	}
	d.selfKilled.Store(true)
	log.Warnf("removing %s from the cluster (corosync kill of our own node)", d.who())
	out := selffence.Execute(fctx, o.policy, killer{cl, fctx}, tmpl, d.ourName, d.ourID)
	if out.KillErr != nil {
		log.Errorf("%v; other nodes may not see this node fail", out.KillErr)
	} else if out.Killed {
		log.Warnf("%s was removed from the cluster", d.who())
	}
	if out.Ran {
		r := out.Result
		if len(r.Output) > 0 {
			log.Warnf("self-fence command output (%s):\n%s", tmpl, r.Output)
		}
		if out.CmdErr != nil {
			log.Errorf("the self-fence command failed (exit status %d, after %s): %v; %s must be fenced by other nodes", r.ExitCode, r.Duration.Round(time.Millisecond), out.CmdErr, d.who())
		} else {
			log.Warnf("the self-fence command %s exited with status %d after %s", tmpl, r.ExitCode, r.Duration.Round(time.Millisecond))
		}
	}
	log.Errorf("groupd exits without joining the groupd group: %s holds residual dlm/gfs state", d.who())
	return exitResidual
}

func (d *daemon) notify(state string) {
	if ok, err := sdNotify(state); err != nil {
		d.log.Warnf("%v", err)
	} else if ok {
		d.log.Debugf("told systemd %q", state)
	}
}

// extendTimeout asks systemd for at least wait more time for the job in
// progress, before a wait that may be longer than TimeoutStartSec (or,
// once stopping, TimeoutStopSec) allows (systemd 236 and later; older
// ones ignore it).
func (d *daemon) extendTimeout(wait time.Duration) {
	d.notify(fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", max(wait, time.Second).Microseconds()))
}

func quorateWord(q bool) string {
	if q {
		return "quorate"
	}
	return "not quorate"
}

// closeTimeout bounds the wait for a corosync connection to close on the
// way out: a call parked inside a stopped corosync holds the close up, and
// the exit releases the connection anyway.
const closeTimeout = 2 * time.Second

// closeWithin runs close, waiting for it at most closeTimeout.
func closeWithin(log *logrus.Logger, what string, close func() error) {
	done := make(chan error, 1)
	go func() { done <- close() }()
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			log.Debugf("closing %s: %v", what, err)
		}
	case <-t.C:
		log.Warnf("%s did not close within %s (a call is still waiting inside corosync); exiting without it", what, closeTimeout)
	}
}

// leaveWithin leaves the group, giving up when ctx ends even if cpg_leave
// itself is still waiting inside a stopped corosync (its IPC has no
// timeout).
func leaveWithin(ctx context.Context, h *cpg.Handle) error {
	done := make(chan error, 1)
	go func() { done <- h.Leave(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		select {
		case err := <-done: // answered just as time ran out
			return err
		default:
		}
		return fmt.Errorf("corosync did not answer the leave: %w", ctx.Err())
	}
}

// killTimeout bounds one kill of a node from the cluster: corosync answers
// "try again" while it syncs a new ring, which takes a second or two. Kills
// and hellos share the daemon's effect queue, so a kill may hold a hello up
// for this long.
const killTimeout = 10 * time.Second

// killer removes nodes from the cluster for the daemon and the self-fence:
// cman's KillNode, retried while corosync says try again, for at most
// killTimeout and never past ctx.
type killer struct {
	cl  *cman.Cluster
	ctx context.Context
}

func (k killer) KillNode(nodeID uint32, reason string) error {
	ctx, cancel := context.WithTimeout(k.ctx, killTimeout)
	defer cancel()
	// A request corosync has taken is not bounded by ctx (its IPC has no
	// timeout): against a frozen corosync, stop waiting for the answer,
	// and leave the call to return whenever corosync does.
	done := make(chan error, 1)
	go func() { done <- k.cl.KillNode(ctx, nodeID, reason) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("kill node %d: corosync did not answer within %s: %w", nodeID, killTimeout, ctx.Err())
	}
}

// multicaster is the part of *cpg.Handle the hello needs.
type multicaster interface {
	Multicast(ctx context.Context, g cpg.Guarantee, bufs ...[]byte) error
}

// helloSender multicasts our hello and notes the first one that got out,
// which is when the daemon is ready. Until then a failed hello is tried
// again, with back-off; if the first one cannot be sent at all, failed is
// closed and err says why. A later hello (to nodes that joined after us)
// is tried once, so that effects queued behind it do not wait; if that
// fails, it is tried again in the background until one gets out or the
// daemon stops: a node that never hears from us would fence us.
// SendHello is called from one goroutine at a time (the daemon's effect
// queue).
type helloSender struct {
	m        multicaster
	ctx      context.Context
	log      *logrus.Logger
	attempts int
	backoff  time.Duration
	timeout  time.Duration

	// order is held while a hello goes out, so that the background retry
	// of an older hello cannot go out after a newer one: a daemon waiting
	// for our answer to a join would take the older one for it.
	order     sync.Mutex
	retryMu   sync.Mutex
	retrying  bool   // the background retry runs
	retryData []byte // the hello it sends; nil once none is pending
	retrySeq  uint64 // counts the hellos handed to it
	retries   int    // background attempts made, for tests

	sent     chan struct{}
	sentOnce sync.Once
	isSent   atomic.Bool
	failed   chan struct{}
	failOnce sync.Once
	err      error // why the first hello failed; read after failed is closed
}

func newHelloSender(ctx context.Context, m multicaster, log *logrus.Logger) *helloSender {
	return &helloSender{
		m: m, ctx: ctx, log: log,
		attempts: helloAttempts, backoff: helloBackoff, timeout: helloTimeout,
		sent: make(chan struct{}), failed: make(chan struct{}),
	}
}

func (s *helloSender) SendHello(data []byte) error {
	attempts := s.attempts
	if s.isSent.Load() {
		// Later hellos go to nodes that joined after us; a kill queued
		// behind one must not wait for retries, nor for a background
		// attempt under way: the retry sends this one next.
		attempts = 1
		if !s.order.TryLock() {
			s.retryLater(data)
			s.log.Debugf("an earlier hello of ours is being sent again; this one goes out right after it")
			return nil
		}
	} else {
		s.order.Lock() // nothing else sends before the first hello is out
	}
	defer s.order.Unlock()
	delay := s.backoff
	var err error
	for i := 1; ; i++ {
		ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
		err = s.m.Multicast(ctx, cpg.Agreed, data)
		cancel()
		if err == nil {
			s.isSent.Store(true)
			s.sentOnce.Do(func() { close(s.sent) })
			s.retryMu.Lock()
			s.retryData = nil // older: never to go out now
			s.retryMu.Unlock()
			return nil
		}
		if i >= attempts || s.ctx.Err() != nil {
			break
		}
		s.log.Warnf("could not send our hello to the groupd group (attempt %d of %d): %v; trying again in %s", i, attempts, err, delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
		}
		delay *= 2
	}
	if !s.isSent.Load() {
		s.failOnce.Do(func() {
			s.err = err
			close(s.failed)
		})
	} else if s.ctx.Err() == nil {
		s.retryLater(data)
	}
	return err
}

// retryLater makes sure a later hello that failed gets out in the end.
func (s *helloSender) retryLater(data []byte) {
	s.retryMu.Lock()
	defer s.retryMu.Unlock()
	s.retryData = data
	s.retrySeq++
	if s.retrying {
		return
	}
	s.retrying = true
	s.log.Warnf("could not send our hello to the groupd group: trying again in the background, at least every %s; until it gets out, nodes that joined since may fence us", s.timeout+s.timeout)
	go s.retryLoop()
}

func (s *helloSender) retryLoop() {
	delay := s.backoff
	for {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			s.retryMu.Lock()
			s.retrying = false
			s.retryMu.Unlock()
			return
		}
		s.order.Lock()
		s.retryMu.Lock()
		data := s.retryData
		if data == nil {
			// A newer hello got out meanwhile.
			s.retrying = false
			s.retryMu.Unlock()
			s.order.Unlock()
			s.log.Infof("a later hello of ours got out; the earlier failed one is not sent again")
			return
		}
		seq := s.retrySeq
		s.retries++
		s.retryMu.Unlock()

		ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
		err := s.m.Multicast(ctx, cpg.Agreed, data)
		cancel()

		s.retryMu.Lock()
		if err == nil && seq == s.retrySeq {
			s.retryData = nil
			s.retrying = false
			s.retryMu.Unlock()
			s.order.Unlock()
			s.log.Infof("sent our hello to the groupd group after an earlier attempt failed")
			return
		}
		s.retryMu.Unlock()
		s.order.Unlock()
		if err == nil {
			delay = 0 // a newer hello was handed over meanwhile: it goes next
			continue
		}
		delay = min(2*delay, s.timeout)
	}
}
