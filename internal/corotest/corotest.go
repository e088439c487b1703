// Package corotest starts a real, private, single-node corosync for tests.
//
// A test binary that uses it calls Main (or MainWithExamples) from
// TestMain. Run as root, Main re-executes the binary under unshare(1) in
// new mount and network namespaces: corosync's IPC sockets are abstract
// unix sockets, which are per network namespace, so each test binary talks
// only to the corosync it started, and several packages can test in
// parallel. /run, /var/lib/corosync and /var/log/corosync are private
// tmpfs mounts there.
//
// Start gives the test a running corosync, starting it when needed (again
// after a test killed it). Without root or without corosync installed the
// test is skipped with the reason, unless GROUPD_REQUIRE_COROSYNC=1 is set
// (as CI does), in which case it fails.
package corotest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	envInNamespace = "COROTEST_NAMESPACE"
	// EnvRequire makes an unavailable corosync a test failure, not a skip.
	EnvRequire = "GROUPD_REQUIRE_COROSYNC"

	// NodeID and NodeName are the identity of the test corosync's node.
	NodeID   = 1
	NodeName = "node1"
	// ClusterName is the totem cluster_name of the test corosync.
	ClusterName = "gotest"
)

var (
	mu      sync.Mutex
	current *Node
	workDir string
	nsErr   error // why there is no private namespace, if there is none
)

// Main runs the tests of a package that needs corosync and returns the exit
// code for os.Exit. See the package doc.
func Main(m *testing.M) int { return run(m, false) }

// MainWithExamples is Main for a package whose examples talk to corosync
// too. An example is not given a testing.T, so it can neither start
// corosync nor skip itself: MainWithExamples starts corosync before the
// tests run, whichever are selected, and when none can run it skips the
// examples (go test -skip), or, with GROUPD_REQUIRE_COROSYNC=1, lets them
// fail. A test that stops or kills corosync must start it again before it
// ends (t.Cleanup with Start), as the examples run after the tests.
func MainWithExamples(m *testing.M) int { return run(m, true) }

func run(m *testing.M, examples bool) int {
	if os.Getenv(envInNamespace) == "" {
		if code, done := reexec(); done {
			return code
		}
	} else if os.Getenv(envInNamespace) == "1" {
		nsErr = setupNamespace()
		os.Setenv(envInNamespace, "child") // our own children must not redo it
	}
	if examples && !prepareExamples() {
		return 1
	}
	code := m.Run()
	mu.Lock()
	if current != nil {
		current.stop()
		current = nil
	}
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	mu.Unlock()
	return code
}

// prepareExamples starts corosync for the examples or, when it cannot run
// and is not required, makes go test skip them. False if it can do
// neither.
func prepareExamples() bool {
	flag.Parse() // m.Run would; the skip flag must be set before it runs
	why := Unavailable()
	if why == nil {
		mu.Lock()
		n, err := start()
		if err == nil {
			current = n
		}
		mu.Unlock()
		why = err
	}
	if why == nil || Required() {
		return true // if required, the tests and the examples fail, and say why
	}
	skip := flag.Lookup("test.skip")
	expr := "^Example"
	if skip != nil && skip.Value.String() != "" {
		expr = skip.Value.String() + "|" + expr
	}
	if skip == nil || skip.Value.Set(expr) != nil {
		fmt.Fprintf(os.Stderr, "corotest: cannot skip the examples, which need corosync: %v\n", why)
		return false
	}
	fmt.Fprintf(os.Stderr, "corotest: examples skipped, no private corosync: %v\n", why)
	return true
}

// InNamespace reports whether this process runs in the private namespaces
// Main set up (or inherited them from a test binary that did).
func InNamespace() bool { return os.Getenv(envInNamespace) != "" && nsErr == nil }

func reexec() (int, bool) {
	if os.Geteuid() != 0 {
		nsErr = errors.New("not root: a private corosync needs root")
		return 0, false
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		nsErr = fmt.Errorf("unshare(1) not found: %w", err)
		return 0, false
	}
	flags := []string{"--mount", "--net", "--propagation", "private"}
	// Root may still be refused namespaces (an unprivileged container):
	// that is no corosync tier here, not a failure of the tests.
	if out, err := exec.Command(unshare, append(flags, "--", "true")...).CombinedOutput(); err != nil {
		nsErr = fmt.Errorf("cannot make private namespaces (%v): %s", err, strings.TrimSpace(string(out)))
		return 0, false
	}
	cmd := exec.Command(unshare, append(append(flags, "--"), os.Args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envInNamespace+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), true
		}
		fmt.Fprintf(os.Stderr, "corotest: cannot re-run the tests in a private namespace: %v\n", err)
		return 1, true
	}
	return 0, true
}

