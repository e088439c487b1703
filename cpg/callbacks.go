package cpg

// The exported trampolines that glue.c calls from inside cpg_dispatch. They
// run on the dispatch goroutine, copy everything C lends them into Go
// memory before returning, and never let a panic unwind into libcpg.

/*
#include <stdint.h>
#include <corosync/cpg.h>
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"unsafe"
)

// deliverHook, when set (tests only), is called with each message's size
// inside the deliver trampoline, where a panic must end the stream.
var deliverHook func(size int)

// handleFor finds the Handle a callback belongs to. A callback for a handle
// that is unknown (never ours, or already closed) is dropped.
func handleFor(ctx C.uintptr_t) (h *Handle) {
	if ctx == 0 {
		return nil
	}
	defer func() {
		if recover() != nil {
			h = nil
		}
	}()
	h, _ = cgo.Handle(ctx).Value().(*Handle)
	return h
}

// guard turns a panic in a trampoline into the stream's terminal error.
func (h *Handle) guard() {
	if r := recover(); r != nil && h.panicked == nil {
		if err, ok := r.(error); ok {
			h.panicked = fmt.Errorf("cpg: panic in event callback: %w", err)
		} else {
			h.panicked = fmt.Errorf("cpg: panic in event callback: %v", r)
		}
	}
}

// groupName returns name as a string, reusing the previous one when it is
// the same, as it nearly always is: one handle, one group.
func (h *Handle) groupName(name *C.char, n C.uint32_t) string {
	b := unsafe.Slice((*byte)(unsafe.Pointer(name)), min(int(n), MaxNameLength))
	if string(b) != h.lastGroup {
		h.lastGroup = string(b)
	}
	return h.lastGroup
}

//export goDeliver
func goDeliver(ctx C.uintptr_t, name *C.char, nameLen C.uint32_t, nodeid, pid C.uint32_t, msg unsafe.Pointer, n C.size_t) {
	h := handleFor(ctx)
	if h == nil || h.panicked != nil {
		return // not ours, or the stream ends at an earlier panic
	}
	defer h.guard()
	if deliverHook != nil {
		deliverHook(int(n))
	}
	data, pooled := copyIn(unsafe.Slice((*byte)(msg), int(n)))
	if uint32(nodeid) == h.self.NodeID && uint32(pid) == h.self.PID {
		h.ownReturned(uint64(n))
	}
	h.collect(&Message{
		Group:  h.groupName(name, nameLen),
		NodeID: uint32(nodeid),
		PID:    uint32(pid),
		Data:   data,
		pooled: pooled,
	})
}

//export goConfchg
func goConfchg(ctx C.uintptr_t, name *C.char, nameLen C.uint32_t,
	members *C.struct_cpg_address, nmembers C.size_t,
	left *C.struct_cpg_address, nleft C.size_t,
	joined *C.struct_cpg_address, njoined C.size_t) {
	h := handleFor(ctx)
	if h == nil || h.panicked != nil {
		return // not ours, or the stream ends at an earlier panic
	}
	defer h.guard()
	h.confchgSeen()
	h.collect(&ConfChg{
		Group:   h.groupName(name, nameLen),
		Members: membersOf(members, int(nmembers)),
		Left:    addressesOf(left, int(nleft)),
		Joined:  addressesOf(joined, int(njoined)),
	})
}

//export goTotemConfchg
func goTotemConfchg(ctx C.uintptr_t, ringNode C.uint32_t, ringSeq C.uint64_t, members *C.uint32_t, n C.uint32_t) {
	h := handleFor(ctx)
	if h == nil || h.panicked != nil {
		return // not ours, or the stream ends at an earlier panic
	}
	defer h.guard()
	ev := &TotemConfChg{Ring: RingID{NodeID: uint32(ringNode), Seq: uint64(ringSeq)}}
	if n > 0 {
		ev.Members = make([]uint32, int(n))
		for i, id := range unsafe.Slice(members, int(n)) {
			ev.Members[i] = uint32(id)
		}
	}
	h.collect(ev)
}
