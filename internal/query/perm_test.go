package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/groupd-go/groupd/internal/testbin"
)

const (
	helperEnv  = "GROUPD_QUERY_HELPER_SOCKET"
	helperOp   = "GROUPD_QUERY_HELPER_OP"   // "ack": ack node 3; else status
	helperOnce = "GROUPD_QUERY_HELPER_ONCE" // "1": one try, not Call's waiting for a slot
	nobody     = 65534
	queryGroup = 4242
)

// TestHelperProcess is not a test: permission tests run the test binary
// as another user and it queries the socket named in the environment,
// printing the outcome as JSON: "phase" or "acked" on success.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper for the permission tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := map[string]string{"uid": fmt.Sprint(os.Getuid())}
	req := Request{Op: OpStatus}
	if os.Getenv(helperOp) == "ack" {
		req = Request{Op: OpAck, Node: 3}
	}
	do := Call
	if os.Getenv(helperOnce) == "1" {
		do = call // one try
	}
	resp, err := do(ctx, path, req)
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		out["remote_error"] = re.Msg
	case err != nil:
		out["error"] = err.Error()
	case req.Op == OpAck:
		out["acked"] = resp.Acked.State
	default:
		out["phase"] = resp.Status.Phase
	}
	json.NewEncoder(os.Stdout).Encode(out)
	os.Exit(0)
}

// runAs runs the helper as uid nobody with the given groups and returns
// what it printed. env is added to the helper's environment.
func runAs(t *testing.T, bin, sock string, gid uint32, groups []uint32, env ...string) map[string]string {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^TestHelperProcess$")
	// The race runtime otherwise sleeps a second on exit.
	cmd.Env = append(os.Environ(), helperEnv+"="+sock, "GORACE=atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: gid, Groups: groups}}
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper process: %v (output %q)", err, b)
	}
	out := map[string]string{}
	line := b
	if i := strings.LastIndexByte(strings.TrimSpace(string(b)), '\n'); i >= 0 {
		line = b[i+1:]
	}
	if err := json.Unmarshal(line, &out); err != nil {
		t.Fatalf("helper printed %q: %v", b, err)
	}
	if out["uid"] != fmt.Sprint(nobody) {
		t.Fatalf("helper ran as uid %s, want %d", out["uid"], nobody)
	}
	return out
}

// permSetup makes a directory any user can reach, with a copy of the test
// binary any user can run (the go build dir is private to root).
func permSetup(t *testing.T) (dir, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("permission tests run the client as another user, which needs root")
	}
	dir, err := os.MkdirTemp("", "groupd-query-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin = testbin.CopyTo(t, dir, "query.test")
	return dir, bin
}

func TestPeerCredentials(t *testing.T) {
	dir, bin := permSetup(t)
	tests := []struct {
		name   string
		cfg    Config
		gid    uint32
		groups []uint32
		want   string // "ok", "denied" (reply), "refused" (cannot connect)
	}{
		// The socket is writable by all here, so only the credential check
		// stands between nobody and the daemon.
		{name: "non-root peer is denied", cfg: Config{Mode: 0o666}, gid: nobody, want: "denied"},
		{name: "peer in the allowed group (primary)", cfg: Config{Mode: 0o666, Group: fmt.Sprint(queryGroup)}, gid: queryGroup, want: "ok"},
		{name: "peer in the allowed group (supplementary)", cfg: Config{Mode: 0o666, Group: fmt.Sprint(queryGroup)}, gid: nobody, groups: []uint32{queryGroup}, want: "ok"},
		{name: "peer outside the allowed group", cfg: Config{Mode: 0o666, Group: fmt.Sprint(queryGroup)}, gid: nobody, groups: []uint32{queryGroup + 1}, want: "denied"},
		// With the default mode the file system already keeps nobody out.
		{name: "default mode 0600", cfg: Config{}, gid: nobody, want: "refused"},
		{name: "group mode 0660 lets the group connect", cfg: Config{Group: fmt.Sprint(queryGroup)}, gid: nobody, groups: []uint32{queryGroup}, want: "ok"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Path = filepath.Join(dir, fmt.Sprintf("s%d.sock", i))
			srv := serve(t, tt.cfg, newFakeHandler())
			out := runAs(t, bin, srv.Addr(), tt.gid, tt.groups)
			switch tt.want {
			case "ok":
				if out["phase"] != "joined" {
					t.Errorf("allowed peer got %v", out)
				}
			case "denied":
				if !strings.Contains(out["remote_error"], "permission denied") {
					t.Errorf("peer got %v, want a permission denied reply", out)
				}
			case "refused":
				if !strings.Contains(out["error"], "permission denied") || out["remote_error"] != "" {
					t.Errorf("peer got %v, want connect to fail with EACCES", out)
				}
			}
			// root is always served
			if _, err := Call(ctx5s(t), srv.Addr(), Request{Op: OpStatus}); err != nil {
				t.Errorf("root refused: %v", err)
			}
		})
	}
}

