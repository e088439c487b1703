package cman

// The //export trampolines that glue.c calls from inside quorum_dispatch.
// A file with //export may only declare C in its preamble, so the C side of
// the callbacks lives in glue.c.

/*
#include <stdint.h>
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"unsafe"
)

// clusterFor finds the Cluster registered under a quorum context. It returns
// nil for a context that is not a live cgo.Handle to a *Cluster, such as 0
// (quorum_context_get failed) or the handle of a Cluster already closed.
func clusterFor(ctx uintptr) (c *Cluster) {
	if ctx == 0 {
		return nil
	}
	defer func() {
		// cgo.Handle.Value panics on a deleted handle.
		if recover() != nil {
			c = nil
		}
	}()
	c, _ = cgo.Handle(ctx).Value().(*Cluster)
	return c
}

// copyIDs copies a node id array that C lends for the duration of a
// callback into Go memory. It never returns nil, so that JSON shows [].
func copyIDs(p *C.uint32_t, n C.uint32_t) []uint32 {
	ids := make([]uint32, int(n))
	if n > 0 && p != nil {
		copy(ids, unsafe.Slice((*uint32)(unsafe.Pointer(p)), int(n)))
	}
	return ids
}

// guard turns a panic in a trampoline into a terminal error for the
// dispatch goroutine, instead of letting it unwind through quorum_dispatch.
func guard(c *Cluster, what string) {
	if r := recover(); r != nil {
		c.callbackFailed(fmt.Errorf("cman: %s callback panicked: %v", what, r))
	}
}

//export cmanQuorumNotify
func cmanQuorumNotify(ctx C.uintptr_t, quorate C.uint32_t, ringNode C.uint32_t, ringSeq C.uint64_t,
	nMembers C.uint32_t, members *C.uint32_t) {
	c := clusterFor(uintptr(ctx))
	if c == nil {
		return // no live Cluster: nothing to deliver to, nobody to tell
	}
	defer guard(c, "quorum notification")
	c.onQuorum(quorate != 0, RingID{NodeID: uint32(ringNode), Seq: uint64(ringSeq)}, copyIDs(members, nMembers))
}

//export cmanNodelistNotify
func cmanNodelistNotify(ctx C.uintptr_t, ringNode C.uint32_t, ringSeq C.uint64_t,
	nMembers C.uint32_t, members *C.uint32_t,
	nJoined C.uint32_t, joined *C.uint32_t,
	nLeft C.uint32_t, left *C.uint32_t) {
	c := clusterFor(uintptr(ctx))
	if c == nil {
		return // no live Cluster: nothing to deliver to, nobody to tell
	}
	defer guard(c, "nodelist notification")
	c.onNodelist(RingID{NodeID: uint32(ringNode), Seq: uint64(ringSeq)},
		copyIDs(members, nMembers), copyIDs(joined, nJoined), copyIDs(left, nLeft))
}
