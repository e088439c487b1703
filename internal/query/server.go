package query

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Handler answers queries. The daemon's state loop implements it from its
// latest snapshot, so no method waits behind corosync. Ack goes through
// the loop but returns as soon as the loop has recorded it.
type Handler interface {
	Status() Status
	Bypass(nodeID uint32) Bypass
	Ack(ctx context.Context, nodeID uint32) (RecoverySet, error)
	Dump() []string
	// Watch streams events until ctx ends; the channel is closed when the
	// stream ends for any reason.
	Watch(ctx context.Context) (<-chan Event, error)
}

// Logger is the server's logging; logrus's *Logger and *Entry satisfy it.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
}

// Config sets up a Server.
type Config struct {
	// Path of the socket; its directory is created if missing.
	Path string
	// Group, a group name or numeric id, may query besides root. The
	// socket is then owned by that group with mode 0660. Empty: root only,
	// mode 0600. The group may only read: ack, which changes fencing
	// state, is for root and the daemon's own uid.
	Group string
	// Mode overrides the socket mode (tests; unusual setups). Access is
	// still checked per connection from the peer's credentials.
	Mode os.FileMode
	// MaxConns bounds concurrent connections; default 32. Root and the
	// daemon's own uid (fence_tool, group_tool ack) may use ReservedConns
	// more, so that readers in Group cannot lock them out.
	MaxConns int
	// ReservedConns is how many connections beyond MaxConns are kept for
	// root and the daemon's uid; default 8. A watch, which lasts, is
	// refused on one: it would keep the slot from the fencing tools.
	ReservedConns int
	// WriteTimeout bounds each reply write, so a client that stops reading
	// cannot hold a connection forever; default 10s.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for each request line, so clients that
	// connect and hang cannot use up MaxConns and lock out fence_tool;
	// default 30s. A watch connection waits for events, not requests, and
	// has no such bound.
	IdleTimeout time.Duration
	// MaxWatches bounds the watch connections, which the idle timeout
	// does not close, so that watchers cannot hold every general slot
	// for good; default MaxConns/2.
	MaxWatches int
	// RefusalLogEvery spaces the warnings about refused connections: any
	// user who may connect can provoke them as fast as it connects, and a
	// flood would make journald drop the daemon's other lines. One is
	// logged per interval; the next says how many were left out. Default
	// 10s.
	RefusalLogEvery time.Duration
	Log             Logger // nil: no logging
}

// Server serves the query protocol on a unix socket.
type Server struct {
	cfg  Config
	h    Handler
	ln   listener
	gid  int // allowed group, -1 for none
	euid int
	sem  chan struct{} // a slot for every connection
	// reserve: the slots only root and the daemon's uid may take once sem
	// is full.
	reserve chan struct{}

	closeOnce sync.Once
	closing   chan struct{}
	wg        sync.WaitGroup
	mu        sync.Mutex // guards conns only
	conns     map[net.Conn]bool

	watches atomic.Int32 // watch connections open

	refusedMu      sync.Mutex
	refusedLogged  time.Time // when the last refusal was logged
	refusedDropped int       // refusals not logged since
	refusedSince   time.Time // when the first of those came
}

// listener is what Serve needs of a *net.UnixListener; tests wrap one to
// inject accept errors.
type listener interface {
	AcceptUnix() (*net.UnixConn, error)
	Close() error
}

