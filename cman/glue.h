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

#endif
