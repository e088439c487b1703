package cpg

import (
	"math/bits"
	"sync"
)

// Receive buffers of 16 KiB and more come from pools, one per power of two,
// when the consumer hands them back with Message.Release. Large messages
// otherwise cost a fresh heap allocation each, and at corosync's rates the
// garbage collector and the returning of memory to the kernel then cost
// more CPU than corosync itself (measured: at 1 MiB per message, Go's own
// CPU time per message fell from about 3x to about 1.1x that of a C
// client).
const (
	minPooledShift = 14 // 16 KiB
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

// copyIn returns a Go copy of src, from a pool when it is large enough.
func copyIn(src []byte) (data []byte, pooled bool) {
	c := poolClass(len(src))
	if c < 0 {
		// append to an empty slice does not zero the new memory first.
		return append([]byte{}, src...), false
	}
	var buf []byte
	if p, ok := bufferPools[c].Get().(*[]byte); ok {
		buf = (*p)[:len(src)]
	} else {
		buf = make([]byte, len(src), 1<<(c+minPooledShift))
	}
	copy(buf, src)
	return buf, true
}

func recycle(buf []byte) {
	c := poolClass(cap(buf))
	if c < 0 || cap(buf) != 1<<(c+minPooledShift) {
		return
	}
	buf = buf[:0]
	bufferPools[c].Put(&buf)
}

// Release gives the message's Data back to the binding for reuse by a
// later message, and sets Data to nil. Calling it is optional: without
// it, Data is garbage collected as usual. After Release, neither Data nor
// any slice of it may be used. Calling Release twice is harmless.
func (m *Message) Release() {
	if m.pooled {
		recycle(m.Data)
	}
	m.Data, m.pooled = nil, false
}