// The accept retry delay after an error: doubling from the first to the
// last, as net/http does.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// Listen creates the socket. A stale socket at the path is replaced; a
// socket something still answers on, or any other file, is an error.
func Listen(cfg Config, h Handler) (*Server, error) {
	if cfg.Path == "" {
		return nil, errors.New("query socket path is empty")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 32
	}
	if cfg.ReservedConns <= 0 {
		cfg.ReservedConns = 8
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxWatches <= 0 {
		cfg.MaxWatches = max(1, cfg.MaxConns/2)
	}
	if cfg.RefusalLogEvery <= 0 {
		cfg.RefusalLogEvery = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	gid := -1
	if cfg.Group != "" {
		g, err := LookupGroup(cfg.Group)
		if err != nil {
			return nil, err
		}
		gid = g
	}
	mode := cfg.Mode
	if mode == 0 {
		mode = 0o600
		if gid >= 0 {
			mode = 0o660
		}
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
		return nil, fmt.Errorf("query socket directory: %w", err)
	}
	if err := removeStale(cfg.Path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("query socket: %w", err)
	}
	// Between bind and chmod the socket has the umask's mode; the per
	// connection credential check covers that window.
	if gid >= 0 {
		if err := os.Chown(cfg.Path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("query socket group: %w", err)
		}
	}
	if err := os.Chmod(cfg.Path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("query socket mode: %w", err)
	}
	return &Server{
		cfg: cfg, h: h, ln: ln, gid: gid, euid: os.Geteuid(),
		sem:     make(chan struct{}, cfg.MaxConns),
		reserve: make(chan struct{}, cfg.ReservedConns),
		closing: make(chan struct{}),
		conns:   map[net.Conn]bool{},
	}, nil
}

// LookupGroup resolves a group name or numeric id, as Config.Group takes
// it, to a gid.
func LookupGroup(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, fmt.Errorf("query socket group %q: %w", s, err)
	}
	return strconv.Atoi(g.Gid)
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("query socket: %w", err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("query socket path %s exists and is not a socket; not removing it", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("query socket %s is in use: is another groupd running?", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale query socket: %w", err)
	}
	return nil
}

// Addr is the socket path.
func (s *Server) Addr() string { return s.cfg.Path }

// Serve accepts connections until ctx ends or Close is called, then closes
// every connection and waits for their goroutines. It returns nil then.
//
// An accept error (out of file descriptors, a connection aborted before it
// was accepted, ...) does not end it: it waits, 5ms doubling up to 1s, and
// tries again, so the socket serves again once the cause is gone. It
// returns an error only if the listener was closed other than by Close.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	shutdown := func(err error) error {
		cancel()
		s.Close()
		s.closeConns()
		s.wg.Wait()
		return err
	}
	var delay time.Duration // current accept retry delay; 0 while accept works
	var lastErr string
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			select {
			case <-s.closing:
				return shutdown(nil)
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return shutdown(fmt.Errorf("query socket accept: %w", err))
			}
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			if err.Error() != lastErr {
				s.logf("warn", "query socket %s: accept failed: %v; retrying with back-off up to %v until it works (queries wait meanwhile)", s.cfg.Path, err, maxAcceptDelay)
				lastErr = err.Error()
			} else {
				s.logf("debug", "query socket %s: accept failed again: %v; retrying in %v", s.cfg.Path, err, delay)
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.closing:
				t.Stop()
			}
			continue
		}
		if delay != 0 {
			s.logf("info", "query socket %s: accepting connections again", s.cfg.Path)
			delay, lastErr = 0, ""
		}
		// Credentials first: they decide which slots the peer may take.
		p, err := peerOf(c)
		if err != nil {
			s.warnRefused("query connection refused: cannot read peer credentials: %v", err)
			s.reject(c, "permission denied: cannot read peer credentials")
			continue
		}
		// Before a slot: a peer that may not query is told so, also when
		// every slot is taken (Call would retry "too many" until its
		// timeout), and holds none while it is.
		if !s.allowed(p) {
			s.warnRefused("query connection from pid %d uid %d gid %d refused: not root and not in the allowed group", p.pid, p.uid, p.gid)
			s.reject(c, fmt.Sprintf("permission denied: uid %d is not allowed to query groupd", p.uid))
			continue
		}
		slot := s.sem
		select {
		case s.sem <- struct{}{}:
		default:
			if !s.mayChange(p) {
				s.warnRefused("query connection from pid %d uid %d refused: all %d connections are in use", p.pid, p.uid, s.cfg.MaxConns)
				s.reject(c, msgTooMany)
				continue
			}
			select {
			case s.reserve <- struct{}{}:
				slot = s.reserve
			default:
				s.warnRefused("query connection from pid %d uid %d refused: all %d connections and the %d reserved for root are in use", p.pid, p.uid, s.cfg.MaxConns, s.cfg.ReservedConns)
				s.reject(c, msgTooMany)
				continue
			}
		}
		s.track(c, true)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-slot }()
			defer s.track(c, false)
			defer c.Close()
			s.serveConn(ctx, c, p, slot == s.reserve)
		}()
	}
}

// Close stops accepting, removes the socket file and closes the open
// connections at once, so that no one is answered after it (the daemon
// calls it when corosync goes away: its answers would be stale). Serve
// then waits for the connections' goroutines on its way out.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.ln.Close() // unlinks the socket: net sets unlink-on-close for Listen
		s.closeConns()
	})
	return nil
}

