// Package testbin helps tests that run their own test binary as another
// user (nobody), to check what an unprivileged peer or reader gets.
package testbin

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// CopyTo copies the running test binary into dir as name, mode 0755, and
// returns its path: go test's build directory is private to root, so
// another user could not run the original.
func CopyTo(t testing.TB, dir, name string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}
