package query

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// maxResponse bounds a reply line the client reads; a dump of the whole
// log ring is the largest.
const maxResponse = 64 << 20

// RemoteError is a request the daemon answered with an error.
type RemoteError struct {
	Op  Op
	Msg string
}

func (e *RemoteError) Error() string {
	if e.Op == "" {
		return "groupd: " + e.Msg
	}
	return fmt.Sprintf("groupd %s: %s", e.Op, e.Msg)
}

// Client is a connection to the daemon. Not safe for concurrent use.
type Client struct {
	path string
	conn *net.UnixConn
	r    *bufio.Reader
}

// errIdleClosed is a request the daemon did not read: it had closed the
// connection for idleness first.
var errIdleClosed = errors.New("groupd closed the idle connection")

// Dial connects to the daemon's socket.
func Dial(ctx context.Context, path string) (*Client, error) {
	c := &Client{path: path}
	if err := c.dial(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) dial(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return fmt.Errorf("connect to groupd at %s: %w", c.path, err)
	}
	c.conn, c.r = conn.(*net.UnixConn), bufio.NewReaderSize(conn, 64<<10)
	return nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends req (its version filled in) and reads the answer. A daemon-side
// error is a *RemoteError; any other error means the daemon's answer is
// unknown. If the daemon had closed the connection for being idle (its
// IdleTimeout) before it read req, Do connects again and sends req once
// more: the first was not acted on.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	if req.V == 0 {
		req.V = Version
	}
	resp, err := c.do(ctx, req)
	if !errors.Is(err, errIdleClosed) {
		return resp, err
	}
	c.conn.Close()
	if derr := c.dial(ctx); derr != nil {
		return nil, fmt.Errorf("%v; connecting again: %w", err, derr)
	}
	return c.do(ctx, req)
}

// do is one request on the current connection.
func (c *Client) do(ctx context.Context, req Request) (*Response, error) {
	stop := c.deadline(ctx)
	defer stop()
	if _, werr := c.conn.Write(req.Encode()); werr != nil {
		// The daemon may have refused the connection (permission, too
		// many clients) with a reply before closing it: that reply says
		// more than the broken pipe.
		if resp, err := c.read(); err == nil && !resp.OK {
			if resp.Closing {
				return nil, unread(req, resp)
			}
			return resp, &RemoteError{Op: resp.Op, Msg: resp.Error}
		}
		return nil, c.ctxErr(ctx, fmt.Errorf("send %s request: %w", req.Op, werr))
	}
	resp, err := c.read()
	if err != nil {
		return nil, c.ctxErr(ctx, fmt.Errorf("read %s reply: %w", req.Op, err))
	}
	if resp.Closing {
		return nil, unread(req, resp)
	}
	if !resp.OK {
		return resp, &RemoteError{Op: resp.Op, Msg: resp.Error}
	}
	return resp, nil
}

// Watch asks for the event stream and calls fn for every event until ctx
// ends (returns nil), fn returns an error (returned), or the stream ends.
func (c *Client) Watch(ctx context.Context, fn func(Event) error) error {
	if _, err := c.Do(ctx, Request{Op: OpWatch}); err != nil {
		return err
	}
	// Only now: Do clears the deadlines on its way out, also one set by a
	// ctx that ended meanwhile (AfterFunc then runs at once).
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		resp, err := c.read()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch stream: %w", err)
		}
		if !resp.OK {
			return &RemoteError{Op: resp.Op, Msg: resp.Error}
		}
		if resp.Event == nil {
			continue
		}
		if err := fn(*resp.Event); err != nil {
			return err
		}
	}
}

// unread is the error for req when the daemon's answer was the line it
// writes before closing an idle connection.
func unread(req Request, bye *Response) error {
	return fmt.Errorf("%s request not read (%s): %w", req.Op, bye.Error, errIdleClosed)
}

func (c *Client) read() (*Response, error) {
	line, err := readLine(c.r, maxResponse)
	if err != nil {
		return nil, err
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("malformed reply from groupd: %v", err)
	}
	if resp.V != Version {
		return nil, fmt.Errorf("groupd replied with protocol version %d, this tool speaks %d", resp.V, Version)
	}
	return &resp, nil
}

// deadline makes ctx's end interrupt blocked reads and writes.
func (c *Client) deadline(ctx context.Context) func() {
	// Only after ctx has ended, so the error we then see is ctx's.
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Now()) })
	return func() {
		stop()
		c.conn.SetDeadline(time.Time{})
	}
}

func (c *Client) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(err, ctx.Err())
	}
	return err
}

// Call dials, sends one request and closes: what a one-shot tool needs.
func Call(ctx context.Context, path string, req Request) (*Response, error) {
	delay := 20 * time.Millisecond
	for {
		resp, err := call(ctx, path, req)
		var re *RemoteError
		if !errors.As(err, &re) || re.Msg != msgTooMany {
			return resp, err
		}
		// Every connection is in use, for now: they are short, or bounded
		// by the daemon's idle timeout.
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return resp, fmt.Errorf("%w (and still so when %w)", err, ctx.Err())
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// call is one request on one connection, without Call's waiting for a
// free slot.
func call(ctx context.Context, path string, req Request) (*Response, error) {
	c, err := Dial(ctx, path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Do(ctx, req)
}
