// Command group_tool queries the groupd daemon on its unix socket.
//
//	group_tool [--socket PATH] [--timeout D] COMMAND [--json] [ARGS]
//
// Commands: ls, status, members, recovery, dump, watch, ready, ack NODE,
// bypass NODE. NODE is a node id or a node name; id:N and name:X say which.
//
// Exit status:
//
//	0  success (ack: the fencing was acknowledged)
//	1  the daemon answered with an error
//	2  usage error (a bad flag, a missing or extra argument, an unknown
//	   command), or the daemon could not be reached
//	3  ack only: the daemon has no recovery set for that node, so there is
//	   nothing to acknowledge
//
// bypass has its own, fixed meaning: 0 the node may skip fencing, 1 it must
// be fenced, 2 could not tell, which also means fence. Anything that is not
// a definite answer from the daemon is 2, --help and usage errors included,
// so that a script that treats 0 as "skip fencing" never skips it by
// mistake. bypass --json prints one JSON object, {"nodeid", "known",
// "allowed", "reason"}, with the same exit statuses.
//
// ready asks the bypass question about this node: 0 its groupd passed the
// residual check, is in the groupd group and has announced itself, so
// dlm may start here; 1 no (still joining, staying out with residual
// state, leaving or stopped); 2 could not tell (no daemon, usage errors).
// It answers like bypass, in text or JSON ("known" is true whenever the
// daemon answered). ready --wait D asks again, for up to D, while the
// answer is not yes, unless the daemon stays out of the group or is
// shutting down, which no wait changes. dlm.service runs it
// before starting (see cmd/groupd/dlm.service.d).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/groupd-go/groupd/internal/groupd"
	"github.com/groupd-go/groupd/internal/query"
)

const (
	exitOK      = 0
	exitFailed  = 1 // the daemon said no, or answered with an error
	exitUnknown = 2 // usage error, or no answer from the daemon
	exitNothing = 3 // ack: no recovery set for that node
)

const defaultSocket = "/run/groupd/groupd.sock"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// The first signal asks for an orderly end; a second one kills.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// tool is one invocation.
type tool struct {
	socket  string
	timeout time.Duration
	wait    time.Duration // ready: keep asking this long while the answer is not yes
	json    bool
	stdout  io.Writer
	stderr  io.Writer
}

type command struct {
	args  string // usage of the positional arguments
	nargs int
	help  string
	run   func(t *tool, ctx context.Context, args []string) int
}

var commands = map[string]command{
	"ls":       {"", 0, "the groupd group, its members, our state and recovery sets, as a table", (*tool).ls},
	"status":   {"", 0, "our node, quorum, the groupd group and recovery sets", (*tool).status},
	"members":  {"", 0, "the members of the groupd group", (*tool).members},
	"recovery": {"", 0, "the recovery sets: failed nodes waiting for fencing", (*tool).recovery},
	"dump":     {"", 0, "the daemon's recent log lines, debug included", (*tool).dump},
	"watch":    {"", 0, "stream the daemon's events until interrupted", (*tool).watch},
	"ack":      {"NODE", 1, "acknowledge that NODE was fenced, closing its recovery set; exit 3 if it has none", (*tool).ack},
	"bypass":   {"NODE", 1, "may NODE skip fencing? exit 0 yes, 1 no (fence it), 2 could not tell (fence it)", (*tool).bypass},
	"ready":    {"", 0, "has this node's groupd joined the group and announced itself (may dlm start here)? exit 0 yes, 1 no, 2 could not tell; --wait D asks again for up to D", (*tool).ready},
}

