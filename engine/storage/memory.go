package storage

import (
	"fmt"
	"sync"

	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// Memory keeps pieces in memory. Its zero value is ready; it is meant for tests.
type Memory struct {
	mu       sync.Mutex
	torrents map[metainfo.Hash]*memTorrent
}

var _ Provider = (*Memory)(nil)

// Open returns the torrent's in-memory store; opening it again returns the
// same pieces, so a test can restart an engine on the same Memory.
func (m *Memory) Open(ih metainfo.Hash, info *metainfo.Info) (Torrent, []int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.torrents == nil {
		m.torrents = make(map[metainfo.Hash]*memTorrent)
	}
	t := m.torrents[ih]
	if t == nil {
		t = &memTorrent{info: info, pieces: make(map[int][]byte)}
		m.torrents[ih] = t
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	have := make([]int, 0, len(t.pieces))
	for i := range t.pieces {
		have = append(have, i)
	}
	return t, have, nil
}

type memTorrent struct {
	info   *metainfo.Info
	mu     sync.RWMutex // guards pieces
	pieces map[int][]byte
}

func (t *memTorrent) ReadAt(p []byte, off int64) (int, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	err := pieceSpan(t.info, off, len(p), func(piece int, pieceOff int64, p0, p1 int) error {
		data, ok := t.pieces[piece]
		if !ok {
			return fmt.Errorf("piece %d: %w", piece, ErrNotStored)
		}
		copy(p[p0:p1], data[pieceOff:])
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (t *memTorrent) WritePiece(index int, data []byte) error {
	c := make([]byte, len(data))
	copy(c, data)
	t.mu.Lock()
	t.pieces[index] = c
	t.mu.Unlock()
	return nil
}

func (t *memTorrent) Close() error { return nil }
