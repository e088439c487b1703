package residual

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/groupd-go/groupd/internal/testbin"
)

const (
	scanHelperEnv = "GROUPD_RESIDUAL_HELPER_ROOT"
	nobody        = 65534
)

// scanOutcome is what the helper process prints.
type scanOutcome struct {
	UID        int      `json:"uid"`
	Found      []string `json:"found"`
	Err        string   `json:"err"`
	Permission bool     `json:"permission"` // Err wraps fs.ErrPermission
}

// TestScanHelper is not a test: TestScanUnreadable runs the test binary as
// nobody, and it scans the root named in the environment and prints the
// outcome as JSON.
func TestScanHelper(t *testing.T) {
	root := os.Getenv(scanHelperEnv)
	if root == "" {
		t.Skip("helper for TestScanUnreadable")
	}
	found, err := Scan(root)
	out := scanOutcome{UID: os.Getuid(), Found: []string{}}
	for _, e := range found {
		out.Found = append(out.Found, e.Path)
	}
	if err != nil {
		out.Err = err.Error()
		out.Permission = errors.Is(err, fs.ErrPermission)
	}
	json.NewEncoder(os.Stdout).Encode(out)
	os.Exit(0)
}

// scanAsNobody runs Scan(root) in the test binary, copied to dir, as uid
// and gid nobody.
func scanAsNobody(t *testing.T, bin, root string) scanOutcome {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^TestScanHelper$")
	// The race runtime otherwise sleeps a second on exit.
	cmd.Env = append(os.Environ(), scanHelperEnv+"="+root, "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper process: %v (output %q)", err, b)
	}
	line := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	var out scanOutcome
	if err := json.Unmarshal([]byte(line), &out); err != nil {
		t.Fatalf("helper printed %q: %v", b, err)
	}
	if out.UID != nobody {
		t.Fatalf("helper ran as uid %d, want %d", out.UID, nobody)
	}
	return out
}

// A sysfs directory the daemon cannot read (EACCES, not a missing one)
// must be an error, never "nothing found": the scan runs as nobody over
// directories of mode 0700 owned by root. Each case hides state that a
// readable tree shows, so "nothing found" would be a lie.
func TestScanUnreadable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs the scan as nobody over root's directories, which needs root")
	}
	dir, err := os.MkdirTemp("", "groupd-residual-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := testbin.CopyTo(t, dir, "residual.test")

	tests := []struct {
		name    string
		spec    map[string]string
		private string // made mode 0700, owned by root
		wantErr string
	}{{
		name:    "dlm directory",
		spec:    map[string]string{"sys/kernel/dlm/clvmd/id": "12345\n"},
		private: "sys/kernel/dlm",
		wantErr: "cannot list",
	}, {
		name:    "sys/fs",
		spec:    map[string]string{"sys/fs/gfs2/c:data/lock_module/proto_name": "lock_dlm\n"},
		private: "sys/fs",
		wantErr: "cannot list",
	}, {
		name:    "a gfs2 entry's lock_module",
		spec:    map[string]string{"sys/fs/gfs2/c:data/lock_module/proto_name": "lock_dlm\n"},
		private: "sys/fs/gfs2/c:data/lock_module",
		wantErr: "cannot read the lock module",
	}}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(dir, fmt.Sprint(i))
			if err := os.MkdirAll(filepath.Join(root, "sys/kernel"), 0o755); err != nil {
				t.Fatal(err)
			}
			for rel, content := range tt.spec {
				p := filepath.Join(root, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// Readable, nobody finds the state: the helper sees the tree.
			if out := scanAsNobody(t, bin, root); out.Err != "" || len(out.Found) != 1 {
				t.Fatalf("readable tree: nobody's scan found %v, error %q; want one entry", out.Found, out.Err)
			}
			if err := os.Chmod(filepath.Join(root, tt.private), 0o700); err != nil {
				t.Fatal(err)
			}
			out := scanAsNobody(t, bin, root)
			if out.Err == "" {
				t.Fatalf("with %s unreadable Scan found %v and no error; want an error", tt.private, out.Found)
			}
			if !strings.Contains(out.Err, tt.wantErr) || !out.Permission {
				t.Errorf("Scan error %q (wraps fs.ErrPermission: %v), want one saying %q and wrapping it", out.Err, out.Permission, tt.wantErr)
			}
			if len(out.Found) != 0 {
				t.Errorf("Scan also reported %v", out.Found)
			}
		})
	}
}
