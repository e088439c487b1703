// Package cpg is a Go binding for corosync 3's libcpg: closed process
// groups, in which every member receives every message and every
// membership change in one agreed order (virtual synchrony).
//
// # From C to Go
//
//	cpg_model_initialize (CPG_MODEL_V1)  New
//	cpg_finalize                         Handle.Close
//	cpg_fd_get, cpg_dispatch             done inside; events arrive on Handle.Events
//	cpg_join, cpg_leave                  Handle.Join, Handle.Leave
//	cpg_mcast_joined                     Handle.Multicast
//	cpg_membership_get                   Handle.MembershipGet
//	cpg_local_get                        Handle.LocalGet
//	cpg_max_atomic_msgsize_get           Handle.MaxAtomicMsgSize
//	cpg_iteration_* NAME_ONLY            Handle.Groups
//	cpg_iteration_* ALL                  Handle.Processes
//	cpg_iteration_* ONE_GROUP            Handle.GroupMembers
//	cpg_deliver_fn_t                     *Message
//	cpg_confchg_fn_t                     *ConfChg
//	cpg_totem_confchg_fn_t               *TotemConfChg
//	cpg_reason_t, CPG_REASON_NODEDOWN    Reason, ReasonNodeDown
//	cpg_guarantee_t, CPG_TYPE_AGREED     Guarantee, Agreed
//	cs_error_t, CS_ERR_TRY_AGAIN         cs.Error, cs.ErrTryAgain (also cpg.ErrTryAgain)
//
// Not wrapped: cpg_initialize (the old model; New gives the same plus
// totem changes), cpg_context_get/set (used inside to find the Handle of a
// callback), cpg_flow_control_state_get (always "disabled" in corosync 3;
// Multicast handles flow control), and the zero-copy cpg_zcb_* calls.
//
// # One ordered stream
//
// Messages, group membership changes and totem ring changes reach the
// caller on a single channel in exactly the order corosync delivered them.
// Keeping them in one stream is what virtual synchrony needs: a member
// knows which members saw a message because no change can overtake it.
//
// After Join come the join's *ConfChg and a *TotemConfChg with the current
// ring, usually in that order (see TotemConfChg). Ring changes arrive as
// *TotemConfChg whether or not the handle is in a group. A *Terminated
// event ends a stream that corosync ended (it exited or dropped the
// connection); the channel is closed right after it, within a second of
// corosync going away. Close the Handle after that too, to release the
// connection.
//
// # Buffering
//
// Events are copied into Go memory inside the callback and queued without
// bound between the dispatch goroutine and the channel. The dispatch
// goroutine never waits for the consumer, so corosync's IPC ring is always
// drained and a slow consumer never causes a drop or a reorder; it costs
// memory instead, as much as the events it has not read. Handle.Pending
// says how many are waiting.
//
// A message's Data belongs to the receiver. A receiver that is done with
// it may hand it back with Message.Release, and a later message of about
// the same size reuses the memory; at high rates and 1 KiB or more per
// message this saves most of the garbage collector's work. Without
// Release, Data is collected like any other memory.
//
// # Dispatch
//
// The dispatch goroutine parks no thread in C. The connection's descriptor
// sits in an epoll set that the Go runtime's poller watches (cs.Waiter);
// the dispatch goroutine sleeps there until corosync has something for it
// or the handle is closed, and nothing polls on a timer. It delivers at
// most 256 events at a time before it looks for a Close, so that Close
// does not wait for a flood of messages to pause.
//
// A Multicast also delivers up to 64 waiting events itself after sending,
// when the dispatch goroutine is not at it, as a single-threaded C client
// dispatches between two sends; more than that is left to the dispatch
// goroutine, so that a flood of incoming messages cannot hold a sender up.
// Either way the events go into the one stream in corosync's order.
//
// The calls that wait for corosync's reply (Join, Leave, Multicast, the
// queries, and cpg_finalize in Close) do wait in C, and corosync's IPC has
// no timeout: against a corosync that is stopped (SIGSTOP, a hung
// machine) but has not closed the connection, such a call returns only
// when corosync resumes or goes away, whatever its context says. A context
// bounds the waiting the binding does itself: back-off after
// CS_ERR_TRY_AGAIN, pacing, and Leave waiting for the join.
//
// # Messages
//
// Multicast sends up to MaxBuffers buffers as one message of up to
// MaxMessageSize bytes (4 GiB - 1, the 32-bit length of corosync's
// fragmentation protocol). Messages larger than MaxAtomicMsgSize (just
// under 1 MiB here) are cut into fragments by libcpg and reassembled for
// every receiver, which holds the whole message in memory. CS_ERR_TRY_AGAIN
// (flow control) is retried with back-off until the context is done (the
// error then wraps the context's error, not cs.ErrTryAgain), and
// each handle aims to keep no more than about 4 MiB of its own messages
// in flight (see Multicast), which keeps flow control rare.
//
// For a fragmented message libcpg handles flow control itself, fragment by
// fragment: it sleeps 10 ms at a time, up to 100 times per fragment,
// printing "sleep. counter=N" on standard error, and the context is not
// looked at meanwhile. If it gives up in the middle of a message, the
// binding sends the message again from the start; receivers' libcpg then
// starts it over and does not free the part it had assembled (a leak in
// libcpg of up to the message's size on every member). The same goes when
// the group's membership changes while the fragments go out: corosync
// then refuses the rest (CS_ERR_INTERRUPT), no member delivers the part
// sent, and the binding sends the message again in the new membership.
//
// A handle multicasts only while it is in a group: corosync drops a
// message from one that is not, and libcpg, which waits for no answer to a
// message of up to MaxAtomicMsgSize, would not say so; Multicast returns
// ErrNotExist instead.
//
// # Concurrency
//
// A Handle's methods may be called from any goroutine, concurrently, also
// while events are being received: the calls that wait for a reply from
// corosync take turns on the connection (libcpg does not serialize them),
// while delivery runs beside them. Close may be called at any time, from
// any goroutine, any number of times: it stops the dispatch goroutine,
// waits for it, closes the channel and only then, once no call is inside
// corosync, calls cpg_finalize; calls after it return ErrClosed.
//
// Corosync knows a member by node id and process id, so one process can be
// in a given group only once. A Handle joins one group, once: corosync does
// not let a connection that left a group join again (see Join).
package cpg