func (s *Server) track(c net.Conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		select {
		case <-s.closing:
			// Accepted just before Close, tracked after it closed the
			// others: close this one too, nobody is answered after Close.
			c.Close()
			return
		default:
		}
		s.conns[c] = true
	} else {
		delete(s.conns, c)
	}
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// msgTooMany is the reply to a connection over the limit; Call recognises
// it and tries again.
const msgTooMany = "too many query connections; try again"

func (s *Server) reject(c net.Conn, msg string) {
	s.write(c, errorResponse("", "%s", msg))
	c.Close()
}

func (s *Server) logf(level string, format string, args ...any) {
	if s.cfg.Log == nil {
		return
	}
	switch level {
	case "debug":
		s.cfg.Log.Debugf(format, args...)
	case "warn":
		s.cfg.Log.Warnf(format, args...)
	default:
		s.cfg.Log.Infof(format, args...)
	}
}

// warnRefused logs a refused connection, unless one was logged less than
// RefusalLogEvery ago; then it only counts it.
func (s *Server) warnRefused(format string, args ...any) {
	s.refusedMu.Lock()
	now := time.Now()
	if !s.refusedLogged.IsZero() && now.Sub(s.refusedLogged) < s.cfg.RefusalLogEvery {
		if s.refusedDropped == 0 {
			s.refusedSince = now
		}
		s.refusedDropped++
		s.refusedMu.Unlock()
		return
	}
	dropped, since := s.refusedDropped, s.refusedSince
	s.refusedLogged, s.refusedDropped = now, 0
	s.refusedMu.Unlock()
	if dropped > 0 {
		format += "; %d more refused connections since %s were not logged"
		args = append(args, dropped, since.Format(time.TimeOnly))
	}
	s.logf("warn", format, args...)
}

// peer is who is on the other end of a connection.
type peer struct {
	pid, uid, gid int
	groups        []int // supplementary groups; nil if the kernel cannot say
}

func peerOf(c *net.UnixConn) (peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return peer{}, err
	}
	var p peer
	var opErr error
	err = raw.Control(func(fd uintptr) {
		var cred *unix.Ucred
		cred, opErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if opErr != nil {
			return
		}
		p = peer{pid: int(cred.Pid), uid: int(cred.Uid), gid: int(cred.Gid)}
		p.groups = peerGroups(int(fd))
	})
	if err == nil {
		err = opErr
	}
	return p, err
}

// peerGroups reads SO_PEERGROUPS (Linux 4.13+), which x/sys has no helper
// for. Failure just means supplementary groups are not considered.
func peerGroups(fd int) []int {
	buf := make([]uint32, 64)
	for range 3 {
		n := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch errno {
		case 0:
			out := make([]int, 0, n/4)
			for _, g := range buf[:n/4] {
				out = append(out, int(g))
			}
			return out
		case unix.ERANGE:
			buf = make([]uint32, n/4+1)
		default:
			return nil
		}
	}
	return nil
}

// allowed reports whether p may query at all.
func (s *Server) allowed(p peer) bool {
	if s.mayChange(p) {
		return true
	}
	return s.gid >= 0 && (p.gid == s.gid || slices.Contains(p.groups, s.gid))
}

// mayChange reports whether p may change state (ack): root or the
// daemon's own uid, never the query group alone.
func (s *Server) mayChange(p peer) bool { return p.uid == 0 || p.uid == s.euid }

