/*
 * C side of package cman: the corosync headers, the quorum callbacks that
 * forward to the Go trampolines in callbacks.go, and two small helpers whose
 * C types are awkward to handle from Go.
 */
#ifndef GROUPD_CMAN_GLUE_H
#define GROUPD_CMAN_GLUE_H

#include <stdint.h>
#include <stdlib.h>
#include <corosync/corotypes.h>
#include <corosync/quorum.h>
#include <corosync/votequorum.h>
#include <corosync/cmap.h>
#include <corosync/cfg.h>

/*
 * quorum_model_initialize with QUORUM_MODEL_V1 and both v1 callbacks. ctx is
 * a runtime/cgo.Handle value: an integer, never a Go pointer.
 */
cs_error_t cman_quorum_open(quorum_handle_t *handle, uintptr_t ctx, uint32_t *quorum_type);

/*
 * Reads an integer cmap value of any width and signedness as int64. Returns
 * CS_ERR_INVALID_PARAM when the value is not an integer.
 */
cs_error_t cman_cmap_get_int(cmap_handle_t handle, const char *key, cmap_value_types_t type, int64_t *out);

/*
 * corosync_cfg_kill_node, telling a request that got no reply from one
 * corosync answered. libcfg (3.1.7) drops the error of its IPC call and
 * returns the error field of its reply buffer, which is uninitialized stack
 * when no reply came: anything, CS_OK included. cman_kill_node first fills
 * the stack that call will use with CMAN_NO_REPLY, a value no reply holds,
 * so that such a call returns CMAN_NO_REPLY (also the first call of a
 * process: see cfg_kill_node in glue.c).
 */
#define CMAN_NO_REPLY 0x6e6f7270
cs_error_t cman_kill_node(corosync_cfg_handle_t handle, unsigned int nodeid, const char *reason);

#endif
