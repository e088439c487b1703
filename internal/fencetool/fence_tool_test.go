package fencetool

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The stubs: a two-node cluster (n1, this node, id 1; n2, id 2). Files in
// the stub directory change what they say:
//
//	down          corosync is not running
//	bypass.N      "CODE REASON": group_tool bypass N's exit code and output
//	              (default: node 1 may bypass, others must be fenced)
//	bypass.N.next replaces bypass.N after its first use
//
//	recovery.json, members.json
//	              what group_tool recovery and members print (default: [])
//
// group_tool ack appends the node to acks and closes the recovery sets
// (recovery.json goes; recovery.json.next, if there, takes its place); the agent appends its
// arguments, one line per run, and its open descriptors to agent.fds.
const stubCmapctl = `#!/bin/bash
[ -e "$STUB/down" ] && { echo "Failed to initialize the cmap API. Error CS_ERR_LIBRARY" >&2; exit 1; }
case "$*" in
*this_node_id*) echo "runtime.votequorum.this_node_id (u32) = 1" ;;
*nodelist.node*) printf 'nodelist.node.0.nodeid (u32) = 1\nnodelist.node.0.name (str) = n1\nnodelist.node.1.nodeid (u32) = 2\nnodelist.node.1.name (str) = n2\n' ;;
esac
`

const stubQuorumtool = `#!/bin/bash
[ -e "$STUB/down" ] && exit 1
if [ -e "$STUB/inquorate" ]; then echo "Quorate:          No"; else echo "Quorate:          Yes"; fi
`

const stubGroupTool = `#!/bin/bash
[ "$1" = --socket ] && shift 2
case "$1:$2" in
bypass:id:* | ack:id:*) set -- "$1" "${2#id:}" ;;
bypass:* | ack:*) echo "group_tool stub: $1 $2: node not given as id:N" >&2; exit 2 ;;
esac
case "$1" in
bypass)
	f=$STUB/bypass.$2
	if [ -e "$f" ]; then
		read -r code reason <"$f"
		[ -e "$f.next" ] && mv "$f.next" "$f"
	elif [ "$2" = 1 ]; then
		code=0 reason="node 1 may skip fencing"
	else
		code=1 reason="node $2 must be fenced: not a member"
	fi
	echo "$reason"
	exit "$code"
	;;
ack)
	echo "$2" >>"$STUB/acks"
	rm -f "$STUB/recovery.json"
	[ -e "$STUB/recovery.json.next" ] && mv "$STUB/recovery.json.next" "$STUB/recovery.json"
	echo "acked node $2"
	;;
recovery | members) if [ -e "$STUB/$1.json" ]; then cat "$STUB/$1.json"; else echo '[]'; fi ;;
esac
`

const stubAgent = `#!/bin/bash
printf '%s|' "$@" >>"$STUB/agent.log"; echo >>"$STUB/agent.log"
ls /proc/$$/fd >"$STUB/agent.fds"
echo "agent done"
`

type fenceTool struct {
	t    *testing.T
	stub string // the stub directory
	path string // PATH with the stubs first
}

func newFenceTool(t *testing.T) *fenceTool {
	t.Helper()
	stub := t.TempDir()
	bin := filepath.Join(stub, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"corosync-cmapctl": stubCmapctl, "corosync-quorumtool": stubQuorumtool,
		"group_tool": stubGroupTool, "agent": stubAgent,
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &fenceTool{t: t, stub: stub, path: bin + ":" + os.Getenv("PATH")}
}

// run runs fence_tool with args (no config file, no post-join delay
// unless args say otherwise) and returns its standard error and exit code.
func (f *fenceTool) run(args ...string) (string, int) {
	f.t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "../../scripts/fence_tool")
	cmd := exec.Command(script, append([]string{"-c", "/dev/null", "-d", "0"}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+f.path, "STUB="+f.stub, "FENCE_TOOL_STATE_DIR="+filepath.Join(f.stub, "state"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		f.t.Fatal(err)
	}
	return stderr.String(), code
}

func (f *fenceTool) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(f.stub, name))
	return string(b)
}

