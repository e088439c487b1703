package selffence

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/groupd-go/groupd/internal/residual"
)

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		in      string
		want    []string // expanded with name "node 2" and id 2
		wantErr string
	}{
		{in: DefaultCommand, want: []string{"fence_node", "-O", "node 2"}},
		{in: "/usr/local/bin/fence-me --id={nodeid} --host {name}", want: []string{"/usr/local/bin/fence-me", "--id=2", "--host", "node 2"}},
		{in: `sh -c 'echo {name} > /tmp/x; exit 3'`, want: []string{"sh", "-c", "echo node 2 > /tmp/x; exit 3"}},
		{in: `a "b c" d\ e "x\"y"`, want: []string{"a", "b c", "d e", `x"y`}},
		{in: `prog ''`, want: []string{"prog", ""}},
		{in: `sh -c 'echo ${HOME}'`, want: []string{"sh", "-c", "echo ${HOME}"}},
		{in: "  fence_node\t{name}  ", want: []string{"fence_node", "node 2"}},
		{in: "", wantErr: "empty"},
		{in: "   ", wantErr: "empty"},
		{in: "fence_node {nmae}", wantErr: "unknown placeholder {nmae}: placeholders are {name} and {nodeid}"},
		{in: "fence_node -O {Name}", wantErr: "unknown placeholder {Name}: did you mean {name}?"},
		{in: "fence_node -O {NAME}", wantErr: "unknown placeholder {NAME}: did you mean {name}?"},
		{in: "fence-me --id={NodeId}", wantErr: "unknown placeholder {NodeId}: did you mean {nodeid}?"},
		{in: "fence-me --id={node_id}", wantErr: "unknown placeholder {node_id}: did you mean {nodeid}?"},
		{in: "fence-me --host={node-name}", wantErr: "unknown placeholder {node-name}: did you mean {name}?"},
		{in: "fence-me {host}", wantErr: "unknown placeholder {host}"},
		{in: `sh -c 'fence-me {nodeid2}'`, wantErr: "unknown placeholder {nodeid2}"},
		{in: `sh -c "awk '{print}'"`, wantErr: "put a space inside them"},
		// Braces that are not a placeholder pass through.
		{in: `sh -c 'awk "{ print }" /x; find / -exec echo {} \; ; echo {a,b}'`, want: []string{"sh", "-c", `awk "{ print }" /x; find / -exec echo {} \; ; echo {a,b}`}},
		{in: `sh -c 'echo ${NodeName} {name}'`, want: []string{"sh", "-c", "echo ${NodeName} node 2"}},
		{in: `sh -c 'echo ${name} ${nodeid} {nodeid}'`, want: []string{"sh", "-c", "echo ${name} ${nodeid} 2"}},
		{in: `sh -c 'fence-me --host "$1"' sh {name}`, want: []string{"sh", "-c", `fence-me --host "$1"`, "sh", "node 2"}},
		{in: "fence_node 'oops", wantErr: "unterminated single quote"},
		{in: `fence_node "oops`, wantErr: "unterminated double quote"},
		{in: `fence_node oops\`, wantErr: "trailing backslash"},
		{in: "/usr/sbin/fence_{name} -o off", wantErr: "the program may not hold a placeholder"},
		{in: "{nodeid}", wantErr: "the program may not hold a placeholder"},
		{in: `/opt/${ARCH}/fence-me {name}`, want: []string{"/opt/${ARCH}/fence-me", "node 2"}},
		// No shell runs these: ${name} would reach the agent as it stands.
		{in: "fence_ipmilan --ip=${name}-ipmi -o reboot", wantErr: "runs without a shell, so it would get ${name} as it stands; write {name}"},
		{in: "fence-me --id ${nodeid}", wantErr: "write {nodeid}"},
		{in: "fence-me --host ${NODE_NAME}", wantErr: "write {name}"},
		{in: `fence-me --opt '${OTHER}'`, want: []string{"fence-me", "--opt", "${OTHER}"}},
		{in: `/bin/bash -c 'fence-me --host "${name}" {name}'`, want: []string{"/bin/bash", "-c", `fence-me --host "${name}" node 2`}},
		{in: `/usr/bin/env bash -c 'echo ${name}; fence-me {name}'`, want: []string{"/usr/bin/env", "bash", "-c", "echo ${name}; fence-me node 2"}},
	}
	for _, tt := range tests {
		tpl, err := ParseTemplate(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTemplate(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", tt.in, err)
			continue
		}
		if got := tpl.Expand("node 2", 2); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseTemplate(%q).Expand = %q, want %q", tt.in, got, tt.want)
		}
		if str := tpl.String(); !strings.HasPrefix(str, strconv.Quote(tt.want[0])) ||
			(len(tt.want) > 1 && tt.want[len(tt.want)-1] != "" && strings.Contains(str, tt.want[len(tt.want)-1])) {
			t.Errorf("String() = %q, want the program %q and no arguments", str, tt.want[0])
		}
	}
}

// script writes an executable shell script into a temp dir and returns a
// template running it with our name and id.
func script(t *testing.T, body string) (Template, string) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "fence-self")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tpl, err := ParseTemplate(p + " -O {name} --nodeid {nodeid}")
	if err != nil {
		t.Fatal(err)
	}
	return tpl, dir
}

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		exit     int
		output   string
		wantErr  string
		checkLog bool
	}{
		{name: "success passes name and id", body: `echo "fencing $2 id $4"; echo "$@" > "$(dirname "$0")/args"`, exit: 0, output: "fencing node1 id 7\n", checkLog: true},
		{name: "non-zero exit is an error with the status", body: "echo agent failed >&2; exit 3", exit: 3, output: "agent failed\n", wantErr: "exited with status 3"},
		{name: "killed by a signal", body: "kill -9 $$", exit: -1, wantErr: "signal: killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, dir := script(t, tt.body)
			res, err := Run(context.Background(), tpl, "node1", 7)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Run error = %v, want %q", err, tt.wantErr)
			}
			if res.ExitCode != tt.exit {
				t.Errorf("ExitCode = %d, want %d", res.ExitCode, tt.exit)
			}
			if string(res.Output) != tt.output {
				t.Errorf("Output = %q, want %q", res.Output, tt.output)
			}
			if res.Argv[0] != filepath.Join(dir, "fence-self") || res.Argv[2] != "node1" || res.Argv[4] != "7" {
				t.Errorf("Argv = %q", res.Argv)
			}
			if tt.checkLog {
				b, err := os.ReadFile(filepath.Join(dir, "args"))
				if err != nil || string(b) != "-O node1 --nodeid 7\n" {
					t.Errorf("the command saw args %q (%v)", b, err)
				}
			}
		})
	}
}

func TestRunMissingCommand(t *testing.T) {
	for _, cmd := range []string{"groupd-no-such-fence-agent {name}", "/nonexistent/fence {name}"} {
		tpl, err := ParseTemplate(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := tpl.Check(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%q: Check = %v, want ErrNotFound", cmd, err)
		}
		res, err := Run(context.Background(), tpl, "node1", 1)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%q: Run error = %v, want ErrNotFound", cmd, err)
		}
		if !strings.Contains(err.Error(), strings.Fields(cmd)[0]) {
			t.Errorf("error %q does not name the missing program", err)
		}
		if res.ExitCode != -1 {
			t.Errorf("ExitCode = %d for a command that never ran, want -1", res.ExitCode)
		}
	}
}

// A program in PATH without the execute bit is named as such, not as
// missing: the operator looking for it would find it there.
func TestCheckNotExecutable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fence_plain"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	tpl, err := ParseTemplate("fence_plain {name}")
	if err != nil {
		t.Fatal(err)
	}
	err = tpl.Check()
	if !errors.Is(err, ErrNotExecutable) || !strings.Contains(err.Error(), "not executable") || !strings.Contains(err.Error(), filepath.Join(dir, "fence_plain")) {
		t.Errorf("Check of a program without the execute bit = %v", err)
	}
	// Named by its path, the same.
	tpl, err = ParseTemplate(filepath.Join(dir, "fence_plain") + " {name}")
	if err != nil {
		t.Fatal(err)
	}
	if err := tpl.Check(); !errors.Is(err, ErrNotExecutable) {
		t.Errorf("Check of %s without the execute bit = %v", filepath.Join(dir, "fence_plain"), err)
	}
}

func TestRunNeedsName(t *testing.T) {
	tpl, _ := script(t, "exit 0")
	if _, err := Run(context.Background(), tpl, "", 7); err == nil || !strings.Contains(err.Error(), "node name") {
		t.Errorf("Run with an unknown name = %v, want an error about the node name", err)
	}
	byID, err := ParseTemplate("true {nodeid}")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), byID, "", 7); err != nil {
		t.Errorf("a command that does not use {name} did not run without a name: %v", err)
	}
	// ${name} is the shell's variable, not our placeholder.
	shellVar, err := ParseTemplate(`sh -c 'exit 0; echo ${name}' {nodeid}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), shellVar, "", 7); err != nil {
		t.Errorf("a command with the shell's ${name} did not run without a name: %v", err)
	}
}

