package cpg

import (
	"math/bits"
	"sync"
)

// Receive buffers of 1 KiB and more are reused, one size class per power
// of two, when the consumer hands them back with Message.Release. Such
// messages otherwise cost a fresh heap allocation each, and at corosync's
// rates the garbage collector and the returning of memory to the kernel
// then cost more CPU than corosync itself (measured: at 1 MiB per message,
// Go's own CPU time per message fell from about 3x to about 1.1x that of a
// C client). Below 1 KiB an allocation costs about what reuse does.
//
// A released buffer goes on a stack of its class, and the next message of
// that size is copied into the one released last: memory still in the
// cache of the core that copies. sync.Pool alone would hand out a buffer
// released on another P oldest first, cold (measured at 64 KiB: a tenth
// less client CPU per message with the stacks). The stacks hold at most
// keptLimit bytes in all, for good; buffers released beyond that go to a
// sync.Pool, which the garbage collector empties.
const (
	minPooledShift = 10 // 1 KiB
	maxPooledShift = 26 // 64 MiB; larger messages are rare enough to allocate
	keptLimit      = 16 << 20
)

const poolClasses = maxPooledShift - minPooledShift + 1

var (
	kept        [poolClasses][]*[]byte
	keptBytes   int
	keptMu      sync.Mutex
	bufferPools [poolClasses]sync.Pool
)

// poolClass returns the size class of a buffer of n bytes, or -1.
func poolClass(n int) int {
	if n < 1<<minPooledShift || n > 1<<maxPooledShift {
		return -1
	}
	shift := bits.Len(uint(n - 1)) // smallest power of two >= n
	return shift - minPooledShift
}

// getBuffer returns an empty buffer of class c: the one released last, if
// any, else one from the pool, else a new one.
func getBuffer(c int) *[]byte {
	keptMu.Lock()
	if n := len(kept[c]); n > 0 {
		p := kept[c][n-1]
		kept[c][n-1] = nil
		kept[c] = kept[c][:n-1]
		keptBytes -= cap(*p)
		keptMu.Unlock()
		return p
	}
	keptMu.Unlock()
	if p, ok := bufferPools[c].Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, 1<<(c+minPooledShift))
	return &b
}

// putBuffer takes back a buffer of class c for reuse.
func putBuffer(c int, p *[]byte) {
	*p = (*p)[:0]
	keptMu.Lock()
	if keptBytes+cap(*p) <= keptLimit {
		kept[c] = append(kept[c], p)
		keptBytes += cap(*p)
		keptMu.Unlock()
		return
	}
	keptMu.Unlock()
	bufferPools[c].Put(p)
}

// copyIn returns a Go copy of src and, when the copy went into a reusable
// buffer, the handle on it, to give back on Release.
func copyIn(src []byte) (data []byte, pooled *[]byte) {
	c := poolClass(len(src))
	if c < 0 {
		// append to an empty slice does not zero the new memory first.
		return append([]byte{}, src...), nil
	}
	p := getBuffer(c)
	// Capacity cut to the length: an append by the consumer gets memory
	// of its own, and the rest of the buffer (an earlier message's bytes)
	// stays out of reach.
	data = (*p)[:len(src):len(src)]
	copy(data, src)
	return data, p
}

// Release gives the message's Data back to the binding for reuse by a
// later message, and sets Data to nil. Calling it is optional: without
// it, Data is garbage collected as usual. After Release, neither Data nor
// any slice of it may be used. Calling Release twice on the same *Message
// is harmless; releasing two copies of one Message value, or releasing
// from two goroutines at once, would hand one buffer to two later
// messages.
func (m *Message) Release() {
	if m.pooled != nil {
		putBuffer(poolClass(cap(*m.pooled)), m.pooled)
	}
	m.Data, m.pooled = nil, nil
}
