package groupd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// HelloVersion is the hello format this daemon sends.
const HelloVersion = 1

// The hello is fixed-size binary, big-endian:
//
//	0  magic "GDHL"
//	4  version  uint16
//	6  flags    uint16 (0 in version 1)
//	8  node id  uint32 (must match the cpg sender)
//	12 start    int64, unix nanoseconds when the sender's daemon started
//
// Later versions may only append fields, so a version 1 reader accepts a
// longer hello with a higher version and reads the fields it knows. A node
// we cannot understand is never bypassed: rejecting is the safe side.
const (
	helloMagic = "GDHL"
	helloSize  = 20
)

// Hello is the message each daemon multicasts after joining the group, and
// again whenever others join, so that every member hears it. Together with
// the cpg pid, Start identifies one run (incarnation) of a daemon.
type Hello struct {
	Version uint16
	NodeID  uint32
	Start   time.Time
}

// Marshal encodes h in the format of h.Version, which must be 1.
func (h Hello) Marshal() []byte {
	b := make([]byte, helloSize)
	copy(b, helloMagic)
	binary.BigEndian.PutUint16(b[4:], h.Version)
	binary.BigEndian.PutUint32(b[8:], h.NodeID)
	binary.BigEndian.PutUint64(b[12:], uint64(h.Start.UnixNano()))
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
	return h, nil
}