func (f *fenceTool) write(name, content string) {
	if err := os.WriteFile(filepath.Join(f.stub, name), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// Node 2 may not bypass: join fences it with the agent, the template's
// quotes and placeholders honoured, acknowledges it and succeeds. The
// agent does not hold join's lock.
func TestJoinFencesAndAcks(t *testing.T) {
	f := newFenceTool(t)
	out, code := f.run("-a", `agent --host={name} 'two words' --id {nodeid} a&b`, "join")
	if code != 0 {
		t.Fatalf("join exit %d:\n%s", code, out)
	}
	if got := f.file("agent.log"); got != "--host=n2|two words|--id|2|a&b|\n" {
		t.Errorf("agent ran with %q", got)
	}
	if got := f.file("acks"); got != "2\n" {
		t.Errorf("acks %q, want node 2 once", got)
	}
	for _, fd := range strings.Fields(f.file("agent.fds")) {
		if fd == "9" {
			t.Error("the agent inherited join's lock (descriptor 9)")
		}
	}
}

// A template that cannot be split (an unbalanced quote) or is blank stops
// join before anything is fenced.
func TestBadTemplateFencesNothing(t *testing.T) {
	for _, tmpl := range []string{`agent --host={name} 'x`, `agent "{name}`, "   ", `agent {name} \`} {
		f := newFenceTool(t)
		out, code := f.run("-a", tmpl, "join")
		if code != 1 || f.file("agent.log") != "" || f.file("acks") != "" {
			t.Errorf("template %q: exit %d, agent ran %q, acks %q:\n%s", tmpl, code, f.file("agent.log"), f.file("acks"), out)
		}
		if !strings.Contains(out, "agent command") {
			t.Errorf("template %q: no word on the template:\n%s", tmpl, out)
		}
	}
}

// Without corosync, join and status say so.
func TestCorosyncDown(t *testing.T) {
	f := newFenceTool(t)
	f.write("down", "")
	out, code := f.run("-a", "agent {name}", "join")
	if code != 1 || !strings.Contains(out, "corosync is not running here") || f.file("agent.log") != "" {
		t.Errorf("join without corosync: exit %d:\n%s", code, out)
	}
	out, code = f.run("status")
	if code != 0 || !strings.Contains(out, "corosync: not running") {
		t.Errorf("status without corosync: exit %d:\n%s", code, out)
	}
}

// Bad option values are usage errors (exit 2); numbers are decimal even
// with leading zeros.
func TestOptionValues(t *testing.T) {
	f := newFenceTool(t)
	for _, args := range [][]string{{"-a"}, {"-r", "x", "status"}, {"-r", "0", "status"}, {"--agent-timeout", "0", "status"}, {"-d", "1.5", "status"}, {"-r", "99999999999", "status"},
		// An empty --opt= is no value either, not the default.
		{"--agent=", "join"}, {"-a", "agent {name}", "--socket=", "join"}, {"-a", "agent {name}", "--log=", "join"}, {"--retries=", "status"}} {
		if out, code := f.run(args...); code != 2 || f.file("agent.log") != "" {
			t.Errorf("%q: exit %d, agent ran %q; want exit 2 and no fencing:\n%s", args, code, f.file("agent.log"), out)
		}
	}
	if out, code := f.run("-r", "08", "--agent-timeout", "010", "-a", "agent {name}", "join"); code != 0 || !strings.Contains(out, "attempt 1 of 8") {
		t.Errorf("-r 08: exit %d:\n%s", code, out)
	}
}

// A join killed by SIGTERM (systemd's start timeout, say) while its agent
// runs leaves a "join failed" record that says so, not "exit 0".
func TestJoinKilledLeavesRecord(t *testing.T) {
	f := newFenceTool(t)
	f.write("bin/slow", "#!/bin/bash\ntouch \"$STUB/slow.started\"\nsleep 10\n")
	os.Chmod(filepath.Join(f.stub, "bin/slow"), 0o755)
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command(filepath.Join(filepath.Dir(file), "../../scripts/fence_tool"), "-c", "/dev/null", "-d", "0", "-a", "slow {name}", "join")
	cmd.Env = append(os.Environ(), "PATH="+f.path, "STUB="+f.stub, "FENCE_TOOL_STATE_DIR="+filepath.Join(f.stub, "state"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for !fileExists(filepath.Join(f.stub, "slow.started")) {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if rec := f.file("state/domain"); !strings.HasPrefix(rec, "join failed") || !strings.Contains(rec, "(interrupted)") {
		t.Errorf("record after SIGTERM: %q, want a failed join, interrupted", rec)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// A config file that cannot be read or holds a bad line is a usage error
// (exit 2), like a bad option, and fences nothing; an absent default
// config is fine, and the command line overrides the file.
func TestConfigFile(t *testing.T) {
	f := newFenceTool(t)
	conf := filepath.Join(f.stub, "fence_tool.conf")
	// Each bad config names an agent, so that only its one fault can be
	// what stops it.
	for _, bad := range []string{
		"agent = agent {name}\nretries 2\n",              // not key = value
		"agent = agent {name}\nagnet = agent {name}\n",   // unknown key
		"agent = agent {name}\nretries = three\n",        // not a number
		"agent = agent {name}\nrequire_quorum = maybe\n", // not a boolean
		"agent = agent {name}\nrequire_quorum =\n",       // no value (groupd.conf rejects it too)
		"agent = agent {name}\nretries=0",                // last line without a newline
	} {
		f.write("fence_tool.conf", bad)
		out, code := f.run("-c", conf, "join")
		if code != 2 || f.file("agent.log") != "" {
			t.Errorf("config %q: exit %d, agent ran %q, want exit 2 and no fencing:\n%s", bad, code, f.file("agent.log"), out)
		}
	}
	for _, args := range [][]string{{"-c", filepath.Join(f.stub, "missing"), "status"}, {"--config=", "status"}, {"-c"}, {"-c", f.stub, "status"}} {
		if out, code := f.run(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2:\n%s", args, code, out)
		}
	}
	if os.Geteuid() != 0 {
		f.write("fence_tool.conf", "retries = 2\n")
		os.Chmod(conf, 0)
		if out, code := f.run("-c", conf, "status"); code != 2 || !strings.Contains(out, "cannot read") {
			t.Errorf("unreadable config: exit %d, want 2:\n%s", code, out)
		}
	}

	// Blanks at the end of a line and CRLF line ends are not part of the
	// values.
	f.write("fence_tool.conf", "# fencing\r\n  agent = agent {name} from-config \t\r\nretries=2  \r\nrequire_quorum = Yes\r\n")
	os.Chmod(conf, 0o644)
	out, code := f.run("-c", conf, "-r", "4", "join")
	if code != 0 || f.file("agent.log") != "n2|from-config|\n" || !strings.Contains(out, "attempt 1 of 4") {
		t.Errorf("good config: exit %d, agent ran %q:\n%s", code, f.file("agent.log"), out)
	}

	// require_quorum takes the booleans /etc/groupd.conf takes: while this
	// node is not quorate, on defers fencing (join fails), off fences.
	f.write("inquorate", "")
	for value, fences := range map[string]bool{"on": false, "ON": false, "1": false, "true": false, "off": true, "no": true, "0": true} {
		f.write("agent.log", "")
		f.write("fence_tool.conf", "agent = agent {name}\nrequire_quorum = "+value+"\n")
		out, code := f.run("-c", conf, "join")
		want := 1 // the join failed: node 2 is not fenced
		if fences {
			want = 0
		}
		if fenced := f.file("agent.log") != ""; fenced != fences || code != want {
			t.Errorf("require_quorum = %s, not quorate: exit %d, agent ran %q; want exit %d:\n%s", value, code, f.file("agent.log"), want, out)
		}
	}
}

// When groupd on this node stops vouching for it in the middle of a join
// (it answers "cannot tell" about node 2, and then about us too), join
// gives up without fencing node 2.
func TestJoinGivesUpWhenOwnGroupdGoes(t *testing.T) {
	f := newFenceTool(t)
	f.write("bypass.2", "2 could not tell: groupd is not in the group\n")
	f.write("bypass.1", "0 node 1 may skip fencing\n")
	f.write("bypass.1.next", "2 could not tell: groupd stopped\n")
	out, code := f.run("-a", "agent {name}", "join")
	if code != 1 || f.file("agent.log") != "" || !strings.Contains(out, "can no longer vouch") {
		t.Errorf("exit %d, agent ran %q:\n%s", code, f.file("agent.log"), out)
	}
}

// A recovery set can record more than one failed groupd run of its node.
// After join fenced node 2 (whose groupd ran as pid 1234), a set whose
// runs are all ones join fenced is the failure its own fencing caused,
// acknowledged without fencing again; a set that also records a later run
// (the node came back, groupd got the same pid, and failed before its
// hello) is a new failure, fenced again, however the runs are listed.
func TestRecheckLooksAtEveryRunOfASet(t *testing.T) {
	const start = "2026-11-25T03:00:00Z"
	members := `[
  {
    "nodeid": 2,
    "name": "n2",
    "pid": 1234,
    "hello": true,
    "hello_start": "` + start + `",
    "stale_hello": false
  }
]`
	set := func(runs string) string {
		return `[
  {
    "nodeid": 2,
    "name": "n2",
    "reason": "nodedown",
    "state": "waiting-for-fencing",
    "pid": 1234,
    "start": "` + start + `",
    "runs": ` + runs + `,
    "more_runs": false,
    "failures": 2
  }
]`
	}
	for _, tt := range []struct {
		name, runs string
		again      bool
	}{
		{"only the fenced run", `[
      {
        "pid": 1234,
        "start": "` + start + `"
      }
    ]`, false},
		{"a later run with the same pid", `[
      {
        "pid": 1234,
        "start": "` + start + `"
      },
      {
        "pid": 1234
      }
    ]`, true},
		{"the later run listed first", `[
      {
        "pid": 1234
      },
      {
        "pid": 1234,
        "start": "` + start + `"
      }
    ]`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFenceTool(t)
			f.write("members.json", members)
			// The set our fencing causes shows once we acknowledged it.
			f.write("recovery.json.next", set(tt.runs))
			out, code := f.run("-a", "agent {name}", "join")
			fenced := strings.Count(f.file("agent.log"), "n2|")
			if !tt.again {
				if code != 0 || fenced != 1 {
					t.Fatalf("join exit %d, node 2 fenced %d times, want 0 and once:\n%s", code, fenced, out)
				}
				return
			}
			if code != 0 || fenced != 2 || !strings.Contains(out, "did not run when this join fenced it") {
				t.Fatalf("join exit %d, node 2 fenced %d times, want 0 and twice (again for the later run):\n%s", code, fenced, out)
			}
		})
	}
}
