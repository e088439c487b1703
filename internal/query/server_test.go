package query

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type fakeHandler struct {
	src      chan Event
	watching atomic.Int32
	mu       sync.Mutex
	acked    []uint32
}

func newFakeHandler() *fakeHandler { return &fakeHandler{src: make(chan Event)} }

func (h *fakeHandler) Status() Status {
	return Status{
		NodeID: 1, NodeName: "alpha", PID: 100, Phase: "joined", ClusterKnown: true, Quorate: true,
		Ring: "1.8", ClusterMembers: []uint32{1, 2, 3}, Joined: true,
		Members:  []Member{{NodeID: 1, PID: 100, Name: "alpha", Hello: true}, {NodeID: 2, PID: 200, Name: "bravo"}},
		Recovery: []RecoverySet{{NodeID: 3, Name: "charlie", State: "waiting-for-fencing", Reason: "nodedown", Failures: 1}},
	}
}

func (h *fakeHandler) Bypass(n uint32) Bypass {
	return Bypass{NodeID: n, Allowed: n == 1, Known: true, Reason: fmt.Sprintf("node %d verdict", n)}
}

func (h *fakeHandler) Ack(ctx context.Context, n uint32) (RecoverySet, error) {
	if n != 3 {
		return RecoverySet{}, fmt.Errorf("ack node %d: no recovery set for that node", n)
	}
	h.mu.Lock()
	h.acked = append(h.acked, n)
	h.mu.Unlock()
	return RecoverySet{NodeID: 3, State: "acked"}, nil
}

func (h *fakeHandler) Dump() []string { return []string{"debug line one", "debug line two"} }

