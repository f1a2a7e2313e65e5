package engine

import (
	"io"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// populate readies the whole pages of b for the first piece written into
// them. It faults them in for writing with one system call
// (MADV_POPULATE_WRITE, Linux 5.14 and later; older kernels refuse it and
// the caller's writes fault the pages in one by one): a fault per page
// costs a trap each, and on the VM the benches run on touching 8 MiB page
// by page took 20-27 ms, populating it 1.3-1.8 ms. Then it has the kernel
// write the pages once, reading /dev/zero into them: on that VM (nested
// virtualisation, page-table isolation) the kernel's first access to a
// page costs about as much as a fault again, whoever faulted it in, and a
// web seed's socket writes the first piece straight into its buffer: a
// first 1 MiB read into a buffer we had faulted in and written took
// 1.3-1.9 ms, 20-50 µs once the kernel had written it (kernel and user
// each pay once per page; the caller's own writes pay the user's).
// b's bytes may be left zero.
func populate(b []byte) {
	page := uintptr(os.Getpagesize())
	if uintptr(len(b)) < 2*page {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	skip := (page - start%page) % page
	n := (uintptr(len(b)) - skip) / page * page
	_ = unix.Madvise(b[skip:skip+n], unix.MADV_POPULATE_WRITE)
	if z := devZero(); z != nil {
		_, _ = io.ReadFull(z, b)
	}
}

// devZero is /dev/zero, opened once for the life of the process; nil if it
// cannot be opened (populate then leaves the kernel's first writes to the
// first piece).
var devZero = sync.OnceValue(func() *os.File {
	f, err := os.Open("/dev/zero")
	if err != nil {
		return nil
	}
	return f
})
