package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/groupd-go/groupd/internal/residual"
	"github.com/groupd-go/groupd/internal/selffence"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "groupd.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOptionsDefaults(t *testing.T) {
	// The default config path may exist on a test machine; point away.
	o, err := parseOptions([]string{"--config", writeConfig(t, "")}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := options{
		configPath: o.configPath, foreground: true, logLevel: logrus.InfoLevel,
		socket: "/run/groupd/groupd.sock", sysfsRoot: "/", policy: residual.PolicyFence,
		fenceCommand: selffence.DefaultCommand, quorumWait: 10 * time.Second, fenceTimeout: 5 * time.Minute, group: "groupd",
		lockFile: "/run/groupd.lock",
	}
	if *o != want {
		t.Errorf("defaults = %+v, want %+v", *o, want)
	}
}

func TestOptionsConfigFileAndFlags(t *testing.T) {
	conf := writeConfig(t, `# groupd settings
socket = /run/g/q.sock
socket-group = daemon

residual-policy = stay
fence-command = sh -c 'logger fencing {name} = {nodeid}'
no-kill-on-procdown = yes
syslog = on
log-level = warning
`)
	o, err := parseOptions([]string{"--config", conf, "--residual-policy", "kick", "--debug"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.socket != "/run/g/q.sock" || o.socketGroup != "daemon" {
		t.Errorf("socket %q group %q from the file not applied", o.socket, o.socketGroup)
	}
	if o.policy != residual.PolicyKick {
		t.Errorf("policy %s: the flag must win over the file's stay", o.policy)
	}
	if o.fenceCommand != "sh -c 'logger fencing {name} = {nodeid}'" {
		t.Errorf("fence command %q: the value is everything after the first =", o.fenceCommand)
	}
	if !o.noKillOnProcDown || !o.syslog {
		t.Errorf("booleans yes/on not applied: %+v", o)
	}
	if o.logLevel != logrus.DebugLevel {
		t.Errorf("log level %s: --debug must win", o.logLevel)
	}

	// debug = yes in the file does not override --log-level given on the
	// command line; on the command line it does.
	conf = writeConfig(t, "debug = yes\n")
	for _, tt := range []struct {
		args []string
		want logrus.Level
	}{
		{[]string{"--log-level", "warning"}, logrus.WarnLevel},
		{[]string{"--log-level", "warning", "--debug"}, logrus.DebugLevel},
		{nil, logrus.DebugLevel},
	} {
		o, err := parseOptions(append([]string{"--config", conf}, tt.args...), &bytes.Buffer{})
		if err != nil || o.logLevel != tt.want {
			t.Errorf("debug = yes in the file, %q: level %v (%v), want %s", tt.args, o, err, tt.want)
		}
	}
}

func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		conf string // "" for no --config
		args []string
		want string
	}{
		{"unknown key", "sockets = /x\n", nil, ":1: unknown setting \"sockets\""},
		{"no equals", "\n\nsocket /x\n", nil, ":3: want `key = value`"},
		{"config in config", "config = /etc/other\n", nil, "unknown setting \"config\""},
		{"test-only group in config", "group = adm\n", nil, "unknown setting \"group\""},
		{"test-only lock file in config", "lock-file = /tmp/l\n", nil, "unknown setting \"lock-file\""},
		{"bad bool", "syslog = maybe\n", nil, "not a boolean"},
		{"bad policy", "residual-policy = reboot\n", nil, "residual-policy"},
		{"bad level", "log-level = loud\n", nil, "log-level"},
		{"duplicate", "socket = /a\nsocket = /b\n", nil, "already set on line 1"},
		{"bad placeholder", "", []string{"--fence-command", "fence_node {host}"}, "unknown placeholder {host}"},
		{"background", "", []string{"--foreground=false"}, "does not put itself in the background"},
		{"argument", "", []string{"extra"}, "unexpected argument"},
		{"empty group", "", []string{"--group", ""}, "--group must not be empty"},
		{"zero fence timeout", "fence-timeout = 0s\n", nil, "--fence-timeout must be at least 1s"},
		{"tiny fence timeout", "", []string{"--fence-timeout", "1ns"}, "--fence-timeout must be at least 1s"},
		{"empty sysfs root", "", []string{"--sysfs-root", ""}, "--sysfs-root must not be empty"},
		{"unknown socket group", "", []string{"--socket-group", "groupd-no-such-group"}, "--socket-group"},
		{"unknown socket group id", "", []string{"--socket-group", "4000000123"}, "--socket-group"},
		{"negative quorum wait", "quorum-wait = -1s\n", nil, "--quorum-wait must not be negative"},
		{"level panic", "", []string{"--log-level", "panic"}, "--log-level must be error, warning, info or debug"},
		{"level fatal", "log-level = fatal\n", nil, "--log-level must be"},
		{"level trace", "", []string{"--log-level", "trace"}, "--log-level must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := writeConfig(t, tt.conf)
			args := append([]string{"--config", conf}, tt.args...)
			_, err := parseOptions(args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	// A fence-command line that lost its = is not repeated in the error:
	// it may hold a password, and the error goes to the journal.
	conf := writeConfig(t, "fence-command fence_ipmilan -p s3cret -o reboot\n")
	if _, err := parseOptions([]string{"--config", conf}, &bytes.Buffer{}); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v: want one that does not quote the line", err)
	}
}

func TestOptionsMissingConfig(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.conf")
	if _, err := parseOptions([]string{"--config", missing}, &bytes.Buffer{}); err == nil {
		t.Error("a --config that does not exist must be an error")
	}
}

func TestHelpGoesToStdout(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "Usage: groupd") || errOut.Len() > 0 {
		t.Errorf("--help: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout only", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"--no-such-option"}, &out, &errOut); code != exitUsage || out.Len() > 0 || !strings.Contains(errOut.String(), "Usage: groupd") {
		t.Errorf("a bad option: exit %d, stdout %q, stderr %q; want %d and the usage on stderr", code, out.String(), errOut.String(), exitUsage)
	}
}

func TestHelpHidesTestFlags(t *testing.T) {
	var out bytes.Buffer
	_, err := parseOptions([]string{"--help"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	help := out.String()
	for _, want := range []string{"-residual-policy", "-fence-command", "-sysfs-root", "-socket-group", "-no-kill-on-procdown", "-syslog", "-log-level", "-fence-timeout"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %s", want)
		}
	}
	if strings.Contains(help, "\n  -group") || strings.Contains(help, "tests only") {
		t.Errorf("help shows the hidden --group flag:\n%s", help)
	}
}

func TestQuorumWaitOption(t *testing.T) {
	o, err := parseOptions([]string{"--config", writeConfig(t, "quorum-wait = 3s\n")}, &bytes.Buffer{})
	if err != nil || o.quorumWait != 3*time.Second {
		t.Fatalf("quorum-wait from the file: %v, %v", o.quorumWait, err)
	}
	o, err = parseOptions([]string{"--config", writeConfig(t, "quorum-wait = 3s\n"), "--quorum-wait", "0"}, &bytes.Buffer{})
	if err != nil || o.quorumWait != 0 {
		t.Fatalf("--quorum-wait 0 over the file: %v, %v", o.quorumWait, err)
	}
	if _, err := parseOptions([]string{"--config", writeConfig(t, ""), "--quorum-wait", "soon"}, &bytes.Buffer{}); err == nil {
		t.Fatal("--quorum-wait soon accepted")
	}
}