func (h *fakeHandler) Watch(ctx context.Context) (<-chan Event, error) {
	out := make(chan Event)
	h.watching.Add(1)
	go func() {
		defer h.watching.Add(-1)
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-h.src:
				if !ok {
					return
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// serve starts a server on a socket in dir (a new temp dir if "").
func serve(t *testing.T, cfg Config, h Handler) *Server {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "groupd.sock")
	}
	if cfg.Log == nil {
		cfg.Log = testLog{t}
	}
	srv, err := Listen(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return srv
}

type testLog struct{ t testing.TB }

func (l testLog) Debugf(f string, a ...any) { l.t.Logf("DEBUG "+f, a...) }
func (l testLog) Infof(f string, a ...any)  { l.t.Logf("INFO  "+f, a...) }
func (l testLog) Warnf(f string, a ...any)  { l.t.Logf("WARN  "+f, a...) }

// warnLog keeps the warnings, and passes every line on to the test log.
type warnLog struct {
	testLog
	mu    sync.Mutex
	warns []string
}

func (l *warnLog) Warnf(f string, a ...any) {
	l.testLog.Warnf(f, a...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.warns = append(l.warns, fmt.Sprintf(f, a...))
}

func (l *warnLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.warns)
}

func ctx5s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRoundTrips(t *testing.T) {
	h := newFakeHandler()
	srv := serve(t, Config{}, h)
	ctx := ctx5s(t)
	c, err := Dial(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	tests := []struct {
		req   Request
		check func(*Response) bool
	}{
		{Request{Op: OpStatus}, func(r *Response) bool {
			return r.Status != nil && r.Status.NodeName == "alpha" && len(r.Status.Members) == 2 && r.Status.Recovery[0].NodeID == 3
		}},
		{Request{Op: OpMembers}, func(r *Response) bool { return len(r.Members) == 2 && r.Members[1].Name == "bravo" }},
		{Request{Op: OpRecovery}, func(r *Response) bool { return len(r.Recovery) == 1 && r.Recovery[0].State == "waiting-for-fencing" }},
		{Request{Op: OpBypass, Node: 1}, func(r *Response) bool { return r.Bypass.Allowed && r.Bypass.NodeID == 1 }},
		{Request{Op: OpBypass, Node: 2}, func(r *Response) bool { return !r.Bypass.Allowed && r.Bypass.Reason == "node 2 verdict" }},
		{Request{Op: OpAck, Node: 3}, func(r *Response) bool { return r.Acked != nil && r.Acked.State == "acked" }},
		{Request{Op: OpDump}, func(r *Response) bool { return len(r.Dump) == 2 && r.Dump[0] == "debug line one" }},
	}
	for _, tt := range tests {
		resp, err := c.Do(ctx, tt.req)
		if err != nil {
			t.Fatalf("%s: %v", tt.req.Op, err)
		}
		if !resp.OK || resp.Op != tt.req.Op || resp.V != Version || !tt.check(resp) {
			t.Errorf("%s: unexpected reply %+v", tt.req.Op, resp)
		}
	}
	if len(h.acked) != 1 {
		t.Errorf("handler saw acks %v, want one", h.acked)
	}

	resp, err := Call(ctx, srv.Addr(), Request{Op: OpAck, Node: 9})
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "no recovery set") || resp.OK {
		t.Errorf("ack of a node without a set: %+v, %v; want a RemoteError", resp, err)
	}
}

func TestMalformedAndOversizedRequests(t *testing.T) {
	srv := serve(t, Config{}, newFakeHandler())
	conn, err := net.Dial("unix", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	send := func(line string) Response {
		t.Helper()
		if _, err := conn.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		b, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("no reply to %.40q: %v", line, err)
		}
		var resp Response
		if err := json.Unmarshal(b, &resp); err != nil {
			t.Fatalf("reply %q is not JSON: %v", b, err)
		}
		return resp
	}
	tests := []struct {
		line, wantErr string
	}{
		{"garbage\n", "malformed"},
		{`{"v":1,"op":"launch"}` + "\n", "unknown op"},
		{`{"v":9,"op":"status"}` + "\n", "version 9"},
		{strings.Repeat("x", MaxLine+100) + "\n", "longer than"},
		{`{"v":1,"op":"status","pad":"` + strings.Repeat("p", 2*MaxLine) + `"}` + "\n", "longer than"},
		{"\n  \n" + `{"v":1,"op":"status"}` + "\n", ""}, // blank lines are skipped
	}
	for _, tt := range tests {
		resp := send(tt.line)
		if tt.wantErr == "" {
			if !resp.OK || resp.Status == nil {
				t.Errorf("valid request after bad ones: %+v", resp)
			}
			continue
		}
		if resp.OK || !strings.Contains(resp.Error, tt.wantErr) || resp.V != Version {
			t.Errorf("%.40q: reply %+v, want an error with %q", tt.line, resp, tt.wantErr)
		}
	}
	// and other clients are served as before
	if _, err := Call(ctx5s(t), srv.Addr(), Request{Op: OpStatus}); err != nil {
		t.Errorf("another client after bad requests: %v", err)
	}
}

func TestSocketFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "groupd.sock")
	srv, err := Listen(Config{Path: path}, newFakeHandler())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket %v, %v: want a socket with mode 0600", fi.Mode(), err)
	}
	if _, err := Listen(Config{Path: path}, newFakeHandler()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Listen on a live socket = %v, want in use", err)
	}
	srv.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after Close: %v", err)
	}

	// a stale socket from a crashed daemon is replaced
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	srv, err = Listen(Config{Path: path}, newFakeHandler())
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	srv.Close()

	// anything else at the path is left alone
	file := filepath.Join(dir, "not-a-socket")
	os.WriteFile(file, []byte("keep me"), 0o644)
	if _, err := Listen(Config{Path: file}, newFakeHandler()); err == nil {
		t.Error("Listen replaced a regular file")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Error("Listen damaged a regular file at the socket path")
	}
	if _, err := Listen(Config{Path: ""}, newFakeHandler()); err == nil {
		t.Error("Listen with no path succeeded")
	}
	if _, err := Listen(Config{Path: filepath.Join(dir, "g.sock"), Group: "no-such-group-groupd"}, newFakeHandler()); err == nil {
		t.Error("Listen with an unknown group succeeded")
	}
}

