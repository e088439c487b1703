// Package residual finds dlm and gfs kernel instances left behind by a
// cluster stack that went away.
//
// Such instances are uncontrolled: the daemons that coordinated them are
// gone, and a node that joins the groupd group while holding them would let
// other nodes use the same lockspaces and filesystems independently of it.
// The daemon therefore scans sysfs before it joins, and does not join while
// in doubt: a directory it cannot read, or a root without sys/kernel, is an
// error from Scan, on which the daemon stops.
package residual

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Kind says which sysfs directory an entry was found in.
type Kind string

const (
	KindDLM  Kind = "dlm"  // <root>/sys/kernel/dlm: a dlm lockspace
	KindGFS  Kind = "gfs"  // <root>/sys/fs/gfs: a gfs filesystem
	KindGFS2 Kind = "gfs2" // <root>/sys/fs/gfs2: a gfs2 filesystem
)

// Entry is one kernel instance found by Scan.
type Entry struct {
	Kind Kind
	Name string // the sysfs directory entry: lockspace or "cluster:fsname"
	Path string // full path, for the log line the caller writes
	// LockModule is the gfs/gfs2 lock module (lock_dlm, ...); empty for dlm.
	LockModule string
}

func (e Entry) String() string {
	if e.LockModule != "" {
		return fmt.Sprintf("%s %s (%s) at %s", e.Kind, e.Name, e.LockModule, e.Path)
	}
	return fmt.Sprintf("%s %s at %s", e.Kind, e.Name, e.Path)
}

// nolock is the gfs lock module of a filesystem mounted for one node only.
const nolock = "lock_nolock"

var dirs = []struct {
	kind Kind
	rel  string
}{
	{KindDLM, "sys/kernel/dlm"},
	{KindGFS, "sys/fs/gfs"},
	{KindGFS2, "sys/fs/gfs2"},
}

// Scan lists the dlm lockspaces and clustered gfs/gfs2 filesystems under
// root ("/" on a real system; a temporary directory in tests).
//
// A sysfs directory that does not exist means the module is not loaded:
// nothing there. But <root>/sys/kernel must exist (it does wherever sysfs
// is mounted), so that a mistyped root or a missing sysfs is not taken
// for "nothing loaded". A directory that exists but cannot be listed, or a
// gfs entry whose lock module cannot be read, is an error; the caller
// must not join the cluster then. An entry that goes away while it is
// read (unmounted meanwhile) is not. On error the entries found so far
// are returned too, so they can still be logged.
func Scan(root string) ([]Entry, error) {
	if root == "" {
		root = "/"
	}
	kernel := filepath.Join(root, "sys/kernel")
	if fi, err := os.Stat(kernel); err != nil || !fi.IsDir() {
		why := "not a directory"
		if err != nil {
			why = err.Error()
		}
		return nil, fmt.Errorf("no sysfs under %s (%s: %s), so cannot tell whether dlm/gfs state is left over", root, kernel, why)
	}
	var found []Entry
	for _, d := range dirs {
		dir := filepath.Join(root, d.rel)
		names, err := readDir(dir)
		if err != nil {
			return found, err
		}
		for _, name := range names {
			e := Entry{Kind: d.kind, Name: name, Path: filepath.Join(dir, name)}
			if d.kind != KindDLM {
				mod, err := lockModule(e.Path)
				if err != nil && gone(e.Path) {
					continue // unmounted since the directory was listed
				}
				if err != nil {
					return found, err
				}
				if mod == nolock {
					// Mounted for this node alone: nobody else can share it.
					continue
				}
				e.LockModule = mod
			}
			found = append(found, e)
		}
	}
	return found, nil
}

// gone reports whether path no longer exists at all.
func gone(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// readDir returns the names in dir. A missing dir is empty; anything else
// that stops us listing it is an error. Every name counts, those starting
// with a dot too: dlm takes any lockspace name.
func readDir(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// Only "nothing at that path" means nothing there; a dangling
		// symlink in its place is something we do not understand.
		if _, lerr := os.Lstat(dir); errors.Is(lerr, fs.ErrNotExist) {
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list %s, so cannot tell whether dlm/gfs state is left over: %w", dir, err)
	}
	names := make([]string, len(des))
	for i, de := range des {
		names[i] = de.Name()
	}
	return names, nil
}

func lockModule(entry string) (string, error) {
	p := filepath.Join(entry, "lock_module", "proto_name")
	// A fifo or device here would block or mislead the read; sysfs only
	// has regular files, so anything else is a reason for doubt.
	if fi, err := os.Stat(p); err == nil && !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file, so cannot tell whether %s is clustered", p, entry)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("cannot read the lock module of %s, so cannot tell whether it is clustered: %w", entry, err)
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" {
		return "", fmt.Errorf("%s is empty, so cannot tell whether %s is clustered", p, entry)
	}
	return mod, nil
}
