package residual

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tree builds a fake sysfs under a temp dir. Keys are paths relative to
// the root; a value ending in "/" makes a directory, "->target" a symlink,
// "|fifo" a named pipe, anything else a file with that content. The
// directory sys/kernel, which every sysfs has, is made too unless the spec
// says what it is, or has the key noSysfs.
func tree(t *testing.T, spec map[string]string) string {
	t.Helper()
	root := t.TempDir()
	if _, ok := spec["sys/kernel"]; !ok {
		if _, ok := spec[noSysfs]; !ok {
			if err := os.MkdirAll(filepath.Join(root, "sys/kernel"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	delete(spec, noSysfs)
	for rel, v := range spec {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(v, "/"):
			err := os.MkdirAll(p, 0o755)
			if err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(v, "->"):
			if err := os.Symlink(v[2:], p); err != nil {
				t.Fatal(err)
			}
		case v == "|fifo":
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// noSysfs, as a key of a tree spec, leaves sys/kernel out.
const noSysfs = "no sysfs"

func TestScan(t *testing.T) {
	tests := []struct {
		name    string
		spec    map[string]string
		want    []string // "kind name module", in scan order
		wantErr string   // substring; "" means no error
	}{
		{
			name: "no dlm or gfs directories: modules not loaded",
			spec: map[string]string{"sys/kernel": "/"},
		},
		{
			name:    "no sysfs at all: a wrong root is not an empty one",
			spec:    map[string]string{noSysfs: ""},
			wantErr: "no sysfs under",
		},
		{
			name:    "sys/kernel is a file",
			spec:    map[string]string{"sys/kernel": "x"},
			wantErr: "no sysfs under",
		},
		{
			name: "empty directories",
			spec: map[string]string{"sys/kernel/dlm": "/", "sys/fs/gfs": "/", "sys/fs/gfs2": "/"},
		},
		{
			name: "a dlm lockspace",
			spec: map[string]string{"sys/kernel/dlm/clvmd/id": "12345\n"},
			want: []string{"dlm clvmd "},
		},
		{
			name: "gfs2 with lock_dlm counts",
			spec: map[string]string{"sys/fs/gfs2/alpha:data/lock_module/proto_name": "lock_dlm\n"},
			want: []string{"gfs2 alpha:data lock_dlm"},
		},
		{
			name: "gfs with lock_dlm counts",
			spec: map[string]string{"sys/fs/gfs/alpha:old/lock_module/proto_name": "lock_dlm\n"},
			want: []string{"gfs alpha:old lock_dlm"},
		},
		{
			name: "gfs2 with lock_nolock is local and ignored",
			spec: map[string]string{"sys/fs/gfs2/local/lock_module/proto_name": "lock_nolock\n"},
		},
		{
			name: "names starting with a dot count",
			spec: map[string]string{
				"sys/kernel/dlm/.hidden":                "/",
				"sys/fs/gfs2/.x/lock_module/proto_name": "lock_dlm",
			},
			want: []string{"dlm .hidden ", "gfs2 .x lock_dlm"},
		},
		{
			name: "everything found is reported, nolock still skipped",
			spec: map[string]string{
				"sys/kernel/dlm/ls1":                     "/",
				"sys/kernel/dlm/ls2":                     "/",
				"sys/fs/gfs2/c:a/lock_module/proto_name": "lock_dlm",
				"sys/fs/gfs2/c:b/lock_module/proto_name": "lock_nolock",
			},
			want: []string{"dlm ls1 ", "dlm ls2 ", "gfs2 c:a lock_dlm"},
		},
		{
			name:    "a file where the dlm directory should be cannot be listed",
			spec:    map[string]string{"sys/kernel/dlm": "not a directory"},
			wantErr: "cannot list",
		},
		{
			name:    "a file where sys/fs should be",
			spec:    map[string]string{"sys/fs": "oops"},
			wantErr: "cannot list",
		},
		{
			name:    "the dlm directory is a dangling symlink",
			spec:    map[string]string{"sys/kernel": "/", "sys/kernel/dlm": "->/nonexistent/dlm"},
			wantErr: "cannot list",
		},
		{
			name:    "the dlm directory is a symlink loop",
			spec:    map[string]string{"sys/kernel/dlm": "->dlm"},
			wantErr: "cannot list",
		},
		{
			name:    "gfs2 entry without proto_name",
			spec:    map[string]string{"sys/fs/gfs2/c:a/": "/"},
			wantErr: "cannot read the lock module",
		},
		{
			name:    "gfs2 proto_name is a dangling symlink",
			spec:    map[string]string{"sys/fs/gfs2/c:a/lock_module/proto_name": "->/nonexistent"},
			wantErr: "cannot read the lock module",
		},
		{
			name:    "gfs2 proto_name is a fifo: error, not a hang",
			spec:    map[string]string{"sys/fs/gfs2/c:a/lock_module/proto_name": "|fifo"},
			wantErr: "not a regular file",
		},
		{
			name:    "gfs2 proto_name empty",
			spec:    map[string]string{"sys/fs/gfs2/c:a/lock_module/proto_name": "\n"},
			wantErr: "is empty",
		},
		{
			name:    "gfs2 entry is a plain file",
			spec:    map[string]string{"sys/fs/gfs2/c:a": "x"},
			wantErr: "cannot read the lock module",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tree(t, tt.spec)
			got, err := Scan(root)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Scan: unexpected error %v", err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Scan error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			var have []string
			for _, e := range got {
				have = append(have, string(e.Kind)+" "+e.Name+" "+e.LockModule)
				if !strings.HasPrefix(e.Path, root) || filepath.Base(e.Path) != e.Name {
					t.Errorf("entry %v: path %q does not name the entry under the root", e, e.Path)
				}
			}
			if strings.Join(have, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Scan found %q, want %q", have, tt.want)
			}
		})
	}
}

// Entries found before an unreadable directory are still returned, so the
// caller can log what it saw along with the error.
func TestScanReturnsPartialResultsWithError(t *testing.T) {
	root := tree(t, map[string]string{
		"sys/kernel/dlm/ls1": "/",
		"sys/fs/gfs":         "file",
	})
	got, err := Scan(root)
	if err == nil {
		t.Fatal("Scan: want an error for sys/fs/gfs being a file")
	}
	if len(got) != 1 || got[0].Name != "ls1" {
		t.Errorf("Scan returned %v with the error, want the dlm lockspace ls1", got)
	}
}

func TestEntryPathIsReal(t *testing.T) {
	root := tree(t, map[string]string{"sys/kernel/dlm/ls1": "/"})
	got, err := Scan(root)
	if err != nil || len(got) != 1 {
		t.Fatalf("Scan = %v, %v", got, err)
	}
	if fi, err := os.Stat(got[0].Path); err != nil || !fi.IsDir() {
		t.Errorf("entry path %s does not exist as reported: %v", got[0].Path, err)
	}
	if !strings.Contains(got[0].String(), got[0].Path) {
		t.Errorf("String() %q does not include the path", got[0].String())
	}
}

func TestPolicy(t *testing.T) {
	var zero Policy
	if zero != PolicyFence {
		t.Errorf("zero Policy is %v, want fence (the default)", zero)
	}
	tests := []struct {
		in           string
		want         Policy
		kills, fence bool
	}{
		{"fence", PolicyFence, true, true},
		{"kick", PolicyKick, true, false},
		{"stay", PolicyStay, false, false},
	}
	for _, tt := range tests {
		var p Policy
		if err := p.UnmarshalText([]byte(tt.in)); err != nil || p != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tt.in, p, err, tt.want)
		}
		b, err := p.MarshalText()
		if err != nil || string(b) != tt.in {
			t.Errorf("MarshalText(%v) = %q, %v", p, b, err)
		}
		if p.Kills() != tt.kills || p.RunsCommand() != tt.fence {
			t.Errorf("%v: Kills=%v RunsCommand=%v, want %v %v", p, p.Kills(), p.RunsCommand(), tt.kills, tt.fence)
		}
	}
	for _, bad := range []string{"", "Fence", "reboot", "stay "} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", bad)
		}
	}
	if _, err := Policy(7).MarshalText(); err == nil {
		t.Error("MarshalText of an invalid policy succeeded")
	}
}