// serveConn answers c's requests; reserved says it holds one of the slots
// kept for root and the daemon's uid.
func (s *Server) serveConn(ctx context.Context, c *net.UnixConn, p peer, reserved bool) {
	r := bufio.NewReaderSize(c, 4096)
	// The idle timeout runs from the last request understood: blank,
	// overlong or malformed lines do not keep a connection.
	fresh := true
	for {
		if fresh {
			c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
			fresh = false
		}
		line, err := readLine(r, MaxLine)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.logf("debug", "query connection from pid %d uid %d closed: no complete request within %v", p.pid, p.uid, s.cfg.IdleTimeout)
			bye := errorResponse("", "no complete request within %v; closing the connection", s.cfg.IdleTimeout)
			bye.Closing = true
			s.write(c, bye)
			return
		}
		if errors.Is(err, errTooLong) {
			if !s.write(c, errorResponse("", "request longer than %d bytes", MaxLine)) {
				return
			}
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logf("debug", "query connection from pid %d: %v", p.pid, err)
			}
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		req, err := ParseRequest(line)
		if err != nil {
			if !s.write(c, errorResponse("", "%v", err)) {
				return
			}
			continue
		}
		fresh = true
		s.logf("debug", "query %s from pid %d uid %d", req.Op, p.pid, p.uid)
		if req.Op == OpAck && !s.mayChange(p) {
			s.logf("warn", "ack of node %d from pid %d uid %d refused: only root or the daemon's uid may acknowledge fencing", req.Node, p.pid, p.uid)
			if !s.write(c, errorResponse(req.Op, "permission denied: uid %d may query groupd but not ack; only root may acknowledge fencing", p.uid)) {
				return
			}
			continue
		}
		if req.Op == OpWatch && reserved {
			s.warnRefused("watch from pid %d uid %d refused: it came on a connection reserved for fencing tools (all %d general ones are in use)", p.pid, p.uid, s.cfg.MaxConns)
			if !s.write(c, errorResponse(req.Op, "all %d general connections are in use, and a watch may not hold one reserved for fencing tools; try again later", s.cfg.MaxConns)) {
				return
			}
			continue
		}
		if req.Op == OpWatch {
			if n := s.watches.Add(1); n > int32(s.cfg.MaxWatches) {
				s.watches.Add(-1)
				s.warnRefused("watch from pid %d uid %d refused: all %d watches are in use", p.pid, p.uid, s.cfg.MaxWatches)
				if !s.write(c, errorResponse(req.Op, "too many watches (%d); try again later", s.cfg.MaxWatches)) {
					return
				}
				continue
			}
			defer s.watches.Add(-1)
			c.SetReadDeadline(time.Time{})
			s.watch(ctx, c, r)
			return
		}
		if !s.write(c, s.answer(ctx, req)) {
			return
		}
	}
}

func (s *Server) answer(ctx context.Context, req Request) Response {
	resp := Response{V: Version, Op: req.Op, OK: true}
	switch req.Op {
	case OpStatus:
		st := s.h.Status()
		resp.Status = &st
	case OpMembers:
		resp.Members = s.h.Status().Members
	case OpRecovery:
		resp.Recovery = s.h.Status().Recovery
	case OpBypass:
		b := s.h.Bypass(req.Node)
		resp.Bypass = &b
	case OpAck:
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		set, err := s.h.Ack(ctx, req.Node)
		if err != nil {
			return errorResponse(req.Op, "%v", err)
		}
		resp.Acked = &set
		s.logf("info", "fencing of node %d acknowledged through the query socket", req.Node)
	case OpDump:
		resp.Dump = s.h.Dump()
	}
	return resp
}

// watch streams events until the client closes its end (seen as a read
// returning), the server stops, or the handler ends the stream.
func (s *Server) watch(ctx context.Context, c net.Conn, r *bufio.Reader) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// Anything the client sends now is ignored; EOF means it left.
		io.Copy(io.Discard, r)
		cancel()
	}()
	events, err := s.h.Watch(ctx)
	if err != nil {
		s.write(c, errorResponse(OpWatch, "%v", err))
		return
	}
	if !s.write(c, Response{V: Version, Op: OpWatch, OK: true}) {
		return
	}
	for ev := range events {
		if !s.write(c, Response{V: Version, Op: OpWatch, OK: true, Event: &ev}) {
			return
		}
	}
	if ctx.Err() == nil {
		s.write(c, errorResponse(OpWatch, "watch stream ended by the daemon (stopping, or this client fell behind)"))
	}
}

func (s *Server) write(c net.Conn, resp Response) bool {
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(errorResponse(resp.Op, "cannot encode reply: %v", err))
	}
	c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, err = c.Write(append(b, '\n'))
	return err == nil
}

var errTooLong = errors.New("line too long")

// readLine reads one line without its newline. A line over max bytes is
// consumed up to its newline and reported as errTooLong, so the next line
// can still be read. A last line without a newline is returned as a line.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			line = append(line, chunk...)
			if len(line) > max+1 || (len(line) == max+1 && line[max] != '\n') {
				tooLong = true
				line = nil
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, errTooLong
			}
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		case errors.Is(err, io.EOF) && tooLong:
			return nil, errTooLong
		default:
			return nil, err
		}
	}
}
