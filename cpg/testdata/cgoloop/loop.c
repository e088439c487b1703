/* The C half of cgoloop: libcpg's calls and callbacks, as in ../cpgbench.c. */
#include <corosync/cpg.h>
#include <poll.h>
#include <string.h>
#include "_cgo_export.h"

static cpg_handle_t handle;
static int fd;

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

void wait_fd(int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	poll(&p, 1, timeout_ms);
}

cs_error_t start(const char *group)
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

cs_error_t send_one(void *buf, size_t len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
}

cs_error_t dispatch(void)
{
	return cpg_dispatch(handle, CS_DISPATCH_ALL);
}
