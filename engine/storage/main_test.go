package storage

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves a goroutine behind: File's hashing
// workers at Open, and the cache's own goroutines, must all have ended.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