// Fence commands carry credentials: neither String nor Run's errors may
// show the arguments.
func TestArgumentsNotShown(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fence-self")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tpl, err := ParseTemplate(p + " -p s3cret -n {name}")
	if err != nil {
		t.Fatal(err)
	}
	if str := tpl.String(); strings.Contains(str, "s3cret") || !strings.Contains(str, p) {
		t.Errorf("String() = %q: want the program, not the password", str)
	}
	_, err = Run(context.Background(), tpl, "node1", 1)
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "status 3") {
		t.Errorf("Run error = %v: want the exit status, not the password", err)
	}
	if _, err := ParseTemplate("fence_x -p s3cret {Name}"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("ParseTemplate error = %v: want one, without the password", err)
	}
	if _, err := ParseTemplate("fence_x -p 's3cret"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("ParseTemplate error = %v: want one, without the password", err)
	}
}

// A command that outlives its deadline is killed with every process it
// started: a wrapper's fence agent must not act after we gave up on it.
func TestRunTimeoutKillsProcessGroup(t *testing.T) {
	tpl, dir := script(t, `(sleep 1; touch "$(dirname "$0")/late") & wait`)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Run(ctx, tpl, "node1", 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run past its deadline = %v, want DeadlineExceeded", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(dir, "late")); err == nil {
		t.Error("a child of the command acted after the command was killed")
	}
}

