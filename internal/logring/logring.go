// Package logring keeps the most recent debug log lines in memory, so a
// query can dump them from a running daemon without debug logging on disk.
package logring

import (
	"bytes"
	"sync"
)

// DefaultSize is a capacity that covers a few minutes of debug logging.
const DefaultSize = 2000

// maxLine bounds one stored line so a runaway message cannot hold memory.
const maxLine = 4096

// Ring is a fixed-size buffer of lines. It is written from whichever
// goroutine logs, so unlike the daemon state it has its own lock.
type Ring struct {
	mu      sync.Mutex
	lines   []string
	next    int  // where the next line goes
	full    bool // lines has wrapped at least once
	partial []byte
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
		line = line[:maxLine] + "..."
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
// is stored; a trailing partial line waits for the rest.
func (r *Ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.partial = append(r.partial, p...)
			if len(r.partial) > maxLine {
				r.add(string(r.partial[:maxLine]) + "...")
				r.partial = r.partial[:0]
			}
			break
		}
		line := append(r.partial, p[:i]...)
		if len(line) > maxLine {
			line = append(line[:maxLine], "..."...)
		}
		r.add(string(line))
		r.partial = r.partial[:0]
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