// answering reports whether command name answers a yes/no question, where
// exit 0 means yes: then help and usage errors are no answer, exit 2, with
// a "could not tell" line on stdout, where a script looks for the answer.
func answering(name string) bool { return name == "bypass" || name == "ready" }

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: group_tool [--socket PATH] [--timeout DURATION] COMMAND [--json] [NODE]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-16s %s\n", n+" "+c.args, c.help)
	}
	fmt.Fprintf(w, "\nNODE is a node id or name; id:N or name:X says which (a number that is another node's name is refused).\n"+
		"--json prints JSON instead of text (ack: the acknowledged recovery set).\n")
	fmt.Fprintf(w, "Exit status: 0 success; 1 the daemon answered with an error; 2 usage error or the daemon could not be reached;\n"+
		"ack: 3 no recovery set for NODE, nothing to acknowledge.\n"+
		"bypass: 0 may skip fencing, 1 must be fenced, 2 could not tell (also means fence), --help and usage errors included;\n"+
		"ready: 0 ready, 1 not ready, 2 could not tell, --help and usage errors included.\n")
}

// isJSONFlag reports whether arg asks for JSON output, as the flag
// package would read it.
func isJSONFlag(arg string) bool {
	name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	if name != "json" || !strings.HasPrefix(arg, "-") || strings.HasPrefix(arg, "---") {
		return false
	}
	if !hasValue {
		return true
	}
	on, err := strconv.ParseBool(value)
	return err == nil && on
}

// commonFlags are accepted both before and after the command.
func (t *tool) commonFlags(fs *flag.FlagSet) {
	fs.StringVar(&t.socket, "socket", t.socket, "the daemon's query socket `path`")
	fs.DurationVar(&t.timeout, "timeout", t.timeout, "give up on the daemon after this long")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	t := &tool{socket: defaultSocket, timeout: 10 * time.Second, stdout: stdout, stderr: stderr}
	global := flag.NewFlagSet("group_tool", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() {} // printed below: to stdout when help was asked for
	t.commonFlags(global)
	// A help request is a success only when no question is asked: a
	// script reads bypass's 0 as "skip fencing", ready's as "start dlm".
	asking := slices.IndexFunc(args, answering)
	question := ""
	if asking >= 0 {
		question = args[asking]
	}
	// So is the form of the answer: a usage error of bypass --json still
	// answers in JSON.
	t.json = slices.ContainsFunc(args, isJSONFlag)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) && question == "" {
			usage(stdout)
			return exitOK
		}
		usage(stderr)
		if question != "" {
			t.couldNotTell(question, usageOf(question))
		}
		return exitUnknown
	}
	if global.NArg() == 0 {
		usage(stderr)
		return exitUnknown
	}
	name := global.Arg(0)
	if name == "help" {
		if question != "" {
			usage(stderr)
			t.couldNotTell(question, usageOf(question))
			return exitUnknown
		}
		usage(stdout)
		return exitOK
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "group_tool: unknown command %q\n", name)
		usage(stderr)
		return exitUnknown
	}
	fs := flag.NewFlagSet("group_tool "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	t.commonFlags(fs)
	fs.BoolVar(&t.json, "json", t.json, "print JSON")
	if name == "ready" {
		fs.DurationVar(&t.wait, "wait", 0, "keep asking for up to this long while the answer is not yes (0: ask once)")
	}
	fs.Usage = func() {} // printed below, as for the global flags
	cmdUsage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: group_tool %s [--json] %s\n  %s\n", name, c.args, c.help)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	if err := fs.Parse(global.Args()[1:]); err != nil {
		if answering(name) {
			cmdUsage(stderr)
			t.couldNotTell(name, usageOf(name))
			return exitUnknown
		}
		if errors.Is(err, flag.ErrHelp) {
			cmdUsage(stdout)
			return exitOK
		}
		cmdUsage(stderr)
		return exitUnknown
	}
	if fs.NArg() != c.nargs {
		if answering(name) {
			t.couldNotTell(name, usageOf(name))
		}
		cmdUsage(stderr)
		return exitUnknown
	}
	if t.wait < 0 {
		fmt.Fprintf(stderr, "group_tool: --wait must not be negative, not %v\n", t.wait)
		t.couldNotTell(name, "usage: --wait must not be negative")
		return exitUnknown
	}
	if t.timeout <= 0 {
		fmt.Fprintf(stderr, "group_tool: --timeout must be positive, not %v\n", t.timeout)
		if answering(name) {
			t.couldNotTell(name, "usage: --timeout must be positive")
		}
		return exitUnknown
	}
	if c.nargs == 0 && name != "watch" && name != "ready" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	return c.run(t, ctx, fs.Args())
}

