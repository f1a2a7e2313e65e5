package dht

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// maxStateFile bounds the saved state we read back: a full table is well
// under 64 KiB.
const maxStateFile = 1 << 20

// stateFile is the bencoded form of the saved state.
type stateFile struct {
	ID     string `bencode:"id"`
	Nodes  string `bencode:"nodes"`            // compact node info, IPv4
	Nodes6 string `bencode:"nodes6,omitempty"` // compact node info, IPv6
}

// state is what survives a restart: the node ID and the routing table's
// nodes (their liveness is re-learned).
type state struct {
	id    [idLen]byte
	nodes []nodeInfo
}

// loadState reads path; a missing file (or path "") is no state and no
// error.
func loadState(path string) (*state, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dht: load state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return nil, fmt.Errorf("dht: load state: %w", err)
	}
	if len(data) > maxStateFile {
		return nil, fmt.Errorf("dht: load state: %s is larger than %d bytes", path, maxStateFile)
	}
	return decodeState(data)
}

func decodeState(data []byte) (*state, error) {
	var sf stateFile
	if err := bencode.Unmarshal(data, &sf); err != nil {
		return nil, fmt.Errorf("dht: load state: %w", err)
	}
	id, ok := parseID(sf.ID)
	if !ok {
		return nil, fmt.Errorf("dht: load state: node id of %d bytes", len(sf.ID))
	}
	st := &state{id: id}
	if ns, err := parseNodes(sf.Nodes, false, DefaultMaxNodes); err == nil {
		st.nodes = append(st.nodes, ns...)
	}
	if ns, err := parseNodes(sf.Nodes6, true, DefaultMaxNodes); err == nil {
		st.nodes = append(st.nodes, ns...)
	}
	return st, nil
}

func encodeState(st *state) []byte {
	var sf stateFile
	sf.ID = string(st.id[:])
	var b4, b6 []byte
	for _, ni := range st.nodes {
		if ni.Addr.Addr().Is4() {
			b4 = appendNode(b4, ni)
		} else {
			b6 = appendNode(b6, ni)
		}
	}
	sf.Nodes, sf.Nodes6 = string(b4), string(b6)
	b, err := bencode.Marshal(&sf)
	if err != nil {
		panic("dht: encoding state: " + err.Error())
	}
	return b
}

// save writes the state to cfg.StatePath atomically (temporary file,
// fsync, rename), so a crash leaves the old or the new file, never half.
func (n *Node) save() error {
	if n.cfg.StatePath == "" {
		return nil
	}
	now := n.now()
	n.mu.Lock()
	st := &state{id: n.id}
	for _, tb := range n.tables {
		if tb != nil {
			st.nodes = append(st.nodes, tb.nodes(now)...)
		}
	}
	n.lastSave = now
	n.mu.Unlock()
	data := encodeState(st)

	dir := filepath.Dir(n.cfg.StatePath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dht: save state: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(n.cfg.StatePath)+".tmp*")
	if err != nil {
		return fmt.Errorf("dht: save state: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, n.cfg.StatePath)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("dht: save state: %w", err)
	}
	return nil
}
