package fs

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// blockedHost is the sample torrent with big.bin entirely missing.
func blockedHost() (*fakeHost, *fakeTorrent, string) {
	host, sample, _ := sampleHost()
	big := sample.Info().Files[13]
	sample.setHave(int(big.Offset/samplePiece), int((big.Offset+big.Length)/samplePiece)+1, false)
	return host, sample, "sample/big.bin"
}

func TestBlockedReadInterrupted(t *testing.T) {
	host, sample, blocked := blockedHost()
	_, mnt, _ := mountT(t, host, Options{})
	for _, prog := range [][]string{
		{"cat", filepath.Join(mnt, blocked)},
		{"dd", "if=" + filepath.Join(mnt, blocked), "of=/dev/null", "bs=1M", "count=4"},
	} {
		t.Run(prog[0], func(t *testing.T) {
			cancelled := sample.cancelled.Load()
			cmd := exec.Command(prog[0], prog[1:]...)
			cmd.Stdout = io.Discard
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() { cmd.Process.Kill(); <-exited })
			eventually(t, 5*time.Second, "the read to block", func() bool { return sample.waiting.Load() > 0 })
			start := time.Now()
			cmd.Process.Signal(os.Interrupt)
			select {
			case err := <-exited:
				exited <- err
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
					t.Errorf("%s ended with %v, want killed by SIGINT", prog[0], err)
				}
				t.Logf("%s exited %v after SIGINT", prog[0], time.Since(start))
			case <-time.After(3 * time.Second):
				t.Fatalf("%s still blocked 3s after SIGINT", prog[0])
			}
			// The read's context was cancelled: nothing is left waiting.
			eventually(t, 2*time.Second, "the reader's ctx to be cancelled", func() bool {
				return sample.cancelled.Load() > cancelled && sample.waiting.Load() == 0
			})
		})
	}
	// The reader of each interrupted program was closed.
	eventually(t, 2*time.Second, "readers closed", func() bool { return sample.closed.Load() == sample.opened.Load() })
}

