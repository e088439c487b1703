package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/groupd-go/groupd/internal/query"
	"github.com/groupd-go/groupd/internal/residual"
	"github.com/groupd-go/groupd/internal/selffence"
)

// defaultConfigPath is read when it exists; a --config given explicitly
// must exist.
const defaultConfigPath = "/etc/groupd.conf"

// options is everything the daemon can be told, from flags and the config
// file.
type options struct {
	configPath       string
	foreground       bool
	debug            bool
	logLevel         logrus.Level
	syslog           bool
	socket           string
	socketGroup      string
	sysfsRoot        string
	policy           residual.Policy
	fenceCommand     string
	noKillOnProcDown bool
	quorumWait       time.Duration
	fenceTimeout     time.Duration
	group            string
	lockFile         string
}

// defaultQuorumWait covers a cluster booting together: corosync forms one
// ring within a few token timeouts. A groupd that joined the group in a
// ring of its own would then merge into the others' group, and a merged
// member is not vouched for until it restarts (see internal/groupd), so
// every node would be fenced at the next fence domain join.
const defaultQuorumWait = 10 * time.Second

// defaultFenceTimeout bounds the self-fence command. The unit file's
// TimeoutStartSec (420) is above it plus the default quorum wait; groupd
// also extends the start timeout itself before fencing.
const defaultFenceTimeout = 5 * time.Minute

// hiddenFlags are for tests and are left out of --help.
var hiddenFlags = map[string]bool{"group": true, "lock-file": true}

// flagSet defines the daemon's flags on a new FlagSet writing errors and
// usage to out.
func flagSet(o *options, out io.Writer) *flag.FlagSet {
	fl := flag.NewFlagSet("groupd", flag.ContinueOnError)
	fl.SetOutput(out)
	o.logLevel = logrus.InfoLevel
	fl.StringVar(&o.configPath, "config", defaultConfigPath, "config file `path`; its lines are key = value, keys named like the options; options given on the command line win")
	fl.BoolVar(&o.foreground, "foreground", true, "stay in the foreground (always; groupd does not fork, run it under systemd Type=notify)")
	fl.BoolVar(&o.debug, "debug", false, "log debug lines (same as --log-level debug)")
	fl.TextVar(&o.logLevel, "log-level", logrus.InfoLevel, "least severe level logged to stderr and syslog: error, warning, info or debug")
	fl.BoolVar(&o.syslog, "syslog", false, "also log to syslog (facility daemon)")
	fl.StringVar(&o.socket, "socket", "/run/groupd/groupd.sock", "query socket `path`; its directory is created with mode 0755")
	fl.StringVar(&o.socketGroup, "socket-group", "", "`group` (name or id) allowed to query besides root; empty: root only")
	fl.StringVar(&o.sysfsRoot, "sysfs-root", "/", "`directory` under which sys/kernel/dlm, sys/fs/gfs and sys/fs/gfs2 are scanned for residual state")
	fl.TextVar(&o.policy, "residual-policy", residual.PolicyFence, "what to do when residual dlm/gfs state is found: fence (kill our node and run --fence-command), kick (kill our node only) or stay (stay a cluster member, never join, let other nodes fence us; groupd still reports ready to systemd, with a STATUS saying it stays out)")
	fl.StringVar(&o.fenceCommand, "fence-command", selffence.DefaultCommand, "self-fence `command` for --residual-policy fence; {name} and {nodeid} are replaced by our node's name and id")
	fl.BoolVar(&o.noKillOnProcDown, "no-kill-on-procdown", false, "do not kill from the cluster a node whose groupd died while its corosync stayed up")
	fl.DurationVar(&o.quorumWait, "quorum-wait", defaultQuorumWait, "how long to wait for quorum before joining the groupd group; 0 joins at once")
	fl.DurationVar(&o.fenceTimeout, "fence-timeout", defaultFenceTimeout, "how long the self-fence command may run before it is killed; startup (systemd's TimeoutStartSec) must allow for it")
	fl.StringVar(&o.group, "group", "groupd", "name of the process group to join (tests only)")
	// Not in /run/groupd: systemd removes its RuntimeDirectory whenever the
	// unit stops, a failed start included, and would take a held lock
	// with it.
	fl.StringVar(&o.lockFile, "lock-file", "/run/groupd.lock", "`path` of the lock that keeps one groupd per node (tests only)")
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), "Usage: groupd [options]\n\nThe groupd daemon: refuses to join the cluster's groupd group with residual dlm/gfs state, tracks failed nodes until they are fenced, and answers group_tool.\n\nOptions:\n")
		printDefaults(fl)
	}
	return fl
}

