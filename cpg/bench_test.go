package cpg_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// benchBinary is a program built once per test binary.
type benchBinary struct {
	once sync.Once
	path string
	err  error
}

var (
	cBench   benchBinary // testdata/cpgbench.c: the loop in C
	cgoBench benchBinary // testdata/cgoloop: the loop in Go, libcpg through cgo
)

// get builds the program with build, given the path to write it to.
func (p *benchBinary) get(b *testing.B, name string, build func(out string) *exec.Cmd) string {
	p.once.Do(func() {
		dir, err := os.MkdirTemp("", "cpgbench")
		if err != nil {
			p.err = err
			return
		}
		p.path = filepath.Join(dir, name)
		if out, err := build(p.path).CombinedOutput(); err != nil {
			p.err = fmt.Errorf("building %s: %v: %s", name, err, out)
		}
	})
	if p.err != nil {
		b.Fatal(p.err)
	}
	return p.path
}

func cBenchBinary(b *testing.B) string {
	return cBench.get(b, "cpgbench", func(out string) *exec.Cmd {
		return exec.Command("gcc", "-O2", "-o", out, "testdata/cpgbench.c", "-lcpg")
	})
}

func cgoBenchBinary(b *testing.B) string {
	return cgoBench.get(b, "cgoloop", func(out string) *exec.Cmd {
		return exec.Command("go", "build", "-o", out, "./testdata/cgoloop")
	})
}

// BenchmarkThroughput multicasts b.N messages to a group of one and
// receives them all back, with this binding and with the same loop in C,
// against the same corosync:
//
//	go      this binding; the consumer hands each message's buffer back
//	        for reuse (Message.Release), as a busy consumer would
//	go-gc   this binding; buffers are left to the garbage collector
//	c       C; the callback reads each message in libcpg's buffer
//	c-copy  C; the callback copies each message into a buffer of its own,
//	        as the binding must (Go code may not keep C's memory)
//	cgo     the c loop written in Go, calling libcpg through cgo with no
//	        binding and no copy: what any Go program pays for cgo and the
//	        Go runtime
//
// All report ns/msg, measured from the first send to the last delivery;
// scripts/bench-cpg prints the ratios. Each also reports the CPU time per
// message of the client (client-ns/msg: the benchmark process for the Go
// variants, the program for the others) and of corosync (coro-ns/msg):
// on a machine with few cores they compete for it, so client CPU costs
// throughput. queued/msg is how many messages corosync had to hold in a
// queue of its own because the client's IPC ring was full, per message
// delivered (see corosyncQueued). allocs/op of the Go variants is
// allocations per delivered message.
//
// Before each size, a short C run at that size warms corosync up (its
// allocator grows for larger messages, and the first run after a start
// is slower). CPGBENCH_ROUND=N rotates the order of the variants by N, so
// that over several rounds each variant runs in each position.
func BenchmarkThroughput(b *testing.B) {
	corotest.Start(b)
	// Built now, so that no sub-benchmark's first run includes a build
	// (a first run as long as the bench time ends a benchmark at b.N = 1).
	cBenchBinary(b)
	cgoBenchBinary(b)
	variants := []struct {
		name string
		run  func(b *testing.B, size int)
	}{
		{"go", func(b *testing.B, size int) { benchGo(b, size, true) }},
		{"go-gc", func(b *testing.B, size int) { benchGo(b, size, false) }},
		{"c", func(b *testing.B, size int) { benchC(b, size, false) }},
		{"c-copy", func(b *testing.B, size int) { benchC(b, size, true) }},
		{"cgo", func(b *testing.B, size int) { benchProgram(b, cgoBenchBinary(b), size, false) }},
	}
	round, _ := strconv.Atoi(os.Getenv("CPGBENCH_ROUND"))
	for _, size := range benchSizes {
		warmUp(b, size)
		for i := range variants {
			v := variants[(i+round)%len(variants)]
			b.Run(sizeName(size)+"/"+v.name, func(b *testing.B) { v.run(b, size) })
		}
	}
}

