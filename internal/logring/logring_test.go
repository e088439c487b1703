package logring

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
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

func TestRingConcurrentWriters(t *testing.T) {
	r := New(100)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				fmt.Fprintf(r, "g%d line %d\n", g, i)
				r.Lines()
			}
		}()
	}
	wg.Wait()
	if n := len(r.Lines()); n != 100 {
		t.Errorf("%d lines after 2000 writes into a ring of 100", n)
	}
}
