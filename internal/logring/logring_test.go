package logring

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestRingKeepsNewestInOrder(t *testing.T) {
	tests := []struct {
		size, add int
		want      []string
	}{
		{size: 3, add: 0, want: nil},
		{size: 3, add: 2, want: []string{"l0", "l1"}},
		{size: 3, add: 3, want: []string{"l0", "l1", "l2"}},
		{size: 3, add: 4, want: []string{"l1", "l2", "l3"}},
		{size: 3, add: 8, want: []string{"l5", "l6", "l7"}},
		{size: 1, add: 5, want: []string{"l4"}},
	}
	for _, tt := range tests {
		r := New(tt.size)
		for i := 0; i < tt.add; i++ {
			r.Add(fmt.Sprintf("l%d", i))
		}
		got := r.Lines()
		if len(got) == 0 && len(tt.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("size %d after %d lines: %q, want %q", tt.size, tt.add, got, tt.want)
		}
	}
}

func TestRingAsWriter(t *testing.T) {
	r := New(10)
	fmt.Fprint(r, "first line\nsecond ")
	fmt.Fprint(r, "line\n\nthird")
	want := []string{"first line", "second line", ""}
	if got := r.Lines(); !reflect.DeepEqual(got, want) {
		t.Errorf("lines %q, want %q (the partial third line waits for its newline)", got, want)
	}
	fmt.Fprint(r, "\n")
	if got := r.Lines(); got[len(got)-1] != "third" {
		t.Errorf("last line %q, want third", got[len(got)-1])
	}
}

func TestRingBoundsLongLines(t *testing.T) {
	r := New(4)
	r.Add(strings.Repeat("a", 10*maxLine))
	r.Write([]byte(strings.Repeat("b", 3*maxLine)))
	r.Write([]byte(strings.Repeat("c", 2*maxLine) + "\n"))
	for _, l := range r.Lines() {
		if len(l) > maxLine+3 {
			t.Errorf("stored a line of %d bytes, limit is %d", len(l), maxLine)
		}
	}
}

// Lines stay whole under concurrent writers: every stored line is one
// that was written, and each writer's lines keep their order.
func TestRingConcurrentWriters(t *testing.T) {
	r := New(100)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i += 2 {
				// two lines of different lengths per write
				fmt.Fprintf(r, "g%d line %d %s\ng%d line %d %s\n", g, i, pad(g, i), g, i+1, pad(g, i+1))
				r.Lines()
			}
		}()
	}
	wg.Wait()
	lines := r.Lines()
	if len(lines) != 100 {
		t.Errorf("%d lines after 2000 writes into a ring of 100", len(lines))
	}
	last := map[int]int{}
	for _, l := range lines {
		var g, i int
		var p string
		if n, err := fmt.Sscanf(l, "g%d line %d %s", &g, &i, &p); n != 3 || err != nil || p != pad(g, i) || l != fmt.Sprintf("g%d line %d %s", g, i, p) {
			t.Fatalf("stored line %q is not one that was written", l)
		}
		if prev, ok := last[g]; ok && i <= prev {
			t.Errorf("writer %d: line %d stored after line %d", g, i, prev)
		}
		last[g] = i
	}
}

// pad makes lines of different lengths whose content can be checked.
func pad(g, i int) string { return strings.Repeat(string(rune('a'+g)), 1+(i*7)%50) }

// The rest of an over-long line is dropped up to its newline, whether it
// comes in one write or many; the next line is stored as written.
func TestRingDropsRestOfLongLine(t *testing.T) {
	long := strings.Repeat("b", 3*maxLine)
	want := []string{strings.Repeat("b", maxLine) + "...", "next line"}
	for name, writes := range map[string][]string{
		"one write":        {long + "\nnext line\n"},
		"line, then more":  {long + "\n", "next line\n"},
		"in pieces":        {long[:100], long[100 : maxLine+1], long[maxLine+1 : 2*maxLine], long[2*maxLine:], "tail of the long line\nnext ", "line\n"},
		"newline far away": {long, long, long, "\nnext line\n"},
	} {
		r := New(10)
		for _, w := range writes {
			r.Write([]byte(w))
		}
		if got := r.Lines(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: stored %d lines %.60q, want %.60q", name, len(got), got, want)
		}
	}
}

// A cut never splits a multi-byte rune, wherever the rune falls.
func TestRingCutsOnRuneBoundary(t *testing.T) {
	for _, c := range []string{"é", "€", "😀"} {
		for off := 0; off < len(c); off++ {
			prefix := strings.Repeat("a", maxLine-off)
			line := prefix + strings.Repeat(c, 3)
			r := New(4)
			r.Add(line)
			r.Write([]byte(line + "\n"))
			for _, got := range r.Lines() {
				body, marked := strings.CutSuffix(got, "...")
				if !marked || !utf8.ValidString(got) || !strings.HasPrefix(line, body) || len(body) > maxLine || len(body) < maxLine-3 {
					t.Errorf("%q at offset %d: stored %d bytes ending %q", c, off, len(got), got[max(0, len(got)-8):])
				}
			}
		}
	}
}
