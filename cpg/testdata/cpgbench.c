/* The C side of BenchmarkThroughput: join a group alone, multicast COUNT
 * messages of SIZE bytes to it and dispatch until all of them came back,
 * the way a plain single-threaded libcpg program does it. Prints the time
 * from the first send to the last delivery.
 *
 * With "copy" as a fourth argument, the callback also copies each message
 * out of libcpg's buffer into one of KEPT buffers of its own, used in
 * turn: what a C program does when it hands messages on beyond the
 * callback, and what the Go binding always does (Go code may not keep
 * C's memory). */
#include <corosync/cpg.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long received;
static unsigned long checksum;

#define KEPT 16
static char *kept[KEPT];

static void deliver(cpg_handle_t handle, const struct cpg_name *group,
		    uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	unsigned char *data = msg;

	if (kept[0]) {
		data = (unsigned char *)kept[received % KEPT];
		memcpy(data, msg, len);
	}
	received++;
	if (len)
		checksum += data[len - 1];
}

static void confchg(cpg_handle_t handle, const struct cpg_name *group,
		    const struct cpg_address *members, size_t nmembers,
		    const struct cpg_address *left, size_t nleft,
		    const struct cpg_address *joined, size_t njoined)
{
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void wait_fd(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	poll(&p, 1, timeout_ms);
}

/* number parses a whole decimal argument into *out; 0 if it is not one. */
static int number(const char *arg, unsigned long *out)
{
	char *end;

	if (*arg < '0' || *arg > '9')
		return 0;
	*out = strtoul(arg, &end, 10);
	return *end == '\0';
}

int main(int argc, char **argv)
{
	cpg_handle_t handle;
	cpg_callbacks_t callbacks = { deliver, confchg };
	struct cpg_name name;
	struct iovec iov;
	unsigned long count, size, sent = 0;
	cs_error_t err;
	long long start;
	int fd;

	if (argc < 4 || argc > 5 || strlen(argv[1]) > CPG_MAX_NAME_LENGTH ||
	    !number(argv[2], &size) || !number(argv[3], &count) ||
	    (argc == 5 && strcmp(argv[4], "copy") != 0)) {
		fprintf(stderr, "usage: cpgbench GROUP SIZE COUNT [copy]\n");
		return 2;
	}
	if (argc == 5) {
		for (int i = 0; i < KEPT; i++) {
			kept[i] = malloc(size ? size : 1);
			if (!kept[i]) {
				fprintf(stderr, "cpgbench: out of memory\n");
				return 1;
			}
			memset(kept[i], 0, size);
		}
	}
	if (cpg_initialize(&handle, &callbacks) != CS_OK ||
	    cpg_fd_get(handle, &fd) != CS_OK) {
		fprintf(stderr, "cpgbench: cannot connect to corosync\n");
		return 1;
	}
	name.length = strlen(argv[1]);
	memcpy(name.value, argv[1], name.length);
	while ((err = cpg_join(handle, &name)) == CS_ERR_TRY_AGAIN)
		wait_fd(fd, 1);
	if (err != CS_OK) {
		fprintf(stderr, "cpgbench: join: %d\n", err);
		return 1;
	}
	iov.iov_len = size;
	iov.iov_base = malloc(size ? size : 1);
	if (!iov.iov_base) {
		fprintf(stderr, "cpgbench: out of memory\n");
		return 1;
	}
	memset(iov.iov_base, 'x', size);

	start = now_ns();
	while (sent < count) {
		err = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
		if (err == CS_OK)
			sent++;
		else if (err == CS_ERR_TRY_AGAIN)
			wait_fd(fd, 1);
		else {
			fprintf(stderr, "cpgbench: mcast: %d\n", err);
			return 1;
		}
		cpg_dispatch(handle, CS_DISPATCH_ALL);
	}
	while (received < count) {
		wait_fd(fd, -1);
		if (cpg_dispatch(handle, CS_DISPATCH_ALL) != CS_OK) {
			fprintf(stderr, "cpgbench: dispatch failed\n");
			return 1;
		}
	}
	printf("ns %lld checksum %lu\n", now_ns() - start, checksum);
	cpg_finalize(handle);
	return 0;
}
