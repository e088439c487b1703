// Package cs holds what the cpg and cman packages share: corosync's
// cs_error_t (corotypes.h) as a Go error type, and Waiter, which sleeps until
// a corosync library's descriptor is readable.
//
// Every corosync value has a named Go value, so callers can write
//
//	if errors.Is(err, cs.ErrTryAgain) { ... }
//
// through any amount of fmt.Errorf("...: %w") wrapping.
package cs

import "fmt"

// Error is a corosync cs_error_t other than CS_OK.
type Error int

// The cs_error_t values of corosync 3 (corotypes.h). CS_OK (1) is not an
// error and is never returned as one.
const (
	ErrLibrary           Error = 2
	ErrVersion           Error = 3
	ErrInit              Error = 4
	ErrTimeout           Error = 5
	ErrTryAgain          Error = 6
	ErrInvalidParam      Error = 7
	ErrNoMemory          Error = 8
	ErrBadHandle         Error = 9
	ErrBusy              Error = 10
	ErrAccess            Error = 11
	ErrNotExist          Error = 12
	ErrNameTooLong       Error = 13
	ErrExist             Error = 14
	ErrNoSpace           Error = 15
	ErrInterrupt         Error = 16
	ErrNameNotFound      Error = 17
	ErrNoResources       Error = 18
	ErrNotSupported      Error = 19
	ErrBadOperation      Error = 20
	ErrFailedOperation   Error = 21
	ErrMessageError      Error = 22
	ErrQueueFull         Error = 23
	ErrQueueNotAvailable Error = 24
	ErrBadFlags          Error = 25
	ErrTooBig            Error = 26
	ErrNoSections        Error = 27
	ErrContextNotFound   Error = 28
	ErrTooManyGroups     Error = 30
	ErrSecurity          Error = 100
)

var names = map[Error]string{
	ErrLibrary:           "CS_ERR_LIBRARY",
	ErrVersion:           "CS_ERR_VERSION",
	ErrInit:              "CS_ERR_INIT",
	ErrTimeout:           "CS_ERR_TIMEOUT",
	ErrTryAgain:          "CS_ERR_TRY_AGAIN",
	ErrInvalidParam:      "CS_ERR_INVALID_PARAM",
	ErrNoMemory:          "CS_ERR_NO_MEMORY",
	ErrBadHandle:         "CS_ERR_BAD_HANDLE",
	ErrBusy:              "CS_ERR_BUSY",
	ErrAccess:            "CS_ERR_ACCESS",
	ErrNotExist:          "CS_ERR_NOT_EXIST",
	ErrNameTooLong:       "CS_ERR_NAME_TOO_LONG",
	ErrExist:             "CS_ERR_EXIST",
	ErrNoSpace:           "CS_ERR_NO_SPACE",
	ErrInterrupt:         "CS_ERR_INTERRUPT",
	ErrNameNotFound:      "CS_ERR_NAME_NOT_FOUND",
	ErrNoResources:       "CS_ERR_NO_RESOURCES",
	ErrNotSupported:      "CS_ERR_NOT_SUPPORTED",
	ErrBadOperation:      "CS_ERR_BAD_OPERATION",
	ErrFailedOperation:   "CS_ERR_FAILED_OPERATION",
	ErrMessageError:      "CS_ERR_MESSAGE_ERROR",
	ErrQueueFull:         "CS_ERR_QUEUE_FULL",
	ErrQueueNotAvailable: "CS_ERR_QUEUE_NOT_AVAILABLE",
	ErrBadFlags:          "CS_ERR_BAD_FLAGS",
	ErrTooBig:            "CS_ERR_TOO_BIG",
	ErrNoSections:        "CS_ERR_NO_SECTIONS",
	ErrContextNotFound:   "CS_ERR_CONTEXT_NOT_FOUND",
	ErrTooManyGroups:     "CS_ERR_TOO_MANY_GROUPS",
	ErrSecurity:          "CS_ERR_SECURITY",
}

var descriptions = map[Error]string{
	ErrLibrary:           "corosync library error (is corosync running?)",
	ErrVersion:           "version mismatch",
	ErrInit:              "initialization failed",
	ErrTimeout:           "timed out",
	ErrTryAgain:          "try again",
	ErrInvalidParam:      "invalid parameter",
	ErrNoMemory:          "out of memory",
	ErrBadHandle:         "bad handle",
	ErrBusy:              "busy",
	ErrAccess:            "access denied",
	ErrNotExist:          "does not exist",
	ErrNameTooLong:       "name too long",
	ErrExist:             "already exists",
	ErrNoSpace:           "no space",
	ErrInterrupt:         "interrupted",
	ErrNameNotFound:      "name not found",
	ErrNoResources:       "no resources",
	ErrNotSupported:      "not supported",
	ErrBadOperation:      "bad operation",
	ErrFailedOperation:   "operation failed",
	ErrMessageError:      "message error",
	ErrQueueFull:         "queue full",
	ErrQueueNotAvailable: "queue not available",
	ErrBadFlags:          "bad flags",
	ErrTooBig:            "too big",
	ErrNoSections:        "no more sections",
	ErrContextNotFound:   "context not found",
	ErrTooManyGroups:     "too many groups",
	ErrSecurity:          "security error",
}

// Name returns the C name of the value, such as "CS_ERR_TRY_AGAIN".
func (e Error) Name() string {
	if n, ok := names[e]; ok {
		return n
	}
	return fmt.Sprintf("cs_error_t(%d)", int(e))
}

// Error describes e and names its cs_error_t value.
func (e Error) Error() string {
	if d, ok := descriptions[e]; ok {
		return fmt.Sprintf("%s (%s)", d, names[e])
	}
	return fmt.Sprintf("unknown corosync error %d", int(e))
}

// Temporary reports whether retrying the same call later may succeed.
func (e Error) Temporary() bool { return e == ErrTryAgain }

// Result converts a cs_error_t return value into a Go error: nil for CS_OK
// (1), an Error otherwise.
func Result(code int) error {
	if code == 1 {
		return nil
	}
	return Error(code)
}
