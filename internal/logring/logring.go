// Package logring keeps the most recent debug log lines in memory, so a
// query can dump them from a running daemon without debug logging on disk.
package logring

import (
	"bytes"
	"sync"
	"unicode/utf8"
)

// DefaultSize is a capacity that covers a few minutes of debug logging.
const DefaultSize = 2000

// maxLine bounds one stored line so a runaway message cannot hold memory.
// A longer line is cut on a rune boundary at most maxLine bytes in and
// marked with "..."; the rest of it is dropped.
const maxLine = 4096

// truncate cuts s to at most maxLine bytes without splitting a UTF-8
// sequence, and marks the cut. It reads no further than byte maxLine, so
// the first maxLine+1 bytes of a long line are enough.
func truncate(s []byte) string {
	if len(s) <= maxLine {
		return string(s)
	}
	i := maxLine
	// Back up over continuation bytes to the start of the rune that
	// crosses the limit; not further than a rune is long, in case s is
	// not UTF-8 at all.
	for i > maxLine-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return string(s[:i]) + "..."
}

// Ring is a fixed-size buffer of lines. It is written from whichever
// goroutine logs, so unlike the daemon state it has its own lock.
type Ring struct {
	mu      sync.Mutex
	lines   []string
	next    int    // where the next line goes
	full    bool   // lines has wrapped at least once
	partial []byte // the line being written, up to maxLine+1 bytes
	// skipping: the line being written was too long and is stored; drop
	// what follows up to its newline.
	skipping bool
}

// New returns a ring holding up to size lines (DefaultSize if size <= 0).
func New(size int) *Ring {
	if size <= 0 {
		size = DefaultSize
	}
	return &Ring{lines: make([]string, size)}
}

// Add stores one line, dropping the oldest when full.
func (r *Ring) Add(line string) {
	if len(line) > maxLine {
		line = truncate([]byte(line[:maxLine+1]))
	}
	r.mu.Lock()
	r.add(line)
	r.mu.Unlock()
}

func (r *Ring) add(line string) {
	r.lines[r.next] = line
	r.next++
	if r.next == len(r.lines) {
		r.next = 0
		r.full = true
	}
}

// Write lets the ring be a log output (an io.Writer): every complete line
// is stored; a trailing partial line waits for the rest. A line longer
// than the limit is stored cut as soon as it is known to be too long, and
// its rest is dropped up to the newline, also across writes.
func (r *Ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !r.skipping {
			// One byte past the limit tells whether the line is too long
			// and where its last whole rune ends.
			take := min(len(chunk), maxLine+1-len(r.partial))
			r.partial = append(r.partial, chunk[:take]...)
			if len(r.partial) > maxLine {
				r.add(truncate(r.partial))
				r.partial = r.partial[:0]
				r.skipping = true
			}
		}
		if i < 0 {
			break
		}
		if !r.skipping {
			r.add(string(r.partial))
		}
		r.partial = r.partial[:0]
		r.skipping = false
		p = p[i+1:]
	}
	return n, nil
}

// Lines returns the stored lines, oldest first.
func (r *Ring) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]string(nil), r.lines[:r.next]...)
	}
	out := make([]string, 0, len(r.lines))
	out = append(out, r.lines[r.next:]...)
	return append(out, r.lines[:r.next]...)
}
