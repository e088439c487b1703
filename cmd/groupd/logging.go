package main

import (
	"fmt"
	"io"
	"log/syslog"
	"os"

	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"

	"github.com/groupd-go/groupd/internal/logring"
)

// newLogger returns a logger that writes lines at o.logLevel and above to
// stderr (and syslog with o.syslog), and every line, debug included, to
// ring, so `group_tool dump` shows recent debug lines whatever the level.
//
// The logger itself runs at debug level so the ring sees everything; the
// level filtering for stderr and syslog happens in their hooks.
func newLogger(o *options, stderr io.Writer, ring *logring.Ring) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel)

	// journald stamps each line itself.
	_, journal := os.LookupEnv("JOURNAL_STREAM")
	log.AddHook(&writerHook{
		w:      stderr,
		levels: levelsUpTo(o.logLevel),
		format: &logrus.TextFormatter{DisableColors: true, FullTimestamp: true, DisableTimestamp: journal},
	})
	log.AddHook(&writerHook{
		w:      ring,
		levels: logrus.AllLevels,
		format: &logrus.TextFormatter{DisableColors: true, FullTimestamp: true},
	})
	if o.syslog {
		h, err := lsyslog.NewSyslogHook("", "", syslog.LOG_DAEMON|syslog.LOG_INFO, "groupd")
		if err != nil {
			return nil, fmt.Errorf("cannot log to syslog: %w", err)
		}
		log.AddHook(levelFilter{h, levelsUpTo(o.logLevel)})
	}
	return log, nil
}

func levelsUpTo(max logrus.Level) []logrus.Level {
	var ls []logrus.Level
	for _, l := range logrus.AllLevels {
		if l <= max {
			ls = append(ls, l)
		}
	}
	return ls
}

// writerHook formats entries of some levels onto a writer.
type writerHook struct {
	w      io.Writer
	levels []logrus.Level
	format logrus.Formatter
}

func (h *writerHook) Levels() []logrus.Level { return h.levels }

func (h *writerHook) Fire(e *logrus.Entry) error {
	b, err := h.format.Format(e)
	if err != nil {
		return err
	}
	_, err = h.w.Write(b)
	return err
}

// levelFilter narrows another hook to some levels.
type levelFilter struct {
	logrus.Hook
	levels []logrus.Level
}

func (f levelFilter) Levels() []logrus.Level { return f.levels }
