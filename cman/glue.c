#include "glue.h"
#include "_cgo_export.h"

/*
 * The quorum library passes us the handle; the Go object is found from the
 * context registered with quorum_model_initialize. A context that cannot be
 * read is passed on as 0, which the Go side drops.
 */
static uintptr_t context_of(quorum_handle_t handle)
{
	const void *ctx = NULL;

	if (quorum_context_get(handle, &ctx) != CS_OK) {
		return 0;
	}
	return (uintptr_t)ctx;
}

static void on_quorum(quorum_handle_t handle, uint32_t quorate,
	struct quorum_ring_id ring_id,
	uint32_t member_entries, const uint32_t *members)
{
	cmanQuorumNotify(context_of(handle), quorate, ring_id.nodeid, ring_id.seq,
		member_entries, (uint32_t *)members);
}

static void on_nodelist(quorum_handle_t handle, struct quorum_ring_id ring_id,
	uint32_t member_entries, const uint32_t *members,
	uint32_t joined_entries, const uint32_t *joined,
	uint32_t left_entries, const uint32_t *left)
{
	cmanNodelistNotify(context_of(handle), ring_id.nodeid, ring_id.seq,
		member_entries, (uint32_t *)members,
		joined_entries, (uint32_t *)joined,
		left_entries, (uint32_t *)left);
}

cs_error_t cman_quorum_open(quorum_handle_t *handle, uintptr_t ctx, uint32_t *quorum_type)
{
	quorum_model_v1_data_t data = {
		.model = QUORUM_MODEL_V1,
		.quorum_notify_fn = on_quorum,
		.nodelist_notify_fn = on_nodelist,
	};

	return quorum_model_initialize(handle, QUORUM_MODEL_V1,
		(quorum_model_data_t *)&data, quorum_type, (void *)ctx);
}

cs_error_t cman_cmap_get_int(cmap_handle_t handle, const char *key, cmap_value_types_t type, int64_t *out)
{
	cs_error_t err;

	/* *out is written only on success. */
	switch (type) {
	case CMAP_VALUETYPE_INT8:   { int8_t v;   if ((err = cmap_get_int8(handle, key, &v)) == CS_OK)   *out = v; return err; }
	case CMAP_VALUETYPE_UINT8:  { uint8_t v;  if ((err = cmap_get_uint8(handle, key, &v)) == CS_OK)  *out = v; return err; }
	case CMAP_VALUETYPE_INT16:  { int16_t v;  if ((err = cmap_get_int16(handle, key, &v)) == CS_OK)  *out = v; return err; }
	case CMAP_VALUETYPE_UINT16: { uint16_t v; if ((err = cmap_get_uint16(handle, key, &v)) == CS_OK) *out = v; return err; }
	case CMAP_VALUETYPE_INT32:  { int32_t v;  if ((err = cmap_get_int32(handle, key, &v)) == CS_OK)  *out = v; return err; }
	case CMAP_VALUETYPE_UINT32: { uint32_t v; if ((err = cmap_get_uint32(handle, key, &v)) == CS_OK) *out = v; return err; }
	case CMAP_VALUETYPE_INT64:  { int64_t v;  if ((err = cmap_get_int64(handle, key, &v)) == CS_OK)  *out = v; return err; }
	case CMAP_VALUETYPE_UINT64: { uint64_t v; if ((err = cmap_get_uint64(handle, key, &v)) == CS_OK) *out = (int64_t)v; return err; }
	default:
		return CS_ERR_INVALID_PARAM;
	}
}

/*
 * Fills the next 4 KiB of stack below the caller's frame with CMAN_NO_REPLY.
 * A library call made next from the same caller gets its frame there.
 */
static __attribute__((noinline)) void poison_stack(void)
{
	volatile uint32_t area[1024];

	for (int i = 0; i < 1024; i++) {
		area[i] = CMAN_NO_REPLY;
	}
}

/*
 * corosync_cfg_kill_node, called through a pointer that is filled in when
 * the program is loaded. A first call through the PLT would run the dynamic
 * linker's lazy resolver in between, which saves registers on the very
 * stack poison_stack has just filled.
 */
static cs_error_t (*volatile cfg_kill_node)(corosync_cfg_handle_t, unsigned int, const char *) = corosync_cfg_kill_node;

cs_error_t cman_kill_node(corosync_cfg_handle_t handle, unsigned int nodeid, const char *reason)
{
	poison_stack();
	return cfg_kill_node(handle, nodeid, reason);
}
