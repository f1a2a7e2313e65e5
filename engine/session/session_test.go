package session

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// TestAdd adds a torrent by its bytes, by magnet and by info-hash, finds
// each, and refuses bad input and a second copy with the errors front-ends
// map to errnos and status codes.
func TestAdd(t *testing.T) {
	e, st := newFakeEngine(), newFakeStore()
	s := newTestSession(t, e, st, nil)
	b, mi := makeTorrent(t, "alpha.bin")

	a, err := s.Add(b)
	if err != nil || a.Name() != "alpha.bin" || a.InfoHash() != mi.InfoHash || a.Info() == nil {
		t.Fatalf("Add(.torrent) = %v, %v", a, err)
	}
	if rec, _ := st.record(mi.InfoHash); rec != string(b) {
		t.Errorf("the record of a .torrent is not its bytes")
	}
	mag := "magnet:?xt=urn:btih:" + strings.Repeat("ab", 20) + "&dn=beta"
	m, err := s.Add([]byte("  " + mag + "\n"))
	if err != nil || m.Name() != "beta" || m.Info() != nil {
		t.Fatalf("Add(magnet) = %v, %v", m, err)
	}
	if rec, _ := st.record(m.InfoHash()); rec != mag {
		t.Errorf("the record of a magnet is %q, want the link", rec)
	}
	h, err := s.Add([]byte(strings.Repeat("CD", 20)))
	if err != nil || h.InfoHash().String() != strings.Repeat("cd", 20) {
		t.Fatalf("Add(info-hash) = %v, %v", h, err)
	}

	if got := s.Torrents(); len(got) != 3 || got[0] != a || got[1] != m || got[2] != h {
		t.Errorf("Torrents not the three by name: %v", got)
	}
	for _, id := range []string{"alpha.bin", mi.InfoHash.String(), strings.ToUpper(mi.InfoHash.String()[:8]), "beta", "abab" + "abab"} {
		if _, err := s.Find(id); err != nil {
			t.Errorf("Find(%q): %v", id, err)
		}
	}
	for _, id := range []string{"gamma", "abab", ""} {
		if got, err := s.Find(id); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Find(%q) = %v, %v; want os.ErrNotExist", id, got, err)
		}
	}

	tests := []struct {
		name string
		data string
		want error
	}{
		{"again", string(b), os.ErrExist},
		{"magnet again", mag, os.ErrExist},
		{"not a torrent", "hello", metainfo.ErrInvalid},
		{"bad magnet", "magnet:?xt=urn:btih:xyz", metainfo.ErrInvalidMagnet},
		{"empty", "", metainfo.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := s.Add([]byte(tc.data)); !errors.Is(err, tc.want) {
				t.Errorf("Add = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if n := len(e.calls()); n != 3 {
		t.Errorf("the engine was asked %d times, want 3: %v", n, e.calls())
	}
}

// TestRemoveAtOnce removes a torrent whose engine takes long to stop (a
// tracker that does not answer its "stopped"): Remove returns at once and
// the torrent is gone from the session, its record is dropped once the
// engine stopped it, and Close waits for that.
func TestRemoveAtOnce(t *testing.T) {
	e, st := newFakeEngine(), newFakeStore()
	e.stopGate = make(chan struct{})
	s := newTestSession(t, e, st, nil)
	b, mi := makeTorrent(t, "slow.bin")
	tor, err := s.AddTorrentFile(b)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Remove(mi.InfoHash) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		e.release()
		<-done
		t.Fatal("Remove waited for the engine to stop the torrent")
	}
	select {
	case <-tor.Removed():
	default:
		t.Error("Removed not closed after Remove")
	}
	if len(s.Torrents()) != 0 || len(s.Status()) != 0 {
		t.Error("a removed torrent is still listed")
	}
	if err := s.Remove(mi.InfoHash); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("second Remove: %v, want os.ErrNotExist", err)
	}
	if _, err := s.DropCached(mi.InfoHash.String()); err != nil {
		t.Errorf("DropCached while its removal is under way: %v", err)
	}
	if _, ok := st.record(mi.InfoHash); !ok {
		t.Error("the record went before the engine stopped the torrent")
	}

	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a removal was in progress")
	case <-time.After(50 * time.Millisecond):
	}
	e.release()
	<-closed
	if _, ok := st.record(mi.InfoHash); ok {
		t.Error("the record survived the removal")
	}
	if got, want := e.calls(), []string{"add " + mi.InfoHash.String(), "remove " + mi.InfoHash.String()}; !slices.Equal(got, want) {
		t.Errorf("engine calls %v, want %v", got, want)
	}
	if _, err := s.AddTorrentFile(b); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
}

