package cpg

import (
	"math/bits"
	"sync"
)

// Receive buffers of 1 KiB and more come from pools, one per power of two,
// when the consumer hands them back with Message.Release. Such messages
// otherwise cost a fresh heap allocation each, and at corosync's rates the
// garbage collector and the returning of memory to the kernel then cost
// more CPU than corosync itself (measured: at 1 MiB per message, Go's own
// CPU time per message fell from about 3x to about 1.1x that of a C
// client; at 1 KiB, a small standalone program took a sixth less time
// per message, while the benchmark, inside a test binary with a larger
// heap, showed no difference). Below 1 KiB an allocation costs about what
// a pool does.
const (
	minPooledShift = 10 // 1 KiB
	maxPooledShift = 26 // 64 MiB; larger messages are rare enough to allocate
)

var bufferPools [maxPooledShift - minPooledShift + 1]sync.Pool

// poolClass returns the pool for a buffer of n bytes, or -1.
func poolClass(n int) int {
	if n < 1<<minPooledShift || n > 1<<maxPooledShift {
		return -1
	}
	shift := bits.Len(uint(n - 1)) // smallest power of two >= n
	return shift - minPooledShift
}

// copyIn returns a Go copy of src and, when the copy came from a pool,
// the pool's handle on it, to give back on Release.
func copyIn(src []byte) (data []byte, pooled *[]byte) {
	c := poolClass(len(src))
	if c < 0 {
		// append to an empty slice does not zero the new memory first.
		return append([]byte{}, src...), nil
	}
	p, ok := bufferPools[c].Get().(*[]byte)
	if !ok {
		b := make([]byte, 0, 1<<(c+minPooledShift))
		p = &b
	}
	data = (*p)[:len(src)]
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
		*m.pooled = (*m.pooled)[:0]
		bufferPools[poolClass(cap(*m.pooled))].Put(m.pooled)
	}
	m.Data, m.pooled = nil, nil
}