// printDefaults is flag.PrintDefaults without the hidden flags.
func printDefaults(fl *flag.FlagSet) {
	// A copy holding only the visible flags lets the flag package do the
	// formatting.
	vis := flag.NewFlagSet("", flag.ContinueOnError)
	vis.SetOutput(fl.Output())
	fl.VisitAll(func(f *flag.Flag) {
		if !hiddenFlags[f.Name] {
			vis.Var(f.Value, f.Name, f.Usage)
			vis.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	vis.PrintDefaults()
}

// parseOptions reads args, then the config file for every flag not given
// on the command line.
func parseOptions(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fl := flagSet(o, out)
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	if fl.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: groupd takes options only", fl.Arg(0))
	}
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })

	f, err := os.Open(o.configPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !set["config"]:
		// No config file is the ordinary case.
	case err != nil:
		return nil, fmt.Errorf("config file: %w", err)
	default:
		err = applyConfig(fl, f, o.configPath, set)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	// --debug is --log-level debug, but a debug = yes in the config file
	// does not override a --log-level given on the command line.
	if o.debug && (set["debug"] || !set["log-level"]) {
		o.logLevel = logrus.DebugLevel
	}
	switch o.logLevel {
	case logrus.ErrorLevel, logrus.WarnLevel, logrus.InfoLevel, logrus.DebugLevel:
	default:
		// panic and fatal would hide the errors groupd logs, trace adds
		// nothing to debug.
		return nil, fmt.Errorf("--log-level must be error, warning, info or debug, not %s", o.logLevel)
	}
	if !o.foreground {
		return nil, errors.New("groupd does not put itself in the background; run it under systemd (Type=notify) or with & from a shell")
	}
	if o.group == "" {
		return nil, errors.New("--group must not be empty")
	}
	if o.socket == "" {
		return nil, errors.New("--socket must not be empty")
	}
	if o.socketGroup != "" {
		// The socket takes any gid; an operator means a group that exists.
		gid, err := query.LookupGroup(o.socketGroup)
		if err == nil {
			_, err = user.LookupGroupId(strconv.Itoa(gid))
		}
		if err != nil {
			return nil, fmt.Errorf("--socket-group: %w", err)
		}
	}
	if o.fenceTimeout < time.Second {
		return nil, errors.New("--fence-timeout must be at least 1s (it bounds removing our node from the cluster and the fence command)")
	}
	if o.sysfsRoot == "" {
		return nil, errors.New("--sysfs-root must not be empty (the default is /)")
	}
	if o.quorumWait < 0 {
		return nil, errors.New("--quorum-wait must not be negative (0 joins at once)")
	}
	// A bad template is caught now, not when the node has to fence itself.
	if _, err := selffence.ParseTemplate(o.fenceCommand); err != nil {
		return nil, err
	}
	return o, nil
}

// applyConfig sets, from r, every flag not in set. Lines are `key = value`
// with key a flag name; blank lines and lines starting with # are skipped.
// The value is everything after the first =, trimmed, taken literally
// (no quoting: the fence command does its own).
func applyConfig(fl *flag.FlagSet, r io.Reader, name string, set map[string]bool) error {
	sc := bufio.NewScanner(r)
	seen := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			// Not quoted: a fence-command line that lost its = may
			// hold a password.
			return fmt.Errorf("%s:%d: want `key = value`, got a line without =", name, n)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		f := fl.Lookup(key)
		// The hidden flags are not settings: a "group = adm" meant for
		// socket-group would put the node in a process group of its own.
		if f == nil || key == "config" || hiddenFlags[key] {
			return fmt.Errorf("%s:%d: unknown setting %q (settings are named like groupd's options, without the dashes)", name, n, key)
		}
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("%s:%d: %s is already set on line %d", name, n, key, prev)
		}
		seen[key] = n
		if set[key] {
			continue
		}
		if isBool(f) {
			b, err := parseBool(val)
			if err != nil {
				return fmt.Errorf("%s:%d: %s: %w", name, n, key, err)
			}
			val = fmt.Sprint(b)
		}
		if err := f.Value.Set(val); err != nil {
			return fmt.Errorf("%s:%d: %s = %s: %w", name, n, key, val, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// parseBool takes what people write in config files.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (want yes/no, true/false, on/off or 1/0)", s)
}