// A peer that may not query is told so even while every slot is taken,
// rather than "too many", which Call would retry until its timeout.
func TestDeniedWhileFull(t *testing.T) {
	dir, bin := permSetup(t)
	srv := serve(t, Config{Path: filepath.Join(dir, "full.sock"), Mode: 0o666, MaxConns: 1, ReservedConns: 1}, newFakeHandler())
	ctx := ctx5s(t)
	holdSlots(ctx, t, srv.Addr(), 2) // every slot, root's reserved one too
	start := time.Now()
	out := runAs(t, bin, srv.Addr(), nobody, nil)
	if !strings.Contains(out["remote_error"], "permission denied") {
		t.Errorf("non-member while the server is full got %v (after %v), want a permission denied reply", out, time.Since(start))
	}
}

// The query group may read but not ack: an ack changes fencing state, so
// it is for root (and the daemon's own uid) only.
func TestAckNeedsRoot(t *testing.T) {
	dir, bin := permSetup(t)
	h := newFakeHandler()
	srv := serve(t, Config{Path: filepath.Join(dir, "ack.sock"), Group: fmt.Sprint(queryGroup)}, h)

	if out := runAs(t, bin, srv.Addr(), queryGroup, nil); out["phase"] != "joined" {
		t.Fatalf("group member's status: %v, want it served", out)
	}
	out := runAs(t, bin, srv.Addr(), queryGroup, nil, helperOp+"=ack")
	if !strings.Contains(out["remote_error"], "permission denied") || out["acked"] != "" {
		t.Errorf("group member's ack: %v, want a permission denied reply", out)
	}
	h.mu.Lock()
	acked := append([]uint32(nil), h.acked...)
	h.mu.Unlock()
	if len(acked) != 0 {
		t.Fatalf("the handler recorded acks %v from a group member", acked)
	}

	resp, err := Call(ctx5s(t), srv.Addr(), Request{Op: OpAck, Node: 3})
	if err != nil || resp.Acked == nil || resp.Acked.State != "acked" {
		t.Errorf("root's ack: %+v, %v", resp, err)
	}
}

// Readers in the query group cannot take every slot: once the general ones
// are in use they are refused, while root (fence_tool, group_tool ack)
// still gets one of the reserved slots.
func TestReservedConnsForRoot(t *testing.T) {
	dir, bin := permSetup(t)
	srv := serve(t, Config{Path: filepath.Join(dir, "busy.sock"), Group: fmt.Sprint(queryGroup), MaxConns: 1, ReservedConns: 1}, newFakeHandler())
	ctx := ctx5s(t)
	hog, err := Dial(ctx, srv.Addr()) // holds the one general slot
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	if _, err := hog.Do(ctx, Request{Op: OpStatus}); err != nil {
		t.Fatal(err)
	}
	if out := runAs(t, bin, srv.Addr(), queryGroup, nil, helperOnce+"=1"); !strings.Contains(out["remote_error"], "too many") {
		t.Errorf("a group reader with the general slots in use got %v, want a too-many reply", out)
	}
	if _, err := Call(ctx, srv.Addr(), Request{Op: OpStatus}); err != nil {
		t.Errorf("root with the general slots in use: %v, want a reserved slot", err)
	}
	hog.Close()
	// Call waits for the freed slot.
	if out := runAs(t, bin, srv.Addr(), queryGroup, nil); out["phase"] != "joined" {
		t.Fatalf("a group reader once the general slot was freed: %v", out)
	}
}