// usageOf is the usage line of a command that answers a question.
func usageOf(name string) string {
	return strings.TrimSpace("usage: group_tool " + name + " " + commands[name].args)
}

// call sends one request. On failure it prints why and returns the exit
// status to use.
func (t *tool) call(ctx context.Context, req query.Request) (*query.Response, int) {
	resp, err := query.Call(ctx, t.socket, req)
	if err == nil {
		return resp, exitOK
	}
	var re *query.RemoteError
	if errors.As(err, &re) {
		fmt.Fprintf(t.stderr, "group_tool: groupd: %s\n", re.Msg)
		return nil, exitFailed
	}
	fmt.Fprintf(t.stderr, "group_tool: cannot query groupd at %s: %v\n", t.socket, err)
	return nil, exitUnknown
}

// resolve turns a NODE argument into a node id, asking the daemon for its
// names unless the argument is an explicit id:N (a plain number may also
// be a node's name).
func (t *tool) resolve(ctx context.Context, arg string) (uint32, error) {
	if strings.HasPrefix(arg, "id:") {
		var st query.Status
		return st.Resolve(arg)
	}
	resp, err := query.Call(ctx, t.socket, query.Request{Op: query.OpStatus})
	if err != nil {
		return 0, fmt.Errorf("cannot look up node %q: cannot query groupd at %s: %w", arg, t.socket, err)
	}
	if resp.Status == nil {
		return 0, fmt.Errorf("cannot look up node %q: groupd sent no status", arg)
	}
	return resp.Status.Resolve(arg)
}

// bypassJSON is bypass --json's answer. nodeid is 0 when the node could not
// be resolved.
type bypassJSON struct {
	NodeID  uint32 `json:"nodeid"`
	Known   bool   `json:"known"`
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// answer prints one bypass answer, one line of text or one JSON object, on
// stdout, where a script looks for it.
func (t *tool) answer(b bypassJSON) {
	if t.json {
		if err := t.writeJSONLine(b); err != nil {
			fmt.Fprintf(t.stderr, "group_tool: %v\n", err)
		}
		return
	}
	fmt.Fprintln(t.stdout, b.Reason)
}

// couldNotTell prints the answer to question (bypass or ready) that is no
// answer: fence the node, do not start dlm.
func (t *tool) couldNotTell(question, why string) {
	if question == "ready" {
		t.answer(readyUnknown(why))
		return
	}
	t.answer(bypassJSON{Reason: "could not tell, so the node must be fenced: " + why})
}

// readyUnknown is ready's answer when there is none, exit 2.
func readyUnknown(why string) bypassJSON {
	return bypassJSON{Reason: "could not tell whether this node is ready: " + why}
}

func (t *tool) bypass(ctx context.Context, args []string) int {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	id, err := t.resolve(ctx, args[0])
	if err != nil {
		t.answer(bypassJSON{Reason: fmt.Sprintf("could not tell, so %s must be fenced: %v", args[0], err)})
		return exitUnknown
	}
	b, code := t.askBypass(ctx, id, "")
	t.answer(b)
	return code
}

// readyPoll is how often ready --wait asks again.
const readyPoll = 200 * time.Millisecond

// ready asks the daemon the bypass question about its own node: a node
// that may skip fencing has done everything a node must do before it uses
// dlm, and one that must be fenced has not. With --wait it asks again
// until the answer is yes or the wait is over, except when the daemon
// stays out of the group (residual state under the stay policy), which it
// does until the node reboots.
func (t *tool) ready(ctx context.Context, _ []string) int {
	deadline := time.Now().Add(t.wait)
	for {
		b, code, final := t.readyOnce(ctx)
		if code == exitOK || final || !time.Now().Before(deadline) {
			t.answer(b)
			return code
		}
		select {
		case <-ctx.Done():
			t.answer(b)
			return code
		case <-time.After(readyPoll):
		}
	}
}

// readyOnce asks once; final says the answer cannot change.
func (t *tool) readyOnce(ctx context.Context) (bypassJSON, int, bool) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	resp, err := query.Call(ctx, t.socket, query.Request{Op: query.OpStatus})
	switch {
	case err != nil:
		return readyUnknown("no answer from groupd: " + err.Error()), exitUnknown, false
	case resp.Status == nil || resp.Status.NodeID == 0:
		return readyUnknown("groupd does not know its node id yet"), exitUnknown, false
	}
	st := resp.Status
	self := "this node, " + nodeName(st.NodeID, st.NodeName) + ", "
	switch groupd.Phase(st.Phase) {
	case groupd.PhaseStayingOut:
		return bypassJSON{NodeID: st.NodeID, Known: true, Reason: self + "is not ready: it holds residual dlm/gfs state and stays out of the groupd group (residual policy stay) until it reboots"}, exitFailed, true
	case groupd.PhaseLeaving, groupd.PhaseStopped:
		// Still in the group while it leaves, so it would vouch for
		// itself; but it is shutting down, and will not be back before
		// it is started again.
		return bypassJSON{NodeID: st.NodeID, Known: true, Reason: self + "is not ready: its groupd is " + st.Phase + " (shutting down)"}, exitFailed, true
	}
	b, code := t.askBypass(ctx, st.NodeID, self)
	return b, code, false
}