func TestWatch(t *testing.T) {
	h := newFakeHandler()
	srv := serve(t, Config{}, h)
	c, err := Dial(ctx5s(t), srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Event)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(ctx, func(e Event) error { got <- e; return nil })
	}()
	for i := range 3 {
		e := Event{Kind: "recovery-opened", NodeID: uint32(i + 2), Text: fmt.Sprintf("event %d", i)}
		select {
		case h.src <- e:
		case <-time.After(5 * time.Second):
			t.Fatal("the server never started watching")
		}
		if r := <-got; r.Text != e.Text || r.NodeID != e.NodeID {
			t.Errorf("watched %+v, want %+v", r, e)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch after cancel = %v, want nil", err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for h.watching.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the server kept watching after the client closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Watches, which the idle timeout leaves open, are bounded by MaxWatches,
// so that slots stay for queries; a watch that ends frees its place.
func TestMaxWatches(t *testing.T) {
	h := newFakeHandler()
	srv := serve(t, Config{MaxConns: 4, MaxWatches: 2}, h)
	ctx := ctx5s(t)
	watch := func() (*Client, chan error) {
		c, err := Dial(ctx, srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Watch(context.Background(), func(Event) error { return nil }) }()
		return c, done
	}
	first, _ := watch()
	watch()
	for h.watching.Load() != 2 {
		time.Sleep(time.Millisecond)
	}
	third, done := watch()
	defer third.Close()
	var re *RemoteError
	select {
	case err := <-done:
		if !errors.As(err, &re) || !strings.Contains(re.Msg, "too many watches") {
			t.Errorf("a third watch with MaxWatches 2: %v, want a too-many-watches reply", err)
		}
	case <-ctx.Done():
		t.Fatal("a third watch with MaxWatches 2 was let run")
	}
	// The refused connection is still good for queries.
	if _, err := third.Do(ctx, Request{Op: OpStatus}); err != nil {
		t.Errorf("status on the connection whose watch was refused: %v", err)
	}
	if _, err := call(ctx, srv.Addr(), Request{Op: OpStatus}); err != nil {
		t.Errorf("a query while two watches run: %v", err)
	}
	first.Close()
	for h.watching.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	again, done := watch()
	defer again.Close()
	for h.watching.Load() != 2 {
		select {
		case err := <-done:
			t.Fatalf("a watch after one ended: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
}

func TestWatchEndedByDaemon(t *testing.T) {
	h := newFakeHandler()
	srv := serve(t, Config{}, h)
	c, err := Dial(ctx5s(t), srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- c.Watch(context.Background(), func(Event) error { return nil }) }()
	for h.watching.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(h.src)
	var re *RemoteError
	if err := <-done; !errors.As(err, &re) || !strings.Contains(re.Msg, "ended") {
		t.Errorf("Watch when the daemon ends the stream = %v", err)
	}
}

// holdSlots connects n clients, each answered once so that it surely
// holds a slot, and closes them when the test ends.
func holdSlots(ctx context.Context, t *testing.T, addr string, n int) []*Client {
	t.Helper()
	var held []*Client
	for i := range n {
		c, err := Dial(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Do(ctx, Request{Op: OpStatus}); err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, n, err)
		}
		held = append(held, c)
	}
	return held
}

// A client connecting over and over while every slot is taken gets one
// warning logged per interval, not one per connection; the next one says
// how many were left out.
func TestRefusalsLoggedSparingly(t *testing.T) {
	log := &warnLog{testLog: testLog{t}}
	const every = 500 * time.Millisecond
	srv := serve(t, Config{MaxConns: 1, ReservedConns: 1, RefusalLogEvery: every, Log: log}, newFakeHandler())
	ctx := ctx5s(t)
	holdSlots(ctx, t, srv.Addr(), 2) // every slot
	refuse := func() {
		t.Helper()
		_, err := call(ctx, srv.Addr(), Request{Op: OpStatus})
		var re *RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Msg, "too many") {
			t.Fatalf("connection over the limit: %v, want a too-many reply", err)
		}
	}
	start := time.Now()
	const flood = 30
	for range flood {
		refuse()
	}
	if time.Since(start) >= every {
		t.Skipf("%d connections took %v, longer than the log interval: too slow a machine to check", flood, time.Since(start))
	}
	if got := log.lines(); len(got) != 1 {
		t.Fatalf("%d refused connections within %v logged %d warnings, want 1: %q", flood, every, len(got), got)
	}
	time.Sleep(every)
	refuse()
	got := log.lines()
	if len(got) != 2 || !strings.Contains(got[1], fmt.Sprintf("%d more refused connections", flood-1)) {
		t.Errorf("after the interval, warnings %q; want a second one counting the %d left out", got, flood-1)
	}
}

// Beyond MaxConns, only the reserved slots are left, for root and the
// daemon's uid (the test's uid is the daemon's); beyond those, a client is
// told there are too many.
func TestMaxConns(t *testing.T) {
	srv := serve(t, Config{MaxConns: 1, ReservedConns: 1}, newFakeHandler())
	ctx := ctx5s(t)
	held := holdSlots(ctx, t, srv.Addr(), 2) // the one general slot, then the reserved one
	first := held[0]
	_, err := call(ctx, srv.Addr(), Request{Op: OpStatus})
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "too many") {
		t.Errorf("connection over the limit: %v, want a too-many reply", err)
	}
	// Call, unlike one Do, waits for a slot: the first client's, once it
	// closes.
	time.AfterFunc(100*time.Millisecond, func() { first.Close() })
	start := time.Now()
	if _, err := Call(ctx, srv.Addr(), Request{Op: OpStatus}); err != nil {
		t.Fatalf("Call while every slot was in use, one closing after 100ms: %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("Call answered after %v, before any slot was free", d)
	}
	// With no slot ever freed, Call gives up with its context, saying why.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	var hog *Client
	for hog == nil { // the slot of the Call above is freed once the server sees it closed
		c, err := Dial(ctx, srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Do(ctx, Request{Op: OpStatus}); err == nil {
			hog = c
		} else if c.Close(); ctx.Err() != nil {
			t.Fatalf("no slot for a second client: %v", err)
		}
	}
	defer hog.Close()
	if _, err := Call(short, srv.Addr(), Request{Op: OpStatus}); !errors.As(err, &re) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call with every slot held: %v, want the too-many reply and the deadline", err)
	}
}

// Serve must not hang on clients that connect and say nothing.
func TestServeStopsWithIdleClients(t *testing.T) {
	srv, err := Listen(Config{Path: filepath.Join(t.TempDir(), "s.sock")}, newFakeHandler())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	for range 3 {
		c, err := net.Dial("unix", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// let the server accept them
	if _, err := Call(ctx5s(t), srv.Addr(), Request{Op: OpStatus}); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve hung on idle clients")
	}
}

func TestClientTimeout(t *testing.T) {
	// a socket that accepts and never answers
	path := filepath.Join(t.TempDir(), "mute.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(5 * time.Second)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Call(ctx, path, Request{Op: OpStatus})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call to a mute daemon = %v, want DeadlineExceeded", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Error("Call ignored its deadline")
	}
}

// Clients that connect and then hang, silent or stuck in the middle of a
// line, are dropped after IdleTimeout, so they cannot hold every slot and
// lock out fence_tool. A client that keeps asking keeps its connection,
// and a watch waits for events however long they take.
func TestIdleConnectionsAreClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	h := newFakeHandler()
	srv := serve(t, Config{MaxConns: 3, ReservedConns: 1, IdleTimeout: idle}, h)
	ctx := ctx5s(t)

	// A watcher and a client that asks often take a slot each and keep it.
	watcher, err := Dial(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	watched := make(chan Event, 1)
	go watcher.Watch(context.Background(), func(e Event) error { watched <- e; return nil })
	for h.watching.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	busy, err := Dial(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	// One that says nothing and one that stops halfway through a request
	// take the last two slots.
	var hung []net.Conn
	for _, partial := range []string{"", `{"v":1,"op":`} {
		c, err := net.Dial("unix", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(partial))
		hung = append(hung, c)
	}
	_, err = call(ctx, srv.Addr(), Request{Op: OpStatus})
	if re := (*RemoteError)(nil); !errors.As(err, &re) || !strings.Contains(re.Msg, "too many") {
		t.Fatalf("with every slot taken: %v, want a too-many reply", err)
	}

	start := time.Now()
	for time.Since(start) < 3*idle {
		if _, err := busy.Do(ctx, Request{Op: OpStatus}); err != nil {
			t.Fatalf("a client asking every %v lost its connection: %v", idle/3, err)
		}
		time.Sleep(idle / 3)
	}

	for i, c := range hung {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("hung client %d: %v, want the server to close within %v", i, err, idle)
		}
		if !strings.Contains(string(b), "no complete request within 300ms") {
			t.Errorf("hung client %d got %q, want a reply saying why it was closed", i, b)
		}
	}
	if _, err := Call(ctx, srv.Addr(), Request{Op: OpStatus}); err != nil {
		t.Errorf("a new client after the hung ones timed out: %v", err)
	}

	e := Event{Kind: "recovery-opened", NodeID: 3, Text: "after a long quiet"}
	h.src <- e
	select {
	case got := <-watched:
		if got.Text != e.Text {
			t.Errorf("watched %+v, want %+v", got, e)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("a watch quiet for %v lost its event", time.Since(start))
	}
}

// flakyListener fails Accept with errs, one per call, then accepts from
// the real listener.
type flakyListener struct {
	*net.UnixListener
	mu    sync.Mutex
	errs  []error
	fails int // errors returned so far
}

func (l *flakyListener) AcceptUnix() (*net.UnixConn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		if len(l.errs) > 1 || err != errForever {
			l.errs = l.errs[1:]
		}
		l.fails++
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.UnixListener.AcceptUnix()
}

// errForever, last in errs, repeats for good.
var errForever = errors.New("accept: something odd, for good")

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", errno)}
}

// serveFlaky runs a server whose listener fails with errs first. done
// receives what Serve returns.
func serveFlaky(t *testing.T, errs ...error) (srv *Server, fl *flakyListener, cancel context.CancelFunc, done chan error) {
	t.Helper()
	srv, err := Listen(Config{Path: filepath.Join(t.TempDir(), "s.sock"), Log: testLog{t}}, newFakeHandler())
	if err != nil {
		t.Fatal(err)
	}
	fl = &flakyListener{UnixListener: srv.ln.(*net.UnixListener), errs: errs}
	srv.ln = fl
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		done <- srv.Serve(ctx)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return srv, fl, cancel, done
}

// Running out of file descriptors, a connection aborted before accept, or
// anything else accept may say: Serve waits and tries again, and serves
// once accept works.
func TestAcceptErrorsAreRetried(t *testing.T) {
	srv, fl, _, done := serveFlaky(t,
		acceptErr(syscall.EMFILE), acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE),
		acceptErr(syscall.ECONNABORTED), acceptErr(syscall.ENOBUFS), errors.New("accept: something odd"))
	start := time.Now()
	if _, err := Call(ctx5s(t), srv.Addr(), Request{Op: OpStatus}); err != nil {
		select {
		case err := <-done:
			t.Fatalf("Serve returned %v after an accept error", err)
		default:
		}
		t.Fatalf("Call: %v", err)
	}
	// 5+10+20+40+80+160ms of back-off
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("served after %v: the retries did not back off", d)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.fails != 6 {
		t.Errorf("accept failed %d times, want 6", fl.fails)
	}
}

// While accept keeps failing, Serve backs off to at most 1s between tries
// and still stops at once when its context ends.
func TestAcceptBackoffStopsWithContext(t *testing.T) {
	_, fl, cancel, done := serveFlaky(t, errForever)
	time.Sleep(2500 * time.Millisecond)
	fl.mu.Lock()
	fails := fl.fails
	fl.mu.Unlock()
	// 5ms doubling to 1s: tries at 0, 5, 15, 35, ... 1275 and 2275ms, 10
	// in 2.5s; a loop without back-off would make thousands. Timers never
	// fire early, so 11 is a firm bound; a loaded machine may run late,
	// so the lower bound only says it keeps trying.
	if fails < 3 || fails > 11 {
		t.Errorf("%d accept tries in 2.5s, want about 10 (5ms doubling up to 1s)", fails)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v after its context ended, want nil", err)
		}
	case <-time.After(500 * time.Millisecond):
		t.Fatal("Serve did not stop during its accept back-off")
	}
}

// A client kept open past the server's idle timeout finds its connection
// closed, with the server's closing line unread in it. Its next request
// must get that request's answer, once, not the stale line.
func TestKeptOpenClientOutlivesIdleTimeout(t *testing.T) {
	const idle = 100 * time.Millisecond
	h := newFakeHandler()
	srv := serve(t, Config{IdleTimeout: idle}, h)
	ctx := ctx5s(t)
	c, err := Dial(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for round := 1; round <= 3; round++ {
		resp, err := c.Do(ctx, Request{Op: OpAck, Node: 3})
		if err != nil || resp.Acked == nil || resp.Acked.State != "acked" {
			t.Fatalf("ack %d: %+v, %v", round, resp, err)
		}
		h.mu.Lock()
		acks := len(h.acked)
		h.mu.Unlock()
		if acks != round {
			t.Fatalf("after ack %d the daemon acked %d times", round, acks)
		}
		time.Sleep(3 * idle) // the server closes the connection meanwhile
	}
	resp, err := c.Do(ctx, Request{Op: OpBypass, Node: 1})
	if err != nil || resp.Bypass == nil || !resp.Bypass.Allowed {
		t.Fatalf("bypass after idle close: %+v, %v", resp, err)
	}
}

// The closing line can also come after the client wrote its request (the
// server's idle timer ran out as it did): the request was not read, so it
// is sent again on a new connection; if that one is closed unread too,
// the caller gets an error saying so, and no third try.
func TestClientResendsRequestClosedUnread(t *testing.T) {
	path := filepath.Join(t.TempDir(), "groupd.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bye, _ := json.Marshal(Response{V: Version, Error: "no complete request within 1s; closing the connection", Closing: true})
	ok, _ := json.Marshal(Response{V: Version, Op: OpBypass, OK: true, Bypass: &Bypass{NodeID: 2, Known: true}})
	// script: what the server answers on each new connection, after
	// reading one request line.
	script := make(chan []byte, 4)
	var requests atomic.Int32
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			r := bufio.NewReader(conn)
			if _, err := r.ReadString('\n'); err == nil {
				requests.Add(1)
			}
			conn.Write(append(<-script, '\n'))
			conn.Close()
		}
	}()
	ctx := ctx5s(t)

	script <- bye
	script <- ok
	resp, err := Call(ctx, path, Request{Op: OpBypass, Node: 2})
	if err != nil || resp.Bypass == nil || resp.Bypass.NodeID != 2 {
		t.Fatalf("bypass: %+v, %v; want the second connection's answer", resp, err)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("%d requests sent, want 2", n)
	}

	script <- bye
	script <- bye
	resp, err = Call(ctx, path, Request{Op: OpBypass, Node: 2})
	if err == nil || !strings.Contains(err.Error(), "not read") || resp != nil {
		t.Fatalf("closed unread twice: %+v, %v; want an error saying the request was not read", resp, err)
	}
	if n := requests.Load(); n != 4 {
		t.Fatalf("%d requests sent, want 4 (no third try)", n)
	}
}

// A watch lasts, so it may not take a connection reserved for root's
// fencing tools: with the general ones in use, root's watch is refused on
// a reserved one, which still answers root's other requests.
func TestWatchRefusedOnReservedConnection(t *testing.T) {
	h := newFakeHandler()
	srv := serve(t, Config{MaxConns: 1, ReservedConns: 1}, h)
	ctx := ctx5s(t)
	general, err := Dial(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer general.Close()
	if _, err := general.Do(ctx, Request{Op: OpStatus}); err != nil {
		t.Fatal(err) // it holds the general slot now
	}
	reserved, err := Dial(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer reserved.Close()
	err = reserved.Watch(ctx, func(Event) error { return nil })
	if re := (*RemoteError)(nil); !errors.As(err, &re) || !strings.Contains(re.Msg, "reserved for fencing tools") {
		t.Fatalf("watch on the reserved connection: %v, want it refused", err)
	}
	if resp, err := reserved.Do(ctx, Request{Op: OpBypass, Node: 1}); err != nil || resp.Bypass == nil || !resp.Bypass.Allowed {
		t.Fatalf("bypass on the reserved connection after the refused watch: %+v, %v", resp, err)
	}
	if h.watching.Load() != 0 {
		t.Error("the refused watch was started")
	}
}

// Only requests understood keep a connection: one that sends blank or
// malformed lines is still closed after the idle timeout.
func TestIdleTimeoutNotResetByJunk(t *testing.T) {
	const idle = 200 * time.Millisecond
	srv := serve(t, Config{IdleTimeout: idle}, newFakeHandler())
	c, err := net.Dial("unix", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	type end struct {
		after time.Duration
		read  string
	}
	closed := make(chan end, 1)
	go func() {
		b, _ := io.ReadAll(c)
		closed <- end{time.Since(start), string(b)}
	}()
	check := func(e end) {
		if !strings.Contains(e.read, `"closing":true`) {
			t.Errorf("connection ended with %q, want the closing line", e.read)
		}
		if e.after > 5*idle {
			t.Errorf("closed after %v of junk, want about %v", e.after, idle)
		}
	}
	for i := 0; i < 40; i++ { // 2 s of junk, ten idle timeouts
		line := "\n"
		if i%2 == 1 {
			line = "not json\n"
		}
		if _, err := c.Write([]byte(line)); err != nil {
			break // the server closed it: see what it said
		}
		select {
		case e := <-closed:
			check(e)
			return
		case <-time.After(idle / 4):
		}
	}
	select {
	case e := <-closed:
		check(e)
	case <-time.After(5 * time.Second):
		t.Fatalf("still open after %v of junk lines (idle timeout %v)", time.Since(start), idle)
	}
}
