package peer

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind (the libtorrent
// interop test starts a process and reader goroutines).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
