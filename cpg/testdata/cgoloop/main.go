// Command cgoloop is the C benchmark loop (../cpgbench.c) written in Go:
// it calls libcpg through cgo directly, with no binding, and reads each
// message inside the deliver callback without copying it. It measures
// what any Go program pays for cgo and for the Go runtime, against the C
// program doing the same calls. Usage: cgoloop GROUP SIZE COUNT; prints
// "ns N checksum S" like cpgbench.
package main

/*
#cgo LDFLAGS: -lcpg
#include <corosync/cpg.h>
#include <stdlib.h>
#include <string.h>

// In loop.c: a file with //export may only declare C functions here.
cs_error_t start(const char *group);
cs_error_t send_one(void *buf, size_t len);
cs_error_t dispatch(void);
void wait_fd(int timeout_ms);
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"
)

var received, checksum uint64

//export goDeliver
func goDeliver(msg unsafe.Pointer, n C.size_t) {
	received++
	if n > 0 {
		checksum += uint64(*(*byte)(unsafe.Add(msg, n-1)))
	}
}

func main() {
	if len(os.Args) != 4 || len(os.Args[1]) > C.CPG_MAX_NAME_LENGTH {
		fmt.Fprintln(os.Stderr, "usage: cgoloop GROUP SIZE COUNT")
		os.Exit(2)
	}
	size, err1 := strconv.Atoi(os.Args[2])
	count, err2 := strconv.ParseUint(os.Args[3], 10, 64)
	if err1 != nil || err2 != nil || size < 0 {
		fmt.Fprintln(os.Stderr, "usage: cgoloop GROUP SIZE COUNT")
		os.Exit(2)
	}
	group := C.CString(os.Args[1])
	if err := C.start(group); err != C.CS_OK {
		fmt.Fprintf(os.Stderr, "cgoloop: cannot join: %d\n", err)
		os.Exit(1)
	}
	buf := C.malloc(C.size_t(max(size, 1)))
	if buf == nil {
		fmt.Fprintln(os.Stderr, "cgoloop: out of memory")
		os.Exit(1)
	}
	C.memset(buf, 'x', C.size_t(size))

	start := time.Now()
	for sent := uint64(0); sent < count; {
		switch err := C.send_one(buf, C.size_t(size)); err {
		case C.CS_OK:
			sent++
		case C.CS_ERR_TRY_AGAIN:
			C.wait_fd(1)
		default:
			fmt.Fprintf(os.Stderr, "cgoloop: mcast: %d\n", err)
			os.Exit(1)
		}
		C.dispatch()
	}
	for received < count {
		C.wait_fd(-1)
		if err := C.dispatch(); err != C.CS_OK {
			fmt.Fprintf(os.Stderr, "cgoloop: dispatch: %d\n", err)
			os.Exit(1)
		}
	}
	fmt.Printf("ns %d checksum %d\n", time.Since(start).Nanoseconds(), checksum)
}
