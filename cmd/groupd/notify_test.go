package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSdNotify(t *testing.T) {
	abstract := fmt.Sprintf("@groupd-unit-%d", os.Getpid())
	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), abstract} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			t.Setenv("NOTIFY_SOCKET", name)
			ok, err := sdNotify("READY=1")
			if !ok || err != nil {
				t.Fatalf("sdNotify = %v, %v", ok, err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			n, err := conn.Read(buf)
			if err != nil || string(buf[:n]) != "READY=1" {
				t.Errorf("received %q, %v; want READY=1", buf[:n], err)
			}
		})
	}
}

func TestSdNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if ok, err := sdNotify("READY=1"); ok || err != nil {
		t.Errorf("sdNotify without NOTIFY_SOCKET = %v, %v; want nothing done", ok, err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if _, err := sdNotify("READY=1"); err == nil {
		t.Error("a relative NOTIFY_SOCKET must be an error")
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if _, err := sdNotify("READY=1"); err == nil {
		t.Error("a socket nobody listens on must be an error")
	}
}
