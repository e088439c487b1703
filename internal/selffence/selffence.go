// Package selffence carries out the residual-state policy on our own node:
// kill it from the cluster and run the self-fence command.
//
// The command is a template, not a shell line: it is split into arguments
// once, and {name} and {nodeid} are substituted inside each argument, so a
// node name never becomes more than one argument. A shell is still
// available by writing one; pass the name to it as an argument rather than
// inside its script, where it would be shell code:
// sh -c 'fence_x --host "$1"' sh {name}. ${name} inside such a script is
// the shell's variable and is left alone.
//
// Fence commands often carry credentials in their arguments, so nothing
// this package prints or returns as text (String, errors) shows more than
// the program's name.
package selffence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/groupd-go/groupd/internal/residual"
)

// DefaultCommand fences our node through the configured fence agents.
const DefaultCommand = "fence_node -O {name}"

// MaxOutput bounds the command output kept in a Result; the tail is kept,
// since that is where tools say what went wrong.
const MaxOutput = 64 << 10

// ErrNotFound is returned (wrapped) when the command's program does not exist.
var ErrNotFound = errors.New("self-fence command not found")

// ErrNotExecutable is returned (wrapped) when the program exists but may
// not be executed (no execute bit, or access denied).
var ErrNotExecutable = errors.New("self-fence command cannot be run")

// Template is a parsed self-fence command line.
type Template struct {
	args []string
}

// placeholder matches a word in braces, which is what a placeholder looks
// like whatever its spelling: {name}, {Name}, {node_id}, {node-name}. A
// leading $ makes it a shell variable (${HOME}), left alone; braces around
// anything that is not one word ({}, {a,b}, { print }) are not placeholders.
var placeholder = regexp.MustCompile(`(\$?)\{([A-Za-z][A-Za-z0-9_.-]*)\}`)

// ParseTemplate splits s into arguments. Single quotes keep everything
// literal; double quotes and backslashes work as in a shell, without
// expansions. Placeholders are {name} (our node name) and {nodeid}; any
// other {word} ({Name}, {NodeId}, {node_id}) is rejected, and so is
// ${name} or ${nodeid} where no shell would expand it (an argument of a
// program that is not a shell), so a typo is caught at startup rather
// than left in the command when fencing is needed.
func ParseTemplate(s string) (Template, error) {
	args, err := split(s)
	if err != nil {
		return Template{}, fmt.Errorf("self-fence command: %w", err)
	}
	if len(args) == 0 {
		return Template{}, fmt.Errorf("self-fence command is empty")
	}
	shell := false // a shell runs what follows, and expands ${word}
	for i, a := range args {
		for _, m := range placeholder.FindAllStringSubmatch(a, -1) {
			if m[1] == "$" && !shell {
				if p := meant(m[2]); p != "" {
					return Template{}, fmt.Errorf("self-fence command %s: ${%s}: the command runs without a shell, "+
						"so it would get ${%s} as it stands; write {%s}", program(args), m[2], m[2], p)
				}
			}
			if err := checkPlaceholder(m[1] == "$", m[2]); err != nil {
				return Template{}, fmt.Errorf("self-fence command %s: %w", program(args), err)
			}
			if i == 0 && m[1] == "" {
				// Check looks the program up at startup, before our
				// node's name is known.
				return Template{}, fmt.Errorf("self-fence command %s: the program may not hold a placeholder; "+
					"pass {name} and {nodeid} as arguments", program(args))
			}
		}
		shell = shell || shells[filepath.Base(a)]
	}
	return Template{args: args}, nil
}

// shells are the programs that expand ${word} in the script they are given.
var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true, "ksh": true, "mksh": true, "zsh": true, "busybox": true}

// meant returns the placeholder word probably stands for: "name",
// "nodeid", or "" for neither.
func meant(word string) string {
	switch strings.ToLower(strings.NewReplacer("_", "", "-", "", ".", "").Replace(word)) {
	case "name", "nodename":
		return "name"
	case "nodeid", "id":
		return "nodeid"
	}
	return ""
}