// A wrapper that fails while the agent it started goes on: the agent is
// killed too, since the run is reported as failed.
func TestRunFailureKillsProcessGroup(t *testing.T) {
	tpl, dir := script(t, `(sleep 1; touch "$(dirname "$0")/late") >/dev/null 2>&1 & exit 4`)
	if _, err := Run(context.Background(), tpl, "node1", 1); err == nil || !strings.Contains(err.Error(), "status 4") {
		t.Fatalf("Run = %v, want exit status 4", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(dir, "late")); err == nil {
		t.Error("a child of the failed command acted after Run reported the failure")
	}
}

// A command that exits 0 while a helper it started keeps its output open
// (a daemonizing agent) fenced all the same: success, and the helper is
// left alone.
func TestRunSuccessWithHelperHoldingOutput(t *testing.T) {
	old := waitDelay
	waitDelay = 200 * time.Millisecond
	defer func() { waitDelay = old }()
	tpl, dir := script(t, `(sleep 1; touch "$(dirname "$0")/late") & echo fenced; exit 0`)
	res, err := Run(context.Background(), tpl, "node1", 1)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %+v, %v; want success", res, err)
	}
	// It touches the file a second in; give a loaded machine time.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "late")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the helper of a successful fence command was killed")
		}
	}
}

func TestRunTimeout(t *testing.T) {
	tpl, _ := script(t, "exec sleep 30")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, tpl, "node1", 1)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run past its deadline = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v to stop a hung command", d)
	}
}

func TestRunKeepsTailOfLongOutput(t *testing.T) {
	tpl, _ := script(t, `head -c 200000 /dev/zero | tr '\0' x; echo; echo LAST LINE`)
	res, err := Run(context.Background(), tpl, "node1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Output) != MaxOutput || !res.Truncated {
		t.Errorf("kept %d bytes, truncated=%v; want %d and true", len(res.Output), res.Truncated, MaxOutput)
	}
	if !strings.HasSuffix(string(res.Output), "LAST LINE\n") {
		t.Errorf("output does not end with the last line the command printed")
	}
}

type fakeKiller struct {
	log   string // file the kill is recorded in, shared with the script
	err   error
	calls []uint32
}

func (k *fakeKiller) KillNode(nodeid uint32, reason string) error {
	k.calls = append(k.calls, nodeid)
	f, err := os.OpenFile(k.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		f.WriteString("kill\n")
		f.Close()
	}
	return k.err
}

func TestExecute(t *testing.T) {
	tests := []struct {
		policy  residual.Policy
		killErr error
		want    string // order of actions
		wantErr bool
	}{
		{policy: residual.PolicyFence, want: "kill\nfence\n"},
		{policy: residual.PolicyFence, killErr: errors.New("cfg says no"), want: "kill\nfence\n", wantErr: true},
		{policy: residual.PolicyKick, want: "kill\n"},
		{policy: residual.PolicyStay, want: ""},
	}
	for _, tt := range tests {
		tpl, dir := script(t, `echo fence >> "$(dirname "$0")/log"`)
		k := &fakeKiller{log: filepath.Join(dir, "log"), err: tt.killErr}
		o := Execute(context.Background(), tt.policy, k, tpl, "node1", 4)
		b, _ := os.ReadFile(k.log)
		if string(b) != tt.want {
			t.Errorf("%v (kill error %v): actions %q, want %q", tt.policy, tt.killErr, b, tt.want)
		}
		if len(k.calls) > 0 && k.calls[0] != 4 {
			t.Errorf("%v: killed node %d, want our node 4", tt.policy, k.calls[0])
		}
		if (o.Err() != nil) != tt.wantErr {
			t.Errorf("%v: Err() = %v, want error %v", tt.policy, o.Err(), tt.wantErr)
		}
		if o.Ran != tt.policy.RunsCommand() || (o.Killed != (tt.policy.Kills() && tt.killErr == nil)) {
			t.Errorf("%v: outcome %+v", tt.policy, o)
		}
	}
}

// A missing command under the fence policy still kills our node (so other
// nodes fence it) and reports the missing command.
func TestExecuteMissingCommand(t *testing.T) {
	tpl, _ := ParseTemplate("groupd-no-such-fence-agent {name}")
	k := &fakeKiller{log: filepath.Join(t.TempDir(), "log")}
	o := Execute(context.Background(), residual.PolicyFence, k, tpl, "node1", 4)
	if !o.Killed || !errors.Is(o.Err(), ErrNotFound) {
		t.Errorf("outcome %+v, want killed and ErrNotFound", o)
	}
}
