package groupd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// HelloVersion is the hello format this daemon sends.
const HelloVersion = 3

// The hello is fixed-size binary, big-endian:
//
//	0  magic "GDHL"
//	4  version  uint16
//	6  flags    uint16 (0 in version 1)
//	8  node id  uint32 (must match the cpg sender)
//	12 start    int64, unix nanoseconds when the sender's daemon started
//
// Version 2 appends the runs the sender distrusts (see Hello.Distrusted),
// so that a daemon that joins later does not vouch for them on their
// hello alone:
//
//	20 count    uint16
//	22 count runs of 16 bytes: node id uint32, pid uint32, start int64
//	   (unix nanoseconds; 0 stands for any run of the pid: the sender
//	   never heard its hello, or names the pid of a failed run past what
//	   its recovery set keeps)
//
// Version 3 appends the group's members as the sender saw them when it
// wrote the hello (see Hello.Members), so that a receiver waiting for what
// a member knows after a join or merge can tell that member's answer to
// it from a hello written before; after the distrusted runs:
//
//	count    uint16
//	count processes of 8 bytes: node id uint32, pid uint32
//
// Later versions may only append fields, so a reader accepts a longer
// hello with a higher version and reads the fields it knows. A node we
// cannot understand is never bypassed: rejecting is the safe side.
const (
	helloMagic   = "GDHL"
	helloSize    = 20
	helloV2Size  = 22
	helloRunSize = 16
	// maxDistrusted bounds the runs one hello carries, and maxSeen the
	// members: more than corosync allows in a group.
	maxDistrusted   = 1024
	maxSeen         = 1024
	helloMemberSize = 8
)

// Hello is the message each daemon multicasts after joining the group, and
// again whenever others join or merge in, or a member turns out to be a
// failed or distrusted run, so that every member hears it. Together with
// the cpg pid, Start identifies one run (incarnation) of a daemon.
type Hello struct {
	Version uint16
	NodeID  uint32
	Start   time.Time
	// Distrusted (version 2): runs of other members the sender holds
	// unvouched until they leave the group and join again: those it holds
	// stale (merged back after a partition with whatever dlm/gfs state
	// they held, seen failing, listed while their node left the cluster,
	// or named by another daemon); those merged back, heard or not,
	// that have the pid of a failed run of a pending recovery set (the
	// receiver compares the start with the member's hello); and starts
	// other daemons named for a member before it heard that member's
	// hello, passed on. A zero start stands for any run of the pid.
	Distrusted []Run
	// Members (version 3): the group's members, the sender included, as
	// the sender saw them when it wrote the hello (the first maxSeen of
	// them, more than corosync allows). Nil for older versions.
	Members []Process
}

// Process is one process in the group: its node and cpg pid.
type Process struct {
	NodeID uint32
	PID    uint32
}

// Run is one run of a daemon: its node, cpg pid and start time (zero if
// not known).
type Run struct {
	NodeID uint32
	PID    uint32
	Start  time.Time
}

// Marshal encodes h in the format of h.Version, which must be 1, 2 or 3;
// a version 1 hello carries no distrusted runs, and only version 3 its
// members.
func (h Hello) Marshal() []byte {
	size := helloSize
	if h.Version >= 2 {
		size = helloV2Size + helloRunSize*len(h.Distrusted)
	}
	membersAt := size
	if h.Version >= 3 {
		size += 2 + helloMemberSize*len(h.Members)
	}
	b := make([]byte, size)
	copy(b, helloMagic)
	binary.BigEndian.PutUint16(b[4:], h.Version)
	binary.BigEndian.PutUint32(b[8:], h.NodeID)
	binary.BigEndian.PutUint64(b[12:], uint64(h.Start.UnixNano()))
	if h.Version >= 2 {
		binary.BigEndian.PutUint16(b[20:], uint16(len(h.Distrusted)))
		for i, r := range h.Distrusted {
			o := helloV2Size + helloRunSize*i
			binary.BigEndian.PutUint32(b[o:], r.NodeID)
			binary.BigEndian.PutUint32(b[o+4:], r.PID)
			var start int64
			if !r.Start.IsZero() {
				start = r.Start.UnixNano()
			}
			binary.BigEndian.PutUint64(b[o+8:], uint64(start))
		}
	}
	if h.Version >= 3 {
		binary.BigEndian.PutUint16(b[membersAt:], uint16(len(h.Members)))
		for i, p := range h.Members {
			o := membersAt + 2 + helloMemberSize*i
			binary.BigEndian.PutUint32(b[o:], p.NodeID)
			binary.BigEndian.PutUint32(b[o+4:], p.PID)
		}
	}
	return b
}