// checkPlaceholder accepts {name} and {nodeid} and a shell's ${word}.
func checkPlaceholder(shellVar bool, word string) error {
	if shellVar || word == "name" || word == "nodeid" {
		return nil
	}
	hint := ""
	if p := meant(word); p != "" {
		hint = "did you mean {" + p + "}? "
	}
	return fmt.Errorf("unknown placeholder {%s}: %splaceholders are {name} and {nodeid}, in lower case "+
		"(for braces the command itself needs, put a space inside them, as in '{ print }')", word, hint)
}

// String returns the program's name and how many arguments follow, never
// the arguments themselves: they may hold a password.
func (t Template) String() string {
	switch len(t.args) {
	case 0:
		return `""`
	case 1:
		return program(t.args)
	}
	if len(t.args) == 2 {
		return program(t.args) + " (and 1 argument, not shown)"
	}
	return fmt.Sprintf("%s (and %d arguments, not shown)", program(t.args), len(t.args)-1)
}

// program returns the quoted program name of argv, for messages.
func program(argv []string) string {
	if len(argv) == 0 {
		return `""`
	}
	return strconv.Quote(argv[0])
}

// Expand substitutes our node's name and id, leaving shell variables
// (${name}) alone, as ParseTemplate does.
func (t Template) Expand(name string, nodeid uint32) []string {
	id := strconv.FormatUint(uint64(nodeid), 10)
	out := make([]string, len(t.args))
	for i, a := range t.args {
		out[i] = placeholder.ReplaceAllStringFunc(a, func(m string) string {
			switch m {
			case "{name}":
				return name
			case "{nodeid}":
				return id
			}
			return m // ${...}, or a placeholder ParseTemplate refused
		})
	}
	return out
}

// usesName reports whether the command holds {name} (a shell's ${name}
// is not ours), so that an unknown node name would reach it empty.
func (t Template) usesName() bool {
	for _, a := range t.args {
		for _, m := range placeholder.FindAllStringSubmatch(a, -1) {
			if m[1] == "" && m[2] == "name" {
				return true
			}
		}
	}
	return false
}

// Check verifies the program exists and may be run, so that a daemon can
// warn about a missing command long before it has to fence itself.
func (t Template) Check() error {
	if len(t.args) == 0 {
		return fmt.Errorf("self-fence command is empty")
	}
	_, err := lookPath(t.args[0])
	return err
}

func lookPath(prog string) (string, error) {
	p, err := exec.LookPath(prog)
	if err != nil {
		switch {
		case errors.Is(err, exec.ErrDot):
			return "", fmt.Errorf("%w: %q is found only through a relative directory in PATH (%s), and such programs are not run; give its absolute path", ErrNotFound, prog, os.Getenv("PATH"))
		case errors.Is(err, fs.ErrPermission):
			return "", fmt.Errorf("%w: %s: %v", ErrNotExecutable, prog, err)
		case strings.Contains(prog, "/"):
			return "", fmt.Errorf("%w: %s: %v", ErrNotFound, prog, err)
		}
		for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
			if dir == "" {
				continue
			}
			if fi, err := os.Stat(filepath.Join(dir, prog)); err == nil && fi.Mode().IsRegular() {
				return "", fmt.Errorf("%w: %s is in PATH but not executable (mode %v); fix its mode or configure another command", ErrNotExecutable, filepath.Join(dir, prog), fi.Mode().Perm())
			}
		}
		return "", fmt.Errorf("%w: %q is not in PATH (%s); install it or configure another command", ErrNotFound, prog, os.Getenv("PATH"))
	}
	return p, nil
}

// Result describes one run of the command.
type Result struct {
	Argv []string
	// ExitCode is the exit status, or -1 when the command did not start
	// or was ended by a signal.
	ExitCode  int
	Output    []byte // stdout and stderr interleaved, at most MaxOutput
	Truncated bool   // earlier output was dropped to respect MaxOutput
	Duration  time.Duration
}

// waitDelay is how long Run waits, once the command has exited, for what
// it started to let go of its output. A variable for tests.
var waitDelay = 5 * time.Second

