// Package cman gives the cman calls a groupd needs on corosync 3: our node
// id and name, the node list, quorum and votes, one ordered stream of
// membership and quorum events, and killing a node. libcman itself went
// into corosync 2; this package is built on libquorum, libvotequorum,
// libcmap and libcfg instead.
//
// A Cluster holds one handle of each library. Open connects, Close
// disconnects; every method is safe from any goroutine.
//
// # C names and Go names
//
//	quorum_model_initialize (V1)    Open
//	votequorum_initialize           Open
//	cmap_initialize                 Open
//	corosync_cfg_initialize         Open
//	corosync_cfg_local_get          Open, Cluster.NodeID
//	quorum_trackstart               Open (CS_TRACK_CURRENT|CS_TRACK_CHANGES)
//	quorum_fd_get, quorum_dispatch  the dispatch goroutine behind Events
//	quorum_finalize, votequorum_finalize,
//	cmap_finalize, corosync_cfg_finalize  Cluster.Close
//	votequorum_getinfo              Cluster.Quorate (its quorate flag; see there why
//	                                not quorum_getquorate), Cluster.Quorum,
//	                                Cluster.Nodes (votes, member)
//	cmap nodelist.node.X.*          Cluster.Nodes, Cluster.LocalNode
//	corosync_cfg_kill_node          Cluster.KillNode (corosync_cfg_fd_get at Open:
//	                                its descriptor tells a lost connection)
//	quorum_v1_nodelist_notification_fn_t  Event of kind EventMembership
//	quorum_v1_quorum_notification_fn_t    Event of kind EventQuorum
//	struct quorum_ring_id           RingID
//	cs_error_t                      cs.Error (package cs), wrapped with context
//
// # Events
//
// Both notifications come from the one quorum handle, so Events is one
// stream in corosync's order. Joined and Left are corosync's own lists from
// the nodelist notification, never a diff of member lists. The stream
// starts with the current state (CS_TRACK_CURRENT) and is buffered without
// bound, so a slow consumer misses nothing. When corosync goes away the
// stream ends with an EventError and is closed; the package does not
// reconnect: Open a new Cluster once corosync is back.
//
// # Node names
//
// A node's name is its nodelist name; without one, its ring0_addr; without
// that, "node<ID>".
//
// The package logs nothing. Callbacks from corosync that reach no live
// Cluster are dropped.
package cman