var errNotHello = errors.New("not a groupd hello")

// ParseHello decodes a hello, rejecting anything that is not one.
func ParseHello(b []byte) (Hello, error) {
	if len(b) < helloSize || string(b[:4]) != helloMagic {
		return Hello{}, errNotHello
	}
	h := Hello{
		Version: binary.BigEndian.Uint16(b[4:]),
		NodeID:  binary.BigEndian.Uint32(b[8:]),
	}
	flags := binary.BigEndian.Uint16(b[6:])
	start := int64(binary.BigEndian.Uint64(b[12:]))
	switch {
	case h.Version == 0:
		return Hello{}, fmt.Errorf("groupd hello with version 0")
	case h.Version == 1 && len(b) != helloSize:
		return Hello{}, fmt.Errorf("groupd hello version 1 of %d bytes, want %d", len(b), helloSize)
	case h.Version == 1 && flags != 0:
		return Hello{}, fmt.Errorf("groupd hello version 1 with flags %#x", flags)
	case h.NodeID == 0:
		return Hello{}, fmt.Errorf("groupd hello from node id 0")
	case start <= 0:
		return Hello{}, fmt.Errorf("groupd hello with start time %d", start)
	}
	h.Start = time.Unix(0, start).UTC()
	if h.Version < 2 {
		return h, nil
	}
	if len(b) < helloV2Size {
		return Hello{}, fmt.Errorf("groupd hello version %d of %d bytes, too short for its distrusted runs", h.Version, len(b))
	}
	if h.Version == 2 && flags != 0 {
		return Hello{}, fmt.Errorf("groupd hello version 2 with flags %#x", flags)
	}
	n := int(binary.BigEndian.Uint16(b[20:]))
	size := helloV2Size + helloRunSize*n
	switch {
	case n > maxDistrusted:
		return Hello{}, fmt.Errorf("groupd hello with %d distrusted runs, at most %d", n, maxDistrusted)
	case len(b) < size, h.Version == 2 && len(b) != size:
		return Hello{}, fmt.Errorf("groupd hello version %d of %d bytes for %d distrusted runs, want %d", h.Version, len(b), n, size)
	}
	for i := range n {
		o := helloV2Size + helloRunSize*i
		r := Run{NodeID: binary.BigEndian.Uint32(b[o:]), PID: binary.BigEndian.Uint32(b[o+4:])}
		start := int64(binary.BigEndian.Uint64(b[o+8:]))
		if r.NodeID == 0 || r.PID == 0 || start < 0 {
			return Hello{}, fmt.Errorf("groupd hello with an invalid distrusted run (node %d pid %d start %d)", r.NodeID, r.PID, start)
		}
		if start > 0 {
			r.Start = time.Unix(0, start).UTC()
		}
		h.Distrusted = append(h.Distrusted, r)
	}
	if h.Version < 3 {
		return h, nil
	}
	if len(b) < size+2 {
		return Hello{}, fmt.Errorf("groupd hello version %d of %d bytes, too short for its members", h.Version, len(b))
	}
	if h.Version == 3 && flags != 0 {
		return Hello{}, fmt.Errorf("groupd hello version 3 with flags %#x", flags)
	}
	m := int(binary.BigEndian.Uint16(b[size:]))
	end := size + 2 + helloMemberSize*m
	switch {
	case m > maxSeen:
		return Hello{}, fmt.Errorf("groupd hello with %d members, at most %d", m, maxSeen)
	case len(b) < end, h.Version == 3 && len(b) != end:
		return Hello{}, fmt.Errorf("groupd hello version %d of %d bytes for %d distrusted runs and %d members, want %d", h.Version, len(b), n, m, end)
	}
	h.Members = make([]Process, 0, m)
	for i := range m {
		o := size + 2 + helloMemberSize*i
		p := Process{NodeID: binary.BigEndian.Uint32(b[o:]), PID: binary.BigEndian.Uint32(b[o+4:])}
		if p.NodeID == 0 || p.PID == 0 {
			return Hello{}, fmt.Errorf("groupd hello with an invalid member (node %d pid %d)", p.NodeID, p.PID)
		}
		h.Members = append(h.Members, p)
	}
	return h, nil
}