// TestReaddWhileDropping adds a torrent again while its removal is still
// stopping it: the add waits for the removal to end, so the engine never
// runs it twice and the drop never deletes the new record.
func TestReaddWhileDropping(t *testing.T) {
	e, st := newFakeEngine(), newFakeStore()
	e.stopGate = make(chan struct{})
	s := newTestSession(t, e, st, nil)
	b, mi := makeTorrent(t, "again.bin")
	if _, err := s.AddTorrentFile(b); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(mi.InfoHash); err != nil {
		t.Fatal(err)
	}
	added := make(chan error, 1)
	go func() {
		_, err := s.AddTorrentFile(b)
		added <- err
	}()
	select {
	case err := <-added:
		t.Fatalf("the add did not wait for the removal in progress: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := s.AddTorrentFile(b); !errors.Is(err, os.ErrExist) {
		t.Errorf("a third add while the second waits: %v, want os.ErrExist", err)
	}
	e.release()
	if err := <-added; err != nil {
		t.Fatalf("add after the removal: %v", err)
	}
	ih := mi.InfoHash.String()
	if got, want := e.calls(), []string{"add " + ih, "remove " + ih, "add " + ih}; !slices.Equal(got, want) {
		t.Errorf("engine calls %v, want %v", got, want)
	}
	if got, want := st.calls(), []string{"put " + ih, "drop " + ih, "put " + ih}; !slices.Equal(got, want) {
		t.Errorf("store calls %v, want %v", got, want)
	}
	if _, ok := s.Torrent(mi.InfoHash); !ok {
		t.Error("the torrent added again is not there")
	}
}

// TestMagnetInfo records a magnet's metainfo in place of its link when the
// metadata arrives, and tells the front-ends.
func TestMagnetInfo(t *testing.T) {
	e, st := newFakeEngine(), newFakeStore()
	got := make(chan *Torrent, 1)
	s := newTestSession(t, e, st, func(t *Torrent) { got <- t })
	b, mi := makeTorrent(t, "later.bin")
	tor, err := s.AddMagnet("magnet:?xt=urn:btih:" + mi.InfoHash.String())
	if err != nil {
		t.Fatal(err)
	}
	e.handle(mi.InfoHash).setInfo(mi)
	select {
	case x := <-got:
		if x != tor {
			t.Errorf("OnInfo got %v, want %v", x, tor)
		}
	case <-ctxDone(t).Done():
		t.Fatal("OnInfo not called after the metadata arrived")
	}
	if rec, _ := st.record(mi.InfoHash); rec != string(b) {
		t.Errorf("record after the metadata arrived: %.40q, want the .torrent", rec)
	}
	if tor.Name() != "later.bin" || tor.Info() == nil {
		t.Errorf("torrent after the metadata: %q, %v", tor.Name(), tor.Info())
	}
}

// TestRemoveWinsOverRecord removes a magnet while the write of its record
// is in flight, and another before its metadata arrives: neither comes
// back at the next start.
func TestRemoveWinsOverRecord(t *testing.T) {
	e, st := newFakeEngine(), newFakeStore()
	s := newTestSession(t, e, st, func(*Torrent) { t.Error("OnInfo called for a removed torrent") })

	// A removal while the magnet's link is being written.
	st.putGate, st.putting = make(chan struct{}), make(chan struct{})
	ih1 := metainfo.Hash{1}
	added := make(chan error, 1)
	go func() {
		_, err := s.AddMagnet("magnet:?xt=urn:btih:" + ih1.String())
		added <- err
	}()
	<-st.putting // the write is in flight
	if err := s.Remove(ih1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the drop would run now if it did not wait
	close(st.putGate)
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	st.putGate, st.putting = nil, nil

	// A removal before the metadata arrives.
	_, mi := makeTorrent(t, "gone.bin")
	if _, err := s.AddMagnet("magnet:?xt=urn:btih:" + mi.InfoHash.String()); err != nil {
		t.Fatal(err)
	}
	h := e.handle(mi.InfoHash)
	if err := s.Remove(mi.InfoHash); err != nil {
		t.Fatal(err)
	}
	h.setInfo(mi)
	s.Close()

	if got, want := st.calls(), []string{"put " + ih1.String(), "drop " + ih1.String(), "put " + mi.InfoHash.String(), "drop " + mi.InfoHash.String()}; !slices.Equal(got, want) {
		t.Errorf("store calls %v, want %v", got, want)
	}
	if ts := st.Torrents(); len(ts) != 0 {
		t.Errorf("records left after the removals: %x", ts)
	}
}

// TestRestore brings back every recorded torrent in a new session: a
// .torrent, a magnet still waiting for its metadata, and one whose
// metadata arrived; a bad record is skipped.
func TestRestore(t *testing.T) {
	st := newFakeStore()
	e1 := newFakeEngine()
	info := make(chan *Torrent, 1)
	s1 := newTestSession(t, e1, st, func(t *Torrent) { info <- t })
	b, mi := makeTorrent(t, "kept.bin")
	_, mi2 := makeTorrent(t, "arrived.bin")
	if _, err := s1.AddTorrentFile(b); err != nil {
		t.Fatal(err)
	}
	waiting := "magnet:?xt=urn:btih:" + strings.Repeat("5a", 20) + "&dn=waiting"
	if _, err := s1.AddMagnet(waiting); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.AddMagnet("magnet:?xt=urn:btih:" + mi2.InfoHash.String()); err != nil {
		t.Fatal(err)
	}
	e1.handle(mi2.InfoHash).setInfo(mi2)
	<-info
	s1.Close()
	st.PutMeta(metainfo.Hash{9}, []byte("junk"))

	e2 := newFakeEngine()
	s2 := newTestSession(t, e2, st, nil)
	if n := s2.Restore(); n != 3 {
		t.Errorf("Restore = %d, want 3", n)
	}
	var names []string
	for _, tor := range s2.Torrents() {
		names = append(names, tor.Name())
		if (tor.Info() != nil) != (tor.Name() != "waiting") {
			t.Errorf("%s: info %v", tor.Name(), tor.Info() != nil)
		}
	}
	if want := []string{"arrived.bin", "kept.bin", "waiting"}; !slices.Equal(names, want) {
		t.Errorf("restored %v, want %v", names, want)
	}
	if tor, ok := s2.Torrent(mi.InfoHash); !ok || tor.Time().IsZero() {
		t.Errorf("restored torrent %v", tor)
	}
	if got := e2.calls(); len(got) != 3 {
		t.Errorf("engine calls at restore: %v", got)
	}
}
