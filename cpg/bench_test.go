package cpg_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupd-go/groupd/cpg"
	"github.com/groupd-go/groupd/internal/corotest"
)

var benchSizes = []int{64, 1024, 64 << 10, 1 << 20}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

var cBench struct {
	once sync.Once
	path string
	err  error
}

// cBenchBinary compiles testdata/cpgbench.c, the same work in plain C.
func cBenchBinary(b *testing.B) string {
	cBench.once.Do(func() {
		dir, err := os.MkdirTemp("", "cpgbench")
		if err != nil {
			cBench.err = err
			return
		}
		cBench.path = filepath.Join(dir, "cpgbench")
		out, err := exec.Command("gcc", "-O2", "-o", cBench.path, "testdata/cpgbench.c", "-lcpg").CombinedOutput()
		if err != nil {
			cBench.err = fmt.Errorf("gcc: %v: %s", err, out)
		}
	})
	if cBench.err != nil {
		b.Fatal(cBench.err)
	}
	return cBench.path
}

// BenchmarkThroughput multicasts b.N messages to a group of one and
// receives them all back, with this binding ("go") and with the same loop
// in C ("c"), against the same corosync. "go" releases each message's
// buffer for reuse (Message.Release); "go-gc" leaves it to the garbage
// collector. All report ns/msg, measured from the first send to the last
// delivery; scripts/bench-cpg prints the ratios. allocs/op of the Go
// variants is allocations per delivered message.
func BenchmarkThroughput(b *testing.B) {
	corotest.Start(b)
	for _, size := range benchSizes {
		b.Run(sizeName(size)+"/go", func(b *testing.B) { benchGo(b, size, true) })
		b.Run(sizeName(size)+"/go-gc", func(b *testing.B) { benchGo(b, size, false) })
		b.Run(sizeName(size)+"/c", func(b *testing.B) { benchC(b, size) })
	}
}

// benchGo runs the Go side; with release, the consumer hands each
// message's buffer back (Message.Release), as a busy consumer would.
func benchGo(b *testing.B, size int, release bool) {
	ctx := context.Background()
	h, err := cpg.New()
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	if err := h.Join(ctx, corotest.GroupName(b)); err != nil {
		b.Fatal(err)
	}
	for ev := range h.Events() {
		if _, ok := ev.(*cpg.TotemConfChg); ok {
			break
		}
	}
	buf := []byte(strings.Repeat("x", size))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			if err := h.Multicast(ctx, cpg.Agreed, buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	var sum byte
	for got := 0; got < b.N; {
		if m, ok := (<-h.Events()).(*cpg.Message); ok {
			got++
			sum += m.Data[len(m.Data)-1]
			if release {
				m.Release()
			}
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/msg")
}

func benchC(b *testing.B, size int) {
	bin := cBenchBinary(b)
	b.SetBytes(int64(size))
	cmd := exec.Command(bin, corotest.GroupName(b), strconv.Itoa(size), strconv.Itoa(b.N))
	var stderr strings.Builder
	cmd.Stderr = &stderr // libcpg prints there while it waits out flow control
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%v: %s", err, stderr.String())
	}
	var ns int64
	var sum uint64
	if _, err := fmt.Sscanf(string(out), "ns %d checksum %d", &ns, &sum); err != nil {
		b.Fatalf("cpgbench said %q", out)
	}
	b.ReportMetric(float64(ns)/float64(b.N), "ns/msg")
}
