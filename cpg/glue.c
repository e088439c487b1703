#include <string.h>
#include "glue.h"
#include "_cgo_export.h"

/* Each callback looks up the Go object through the context set at
 * initialization (a runtime/cgo.Handle value, never a Go pointer) and hands
 * the borrowed C memory to Go, which copies it before returning. */

static uintptr_t context_of(cpg_handle_t handle)
{
	void *ctx = NULL;

	if (cpg_context_get(handle, &ctx) != CS_OK)
		return 0;
	return (uintptr_t)ctx;
}

static void deliver_cb(cpg_handle_t handle, const struct cpg_name *group,
		       uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	goDeliver(context_of(handle), (char *)group->value, group->length,
		  nodeid, pid, msg, len);
}

static void confchg_cb(cpg_handle_t handle, const struct cpg_name *group,
		       const struct cpg_address *members, size_t nmembers,
		       const struct cpg_address *left, size_t nleft,
		       const struct cpg_address *joined, size_t njoined)
{
	goConfchg(context_of(handle), (char *)group->value, group->length,
		  (struct cpg_address *)members, nmembers,
		  (struct cpg_address *)left, nleft,
		  (struct cpg_address *)joined, njoined);
}

static void totem_confchg_cb(cpg_handle_t handle, struct cpg_ring_id ring,
			     uint32_t nmembers, const uint32_t *members)
{
	goTotemConfchg(context_of(handle), ring.nodeid, ring.seq,
		       (uint32_t *)members, nmembers);
}

cs_error_t glue_initialize(cpg_handle_t *handle, uintptr_t ctx)
{
	cpg_model_v1_data_t model;

	memset(&model, 0, sizeof(model));
	model.model = CPG_MODEL_V1;
	model.cpg_deliver_fn = deliver_cb;
	model.cpg_confchg_fn = confchg_cb;
	model.cpg_totem_confchg_fn = totem_confchg_cb;
	model.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF;
	return cpg_model_initialize(handle, CPG_MODEL_V1,
				    (cpg_model_data_t *)&model, (void *)ctx);
}

/* glue_dispatch delivers up to max events, one cpg_dispatch
 * (CS_DISPATCH_ONE_NONBLOCKING) each, in one call from Go; it stops at the
 * first error, CS_ERR_TRY_AGAIN once nothing more is ready. */
cs_error_t glue_dispatch(cpg_handle_t handle, int max)
{
	cs_error_t err = CS_OK;

	for (int i = 0; i < max; i++) {
		err = cpg_dispatch(handle, CS_DISPATCH_ONE_NONBLOCKING);
		if (err != CS_OK)
			break;
	}
	return err;
}

cs_error_t glue_mcast1(cpg_handle_t handle, cpg_guarantee_t guarantee,
		       void *buf, size_t len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return cpg_mcast_joined(handle, guarantee, &iov, 1);
}

static void set_name(struct cpg_name *n, const char *name, uint32_t len)
{
	memset(n, 0, sizeof(*n));
	n->length = len;
	memcpy(n->value, name, len);
}

cs_error_t glue_join(cpg_handle_t handle, const char *name, uint32_t len)
{
	struct cpg_name n;

	set_name(&n, name, len);
	return cpg_join(handle, &n);
}

cs_error_t glue_leave(cpg_handle_t handle, const char *name, uint32_t len)
{
	struct cpg_name n;

	set_name(&n, name, len);
	return cpg_leave(handle, &n);
}

cs_error_t glue_membership(cpg_handle_t handle, const char *name, uint32_t len,
			   struct cpg_address *members, int *count)
{
	struct cpg_name n;

	set_name(&n, name, len);
	return cpg_membership_get(handle, &n, members, count);
}

cs_error_t glue_iteration_initialize(cpg_handle_t handle, cpg_iteration_type_t type,
				     const char *name, uint32_t len,
				     cpg_iteration_handle_t *iter)
{
	struct cpg_name n;

	if (type != CPG_ITERATION_ONE_GROUP)
		return cpg_iteration_initialize(handle, type, NULL, iter);
	set_name(&n, name, len);
	return cpg_iteration_initialize(handle, type, &n, iter);
}