// Run runs the command for our node and waits for it. ctx bounds the run;
// when it ends the command is killed. A non-nil error means fencing cannot
// be assumed to have happened: not found, did not start, non-zero exit,
// killed. The Result is filled in as far as the run got, for the log.
func Run(ctx context.Context, t Template, name string, nodeid uint32) (Result, error) {
	if len(t.args) == 0 {
		return Result{ExitCode: -1}, fmt.Errorf("self-fence command is empty")
	}
	if name == "" && t.usesName() {
		return Result{ExitCode: -1}, fmt.Errorf("self-fence command %s needs our node name, which is unknown", t)
	}
	argv := t.Expand(name, nodeid)
	res := Result{Argv: argv, ExitCode: -1}
	path, err := lookPath(argv[0])
	if err != nil {
		return res, err
	}
	out := &tail{max: MaxOutput}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Stdout = out
	cmd.Stderr = out
	// The command runs in a process group of its own, and the whole group
	// is killed when ctx ends: a fence agent started by a wrapper script
	// must not go on, and perhaps power-cycle the node, after we reported
	// the fencing failed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != syscall.ESRCH {
			return err
		}
		return os.ErrProcessDone // it ended just as the deadline came
	}
	// A grandchild that keeps our pipes open must not hold us forever.
	cmd.WaitDelay = waitDelay
	start := time.Now()
	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		// It exited 0; what it left holding our pipes (a helper that
		// daemonized) does not make the fence a failure, nor is it killed.
		err = nil
	}
	if err != nil && cmd.Process != nil {
		// Failed, for whatever reason: whatever it left running in its
		// group (an agent behind a wrapper that gave up) must not act
		// after we report that fencing did not happen.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	res.Duration = time.Since(start)
	res.Output, res.Truncated = out.bytes()
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case err == nil:
		return res, nil
	case ctx.Err() != nil:
		return res, fmt.Errorf("self-fence command %s killed: %w", program(argv), ctx.Err())
	case res.ExitCode > 0:
		return res, fmt.Errorf("self-fence command %s exited with status %d", program(argv), res.ExitCode)
	default:
		return res, fmt.Errorf("self-fence command %s: %w", program(argv), err)
	}
}

// Killer removes a node from the cluster (cman kill).
type Killer interface {
	KillNode(nodeid uint32, reason string) error
}

// Outcome is what Execute did, for the caller to log.
type Outcome struct {
	Policy  residual.Policy
	Killed  bool  // the kill was requested and succeeded
	KillErr error // the kill failed
	Ran     bool  // the command was run (it may still have failed)
	Result  Result
	CmdErr  error // the command could not be run or failed
}

// Err joins the failures of the outcome, nil when all that the policy asked
// for was done. Under every policy but stay the daemon exits non-zero
// anyway, without joining.
func (o Outcome) Err() error { return errors.Join(o.KillErr, o.CmdErr) }

// Execute applies policy p to our node after residual state was found:
// kill our node (fence, kick), then run the command (fence). The command
// runs even when the kill failed, since fencing is what actually protects
// the other nodes. Under stay nothing is done here; the caller simply
// never joins the group.
func Execute(ctx context.Context, p residual.Policy, k Killer, t Template, name string, nodeid uint32) Outcome {
	o := Outcome{Policy: p}
	if p.Kills() {
		if err := k.KillNode(nodeid, "residual dlm/gfs kernel state found at startup"); err != nil {
			o.KillErr = fmt.Errorf("kill our node %d (%s) from the cluster: %w", nodeid, name, err)
		} else {
			o.Killed = true
		}
	}
	if p.RunsCommand() {
		o.Ran = true
		o.Result, o.CmdErr = Run(ctx, t, name, nodeid)
	}
	return o
}

// tail is an io.Writer keeping the last max bytes written to it.
type tail struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (w *tail) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if over := w.buf.Len() - w.max; over > 0 {
		w.buf.Next(over)
		w.truncated = true
	}
	return len(p), nil
}

func (w *tail) bytes() ([]byte, bool) {
	return bytes.Clone(w.buf.Bytes()), w.truncated
}

// split breaks a command line into arguments with shell-like quoting.
func split(s string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		inArg bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inArg = true
		case c == '"':
			inArg = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			inArg = true
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}