// askBypass asks the daemon whether node id may skip fencing and returns
// the answer to print. For ready, self names our node: its answer says
// whether the node is ready, and any answer of the daemon's but yes is a
// no (1): a daemon that cannot tell about its own node is not in the group
// or has not yet heard from the members that were there before it.
func (t *tool) askBypass(ctx context.Context, id uint32, self string) (bypassJSON, int) {
	unknown := fmt.Sprintf("could not tell, so node %d must be fenced: ", id)
	if self != "" {
		unknown = "could not tell whether " + self + "is ready: "
	}
	resp, err := query.Call(ctx, t.socket, query.Request{Op: query.OpBypass, Node: id})
	switch {
	case err != nil:
		return bypassJSON{NodeID: id, Reason: unknown + "no answer from groupd: " + err.Error()}, exitUnknown
	case resp.Bypass == nil:
		return bypassJSON{NodeID: id, Reason: unknown + "groupd sent no bypass answer"}, exitUnknown
	case resp.Bypass.NodeID != id:
		return bypassJSON{NodeID: id, Reason: unknown + fmt.Sprintf("groupd answered for node %d", resp.Bypass.NodeID)}, exitUnknown
	case self != "" && resp.Bypass.Allowed && resp.Bypass.Known:
		return bypassJSON{NodeID: id, Known: true, Allowed: true, Reason: self + "is ready: " + resp.Bypass.Reason}, exitOK
	case self != "":
		return bypassJSON{NodeID: id, Known: true, Reason: self + "is not ready: " + resp.Bypass.Reason}, exitFailed
	case !resp.Bypass.Known:
		return bypassJSON{NodeID: id, Reason: "could not tell: " + resp.Bypass.Reason}, exitUnknown
	case resp.Bypass.Allowed:
		return bypassJSON{NodeID: id, Known: true, Allowed: true, Reason: resp.Bypass.Reason}, exitOK
	default:
		return bypassJSON{NodeID: id, Known: true, Reason: resp.Bypass.Reason}, exitFailed
	}
}

