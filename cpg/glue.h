/* C side of the cpg binding: callbacks that forward to Go, and small
 * wrappers that keep pointer casts and iovec building out of Go. */
#ifndef GROUPD_CPG_GLUE_H
#define GROUPD_CPG_GLUE_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <corosync/cpg.h>

/* Corosync's real limit on processes in one membership list
 * (PROCESSOR_COUNT_MAX in corodefs.h), larger than CPG_MEMBERS_MAX. */
#define GLUE_MEMBERS_MAX 384

cs_error_t glue_initialize(cpg_handle_t *handle, uintptr_t ctx);
cs_error_t glue_dispatch(cpg_handle_t handle, int max);
cs_error_t glue_mcast1(cpg_handle_t handle, cpg_guarantee_t guarantee,
		       void *buf, size_t len);
cs_error_t glue_join(cpg_handle_t handle, const char *name, uint32_t len);
cs_error_t glue_leave(cpg_handle_t handle, const char *name, uint32_t len);
cs_error_t glue_membership(cpg_handle_t handle, const char *name, uint32_t len,
			   struct cpg_address *members, int *count);
cs_error_t glue_iteration_initialize(cpg_handle_t handle, cpg_iteration_type_t type,
				     const char *name, uint32_t len,
				     cpg_iteration_handle_t *iter);

#endif
