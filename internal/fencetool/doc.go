// Package fencetool has no code: its tests run scripts/fence_tool against
// stub corosync tools and a stub group_tool, to check its decisions and
// its handling of bad input without a cluster. The Docker cluster tests
// (internal/clustertest) run it against real ones.
package fencetool