func TestBlockedReadResumes(t *testing.T) {
	host, sample, blocked := blockedHost()
	_, mnt, _ := mountT(t, host, Options{})
	want := fileData(sampleFiles())["big.bin"]
	got := make(chan []byte, 1)
	go func() {
		b, _ := os.ReadFile(filepath.Join(mnt, blocked))
		got <- b
	}()
	eventually(t, 5*time.Second, "the read to block", func() bool { return sample.waiting.Load() > 0 })
	sample.setHave(0, 1000, true)
	select {
	case b := <-got:
		if string(b) != string(want) {
			t.Errorf("read %d bytes, content differs", len(b))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read still blocked after the pieces arrived")
	}
}

func TestReadTimeout(t *testing.T) {
	host, sample, blocked := blockedHost()
	_, mnt, log := mountT(t, host, Options{ReadTimeout: 300 * time.Millisecond})
	f, err := os.Open(filepath.Join(mnt, blocked))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	within(t, 10*time.Second, "a read past the timeout", func() {
		_, err = f.ReadAt(make([]byte, 4096), 1<<20)
	})
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("read: %v, want EIO", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("read failed after %v, before the timeout", d)
	}
	if !log.contains("big.bin") {
		t.Errorf("no log line for the timed-out read")
	}
	// Other files are fine, and the blocked one reads once its data is in.
	if _, err := os.ReadFile(filepath.Join(mnt, "sample/README.txt")); err != nil {
		t.Errorf("README after timeout: %v", err)
	}
	sample.setHave(0, 1000, true)
	if _, err := f.ReadAt(make([]byte, 4096), 1<<20); err != nil {
		t.Errorf("read after the data arrived: %v", err)
	}
}

func TestUnmountDuringRead(t *testing.T) {
	host, sample, blocked := blockedHost()
	srv, mnt, _ := mountT(t, host, Options{})
	cmd := exec.Command("cat", filepath.Join(mnt, blocked))
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	eventually(t, 5*time.Second, "the read to block", func() bool { return sample.waiting.Load() > 0 })
	within(t, 15*time.Second, "Unmount with a read in flight", func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
	})
	select {
	case err := <-exited:
		exited <- err
		if err == nil {
			t.Errorf("cat succeeded on an unmounted file")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cat still blocked after unmount")
	}
	within(t, 5*time.Second, "Wait", srv.Wait)
	if _, mounted := mountedOn(mnt); mounted {
		t.Errorf("still mounted")
	}
	if sample.waiting.Load() != 0 {
		t.Errorf("%d reads still waiting", sample.waiting.Load())
	}
}

// TestReadNoAllocs: a read of cached data allocates nothing of ours (the one
// allocation is go-fuse's ReadResultData).
func TestReadNoAllocs(t *testing.T) {
	host, sample, _ := sampleHost()
	_ = host
	srv := &Server{closing: make(chan struct{}), readTimeout: time.Minute, logf: t.Logf}
	big := sample.Info().Files[13]
	n := &fileNode{srv: srv, t: sample, index: 13, size: big.Length}
	h := &fileHandle{n: n, r: sample.NewReader(13, false)}
	ctx := &fuse.Context{Cancel: make(chan struct{})}
	buf := make([]byte, 1<<20)
	allocs := testing.AllocsPerRun(200, func() {
		res, errno := h.Read(ctx, buf, 1<<20)
		if errno != 0 || res.Size() != len(buf) {
			t.Fatalf("Read: %v, %d bytes", errno, res.Size())
		}
	})
	if allocs > 1 {
		t.Errorf("%.1f allocations per read, want at most 1", allocs)
	}
}

func TestReadCtx(t *testing.T) {
	closing := make(chan struct{})
	t.Run("cached read never makes a channel", func(t *testing.T) {
		c := newReadCtx(&fuse.Context{Cancel: make(chan struct{})}, closing, nil, time.Minute)
		if c.Err() != nil {
			t.Fatal(c.Err())
		}
		if dl, ok := c.Deadline(); !ok || time.Until(dl) < 50*time.Second {
			t.Errorf("deadline %v %v", dl, ok)
		}
		if err := c.release(); err != nil {
			t.Errorf("release: %v", err)
		}
	})
	t.Run("interrupt", func(t *testing.T) {
		cancel := make(chan struct{})
		c := newReadCtx(&fuse.Context{Cancel: cancel}, closing, nil, time.Minute)
		done := c.Done()
		close(cancel)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("not done after interrupt")
		}
		if !errors.Is(c.Err(), context.Canceled) || toErrno(c.release()) != syscall.EINTR {
			t.Errorf("err %v", c.Err())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		c := newReadCtx(&fuse.Context{Cancel: make(chan struct{})}, closing, nil, 20*time.Millisecond)
		<-c.Done()
		if err := c.release(); !errors.Is(err, context.DeadlineExceeded) || toErrno(err) != syscall.EIO {
			t.Errorf("err %v", err)
		}
	})
	t.Run("timeout before Done", func(t *testing.T) {
		c := newReadCtx(&fuse.Context{Cancel: make(chan struct{})}, closing, nil, time.Nanosecond)
		time.Sleep(time.Millisecond)
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Errorf("Err %v", c.Err())
		}
		select {
		case <-c.Done():
		default:
			t.Error("Done not closed")
		}
		c.release()
	})
	t.Run("unmount", func(t *testing.T) {
		closing := make(chan struct{})
		c := newReadCtx(&fuse.Context{Cancel: make(chan struct{})}, closing, nil, time.Minute)
		done := c.Done()
		close(closing)
		<-done
		if err := c.release(); !errors.Is(err, context.Canceled) || toErrno(err) != syscall.EIO {
			t.Errorf("err %v -> %v", err, toErrno(err))
		}
	})
	t.Run("release stops the watcher", func(t *testing.T) {
		c := newReadCtx(&fuse.Context{Cancel: make(chan struct{})}, closing, nil, time.Minute)
		c.Done()
		if err := c.release(); err != nil {
			t.Errorf("release: %v", err)
		}
	})
}

func TestRemoveDuringRead(t *testing.T) {
	host, sample, blocked := blockedHost()
	_, mnt, _ := mountT(t, host, Options{})
	f, err := os.Open(filepath.Join(mnt, blocked))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	readErr := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(make([]byte, 4096), 0)
		readErr <- err
	}()
	eventually(t, 5*time.Second, "the read to block", func() bool { return sample.waiting.Load() > 0 })
	if err := syscall.Rmdir(filepath.Join(mnt, "sample")); err != nil {
		t.Fatalf("rmdir: %v", err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("read of a removed torrent: %v, want EIO", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read still blocked after the torrent was removed")
	}
}