func setupNamespace() error {
	if err := loopbackUp(); err != nil {
		return err
	}
	for _, dir := range []string{"/run", "/var/lib/corosync", "/var/log/corosync"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
		}
	}
	return nil
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// Node is the running test corosync.
type Node struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// Unavailable says why no private corosync can run here, or is nil.
func Unavailable() error {
	if nsErr != nil {
		return nsErr
	}
	if os.Getenv(envInNamespace) == "" {
		return errors.New("corotest.Main was not called from TestMain")
	}
	if _, err := exec.LookPath("corosync"); err != nil {
		return fmt.Errorf("corosync is not installed (make deps): %w", err)
	}
	return nil
}

// Required reports whether the environment demands the corosync tier.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Skip skips (or, when Required, fails) t when no private corosync can run.
func Skip(t testing.TB) {
	t.Helper()
	if err := Unavailable(); err != nil {
		if Required() {
			t.Fatalf("the corosync tier is required (%s=1) but cannot run: %v", EnvRequire, err)
		}
		t.Skipf("no private corosync: %v", err)
	}
}

// Start returns the package's running corosync, starting it if it is not
// running. It skips or fails t as Skip does when that is impossible.
func Start(t testing.TB) *Node {
	t.Helper()
	Skip(t)
	mu.Lock()
	defer mu.Unlock()
	if current != nil && current.Running() {
		return current
	}
	n, err := start()
	if err != nil {
		t.Fatalf("start corosync: %v", err)
	}
	current = n
	return n
}

// Running reports whether the corosync process is alive.
func (n *Node) Running() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Exited is closed when the corosync process has exited.
func (n *Node) Exited() <-chan struct{} { return n.exited }

// Pid is corosync's process id.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// Kill sends SIGKILL to corosync and waits until it has exited.
func (n *Node) Kill() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// Log returns what corosync has logged so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}

func (n *Node) stop() {
	if !n.Running() {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		n.Kill()
	}
}

const configTemplate = `# written by corotest for a private test corosync
totem {
	version: 2
	cluster_name: %s
	transport: knet
	crypto_cipher: none
	crypto_hash: none
	token: 1000
}
logging {
	to_stderr: yes
	to_logfile: no
	to_syslog: no
	timestamp: on
}
quorum {
	provider: corosync_votequorum
}
nodelist {
	node {
		name: %s
		nodeid: %d
		ring0_addr: 127.0.0.1
	}
}
`

func start() (*Node, error) {
	if workDir == "" {
		d, err := os.MkdirTemp("", "corotest-")
		if err != nil {
			return nil, err
		}
		workDir = d
	}
	conf := filepath.Join(workDir, "corosync.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(configTemplate, ClusterName, NodeName, NodeID)), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(workDir, fmt.Sprintf("corosync-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("corosync", "-f", "-c", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	n := &Node{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		n.waitErr = cmd.Wait()
		logf.Close()
		close(n.exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if !n.Running() {
			return nil, fmt.Errorf("corosync exited at start (%v):\n%s", n.waitErr, n.Log())
		}
		if strings.Contains(n.Log(), "ready to provide service") && toolOK() {
			return n, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.Kill()
	return nil, fmt.Errorf("corosync not ready after 20s:\n%s", n.Log())
}

func toolOK() bool {
	return exec.Command("corosync-cpgtool").Run() == nil
}

// Tool runs one of corosync's command-line tools (corosync-cpgtool,
// corosync-quorumtool, ...) against the test corosync and returns its
// standard output.
func Tool(name string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// Stop stops the package's corosync if it runs, so that a test can see
// what a client sees when there is none.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if current != nil {
		current.stop()
		current = nil
	}
}

var uniq struct {
	sync.Mutex
	n int
}

// GroupName returns a group name unique to this run and test, at most 128
// bytes, so that tests never see each other's groups.
func GroupName(t testing.TB) string {
	uniq.Lock()
	uniq.n++
	n := uniq.n
	uniq.Unlock()
	name := fmt.Sprintf("t%d-%d-%s", os.Getpid(), n, t.Name())
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '.'
		}
		return r
	}, name)
	if len(name) > 100 {
		name = name[:100]
	}
	return name
}

// Output collects a child process's output while a test reads it; give it
// to exec.Cmd as Stdout or Stderr. The buffer is a field, not embedded, so
// that exec's copier cannot reach its ReadFrom past the lock.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// CPUTime is the CPU time this process has used so far, user and system:
// tests compare it across an idle second to catch a spinning loop.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
