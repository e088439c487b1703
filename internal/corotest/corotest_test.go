package corotest

import (
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// The helper's own corosync answers corosync's tools, and is private: its
// node is the one corotest configured.
func TestStartAndTools(t *testing.T) {
	n := Start(t)
	out, err := Tool("corosync-quorumtool", "-l")
	if err != nil {
		t.Fatalf("%v\n%s", err, n.Log())
	}
	if !strings.Contains(out, NodeName) {
		t.Fatalf("quorumtool does not list %s:\n%s", NodeName, out)
	}
	n.Kill()
	if n.Running() {
		t.Fatal("corosync still running after Kill")
	}
	if _, err := Tool("corosync-cpgtool"); err == nil {
		t.Fatal("corosync-cpgtool succeeded with corosync killed")
	}
	n2 := Start(t)
	if n2 == n || !n2.Running() {
		t.Fatal("Start did not restart a killed corosync")
	}
}

func TestGroupNameUnique(t *testing.T) {
	a, b := GroupName(t), GroupName(t)
	if a == b || len(a) > 128 || len(a) == 0 {
		t.Fatalf("GroupName gave %q and %q", a, b)
	}
}