func (t *tool) ack(ctx context.Context, args []string) int {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	id, err := t.resolve(ctx, args[0])
	if err != nil {
		fmt.Fprintf(t.stderr, "group_tool: ack %s: %v\n", args[0], err)
		return exitUnknown
	}
	resp, err := query.Call(ctx, t.socket, query.Request{Op: query.OpAck, Node: id})
	var re *query.RemoteError
	switch {
	case errors.As(err, &re) && strings.Contains(re.Msg, groupd.ErrNoRecoverySet.Error()):
		// The protocol has no error codes; the daemon's message carries
		// the machine's sentinel text, which lives in this module.
		fmt.Fprintf(t.stderr, "group_tool: groupd: %s: nothing to acknowledge\n", re.Msg)
		return exitNothing
	case errors.As(err, &re):
		fmt.Fprintf(t.stderr, "group_tool: groupd: %s\n", re.Msg)
		return exitFailed
	case err != nil:
		fmt.Fprintf(t.stderr, "group_tool: cannot query groupd at %s: %v\n", t.socket, err)
		return exitUnknown
	}
	if s := resp.Acked; s != nil && t.json {
		return t.printJSON(setsJSON([]query.RecoverySet{*s})[0])
	} else if s != nil {
		fmt.Fprintf(t.stdout, "fencing of %s acknowledged; recovery set is now %s\n", nodeName(s.NodeID, s.Name), s.State)
	} else if t.json {
		return t.printJSON(map[string]any{"nodeid": id, "state": "acked"})
	} else {
		fmt.Fprintf(t.stdout, "fencing of node %d acknowledged\n", id)
	}
	return exitOK
}

func (t *tool) status(ctx context.Context, _ []string) int {
	resp, code := t.call(ctx, query.Request{Op: query.OpStatus})
	if code != exitOK {
		return code
	}
	if resp.Status == nil {
		fmt.Fprintln(t.stderr, "group_tool: groupd sent no status")
		return exitFailed
	}
	if t.json {
		return t.printJSON(statusJSON(resp.Status))
	}
	printStatus(t.stdout, resp.Status)
	return exitOK
}

func (t *tool) ls(ctx context.Context, _ []string) int {
	resp, code := t.call(ctx, query.Request{Op: query.OpStatus})
	if code != exitOK {
		return code
	}
	if resp.Status == nil {
		fmt.Fprintln(t.stderr, "group_tool: groupd sent no status")
		return exitFailed
	}
	if t.json {
		return t.printJSON(statusJSON(resp.Status))
	}
	printLs(t.stdout, resp.Status)
	return exitOK
}

func (t *tool) members(ctx context.Context, _ []string) int {
	resp, code := t.call(ctx, query.Request{Op: query.OpMembers})
	if code != exitOK {
		return code
	}
	if t.json {
		return t.printJSON(membersJSON(resp.Members))
	}
	printMembers(t.stdout, resp.Members)
	return exitOK
}

func (t *tool) recovery(ctx context.Context, _ []string) int {
	resp, code := t.call(ctx, query.Request{Op: query.OpRecovery})
	if code != exitOK {
		return code
	}
	if t.json {
		return t.printJSON(setsJSON(resp.Recovery))
	}
	printSets(t.stdout, resp.Recovery)
	return exitOK
}

func (t *tool) dump(ctx context.Context, _ []string) int {
	resp, code := t.call(ctx, query.Request{Op: query.OpDump})
	if code != exitOK {
		return code
	}
	if t.json {
		return t.printJSON(append([]string{}, resp.Dump...))
	}
	for _, l := range resp.Dump {
		fmt.Fprintln(t.stdout, l)
	}
	return exitOK
}

func (t *tool) watch(ctx context.Context, _ []string) int {
	dctx, cancel := context.WithTimeout(ctx, t.timeout)
	c, err := query.Dial(dctx, t.socket)
	cancel()
	if err != nil {
		fmt.Fprintf(t.stderr, "group_tool: cannot query groupd at %s: %v\n", t.socket, err)
		return exitUnknown
	}
	defer c.Close()
	err = c.Watch(ctx, func(ev query.Event) error {
		if t.json {
			return t.writeJSONLine(eventJSON(ev))
		}
		_, err := fmt.Fprintln(t.stdout, formatEvent(ev))
		return err
	})
	var re *query.RemoteError
	switch {
	case errors.As(err, &re):
		fmt.Fprintf(t.stderr, "group_tool: groupd: %s\n", re.Msg)
		return exitFailed
	case err != nil:
		fmt.Fprintf(t.stderr, "group_tool: watch: %v\n", err)
		return exitUnknown
	case ctx.Err() == nil:
		// The daemon ended the stream: it is going away.
		fmt.Fprintln(t.stderr, "group_tool: groupd ended the event stream")
		return exitUnknown
	}
	return exitOK
}