// warmUp runs the C loop for about 256 MiB, or 20,000 messages, of size.
func warmUp(b *testing.B, size int) {
	n := min(20000, (256<<20)/size)
	if _, _, err := runProgram(b, cBenchBinary(b), size, n, false); err != nil {
		b.Fatalf("warm-up: %v", err)
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
	// The variant before this one may have left garbage (go-gc leaves all
	// its buffers): collect it now, not during the run. The C variants
	// start as fresh processes.
	runtime.GC()
	b.ResetTimer()
	coroStart := corosyncCPU(b)
	queuedStart := corosyncQueued(b)
	cpuStart := corotest.CPUTime()
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
	cpu := corotest.CPUTime() - cpuStart
	coro := corosyncCPU(b) - coroStart
	b.StopTimer()
	reportQueued(b, queuedStart)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	if want := byte(b.N * 'x'); sum != want {
		b.Fatalf("checksum %d, want %d: messages damaged", sum, want)
	}
	reportPerMsg(b, elapsed, cpu, coro)
}

// reportPerMsg reports wall time, client CPU and corosync CPU per message.
func reportPerMsg(b *testing.B, wall, client, coro time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(wall.Nanoseconds())/n, "ns/msg")
	b.ReportMetric(float64(client.Nanoseconds())/n, "client-ns/msg")
	b.ReportMetric(float64(coro.Nanoseconds())/n, "coro-ns/msg")
}

// corosyncQueued returns how many events corosync has had to queue so
// far because a client's IPC ring was full, from the "Q empty, queued:N
// sent:M" lines it logs each time such a queue has drained (M events went
// through it). While it queues, corosync retries the queue as a job of
// its main loop on every turn: CPU it spends instead of delivering.
func corosyncQueued(b *testing.B) int {
	total := 0
	for _, line := range strings.Split(corotest.Start(b).Log(), "\n") {
		_, rest, ok := strings.Cut(line, "Q empty, queued:")
		if !ok {
			continue
		}
		var queued, sent int
		if _, err := fmt.Sscanf(rest, "%d sent:%d", &queued, &sent); err == nil {
			total += sent
		}
	}
	return total
}

// reportQueued reports the events corosync queued per message since
// start (a corosyncQueued count).
func reportQueued(b *testing.B, start int) {
	b.ReportMetric(float64(corosyncQueued(b)-start)/float64(b.N), "queued/msg")
}

// corosyncCPU returns the CPU time the test's corosync has used so far,
// from /proc/PID/stat (utime and stime, in clock ticks of 10 ms: fine
// over a benchmark's seconds).
func corosyncCPU(b *testing.B) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", corotest.Start(b).Pid()))
	if err != nil {
		b.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("corosync's /proc stat unreadable: %q", stat)
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * tick
}

func benchC(b *testing.B, size int, keep bool) {
	benchProgram(b, cBenchBinary(b), size, keep)
}

func benchProgram(b *testing.B, bin string, size int, keep bool) {
	b.SetBytes(int64(size))
	coroStart := corosyncCPU(b)
	queuedStart := corosyncQueued(b)
	ns, cpu, err := runProgram(b, bin, size, b.N, keep)
	if err != nil {
		b.Fatal(err)
	}
	reportQueued(b, queuedStart)
	reportPerMsg(b, time.Duration(ns), cpu, corosyncCPU(b)-coroStart)
}

// runProgram runs a benchmark program (cpgbench or cgoloop) for n messages
// of size bytes, in a group of its own, and returns the nanoseconds it
// took and the CPU time it used (from its start, join included).
func runProgram(b *testing.B, bin string, size, n int, keep bool) (int64, time.Duration, error) {
	args := []string{corotest.GroupName(b), strconv.Itoa(size), strconv.Itoa(n)}
	if keep {
		args = append(args, "copy")
	}
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr // libcpg prints there while it waits out flow control
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	var ns int64
	var sum uint64
	if _, err := fmt.Sscanf(string(out), "ns %d checksum %d", &ns, &sum); err != nil {
		return 0, 0, fmt.Errorf("%s said %q", filepath.Base(bin), out)
	}
	if want := uint64(n) * 'x'; sum != want {
		return 0, 0, fmt.Errorf("%s checksum %d, want %d: messages lost or damaged", filepath.Base(bin), sum, want)
	}
	return ns, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}
