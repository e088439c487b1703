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
#include <poll.h>
#include <stdlib.h>
#include <string.h>

extern void goDeliver(void *msg, size_t len);

static void deliver(cpg_handle_t handle, const struct cpg_name *group,
		    uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	goDeliver(msg, len);
}

static void confchg(cpg_handle_t handle, const struct cpg_name *group,
		    const struct cpg_address *members, size_t nmembers,
		    const struct cpg_address *left, size_t nleft,
		    const struct cpg_address *joined, size_t njoined)
{
}

static cpg_handle_t handle;
static int fd;

static void wait_fd(int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	poll(&p, 1, timeout_ms);
}

static cs_error_t start(const char *group)
{
	cpg_callbacks_t callbacks = { deliver, confchg };
	struct cpg_name name;
	cs_error_t err;

	if ((err = cpg_initialize(&handle, &callbacks)) != CS_OK ||
	    (err = cpg_fd_get(handle, &fd)) != CS_OK)
		return err;
	name.length = strlen(group);
	memcpy(name.value, group, name.length);
	while ((err = cpg_join(handle, &name)) == CS_ERR_TRY_AGAIN)
		wait_fd(1);
	return err;
}

static cs_error_t send_one(void *buf, size_t len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
}

static cs_error_t dispatch(void)
{
	return cpg_dispatch(handle, CS_DISPATCH_ALL);
}
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
