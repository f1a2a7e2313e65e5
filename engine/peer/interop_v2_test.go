package peer

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/merkle"
)

// startLibtorrentV2Seeder runs testdata/lt_seed_v2.py and returns the
// seeded v2 torrent's info-hash, address, piece length, and its one file's
// length and pieces root. It skips when libtorrent is missing, unless
// CI=true.
func startLibtorrentV2Seeder(t *testing.T) (infoHash [32]byte, addr string, pieceLen, fileLen int64, root [32]byte) {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import libtorrent").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s cannot import libtorrent (install python3-libtorrent): %v", python, err)
		}
		t.Skipf("libtorrent not available: %v", err)
	}
	script, err := filepath.Abs("testdata/lt_seed_v2.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, script, t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		stdin.Close() // the script exits when stdin closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		<-copied
	})
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatalf("libtorrent seeder did not start; stderr:\n%s", stderr.String())
	}
	var hashHex, rootHex string
	var port int
	if _, err := fmt.Sscan(line, &hashHex, &port, &pieceLen, &fileLen, &rootHex); err != nil {
		t.Fatalf("seeder said %q (%v); stderr:\n%s", line, err, stderr.String())
	}
	h, err1 := hex.DecodeString(hashHex)
	r, err2 := hex.DecodeString(rootHex)
	if err1 != nil || err2 != nil || len(h) != 32 || len(r) != 32 {
		t.Fatalf("seeder said %q", line)
	}
	return [32]byte(h), fmt.Sprintf("127.0.0.1:%d", port), pieceLen, fileLen, [32]byte(r)
}

// TestInteropLibtorrentV2 connects to a libtorrent 2.0 seeder of a v2
// torrent by its truncated v2 info-hash with the v2 bit, asks for the
// file's piece layer, for the leaves of one piece, and for nothing that
// exists, and checks the answers: hashes whose proofs lead to the file's
// root and equal what we compute from the data, and a hash reject.
func TestInteropLibtorrentV2(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a libtorrent process")
	}
	infoHash, addr, pieceLen, fileLen, root := startLibtorrentV2Seeder(t)

	data := make([]byte, fileLen)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	var leaves, layer []merkle.Hash
	for off := 0; off < len(data); off += merkle.BlockSize {
		leaves = append(leaves, merkle.BlockHash(data[off:min(off+merkle.BlockSize, len(data))]))
	}
	pl := merkle.PieceLevels(pieceLen)
	for off := int64(0); off < fileLen; off += pieceLen {
		layer = append(layer, merkle.DataRoot(data[off:min(off+pieceLen, fileLen)], pl))
	}
	if merkle.LayerRoot(layer, pl) != root {
		t.Fatal("the seeder's pieces root is not the data's")
	}
	levels := merkle.FileLevels(fileLen)

	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	var res Reserved
	res.SetFast()
	res.SetV2()
	if err := WriteHandshake(conn, Handshake{Reserved: res, InfoHash: [20]byte(infoHash[:20]), PeerID: NewPeerID()}); err != nil {
		t.Fatal(err)
	}
	hs, err := ReadHandshake(conn)
	if err != nil {
		t.Fatal(err)
	}
	if hs.InfoHash != [20]byte(infoHash[:20]) || !hs.Reserved.Fast() {
		t.Fatalf("libtorrent handshake: %+v", hs)
	}

	width := 1 << merkle.Levels(int64(len(layer)))
	requests := []Message{
		// The whole piece layer (padded to a power of two), proof to the root.
		{Type: HashRequest, PiecesRoot: root, BaseLayer: uint32(pl), Index: 0, Length: uint32(width), ProofLayers: uint32(levels - pl - 1)},
		// The leaves of piece 1, with the uncles up to the root.
		{Type: HashRequest, PiecesRoot: root, BaseLayer: 0, Index: 1 << pl, Length: 1 << pl, ProofLayers: uint32(levels - 1)},
		// A layer above the root: rejected.
		{Type: HashRequest, PiecesRoot: root, BaseLayer: uint32(levels + 3), Index: 0, Length: 2, ProofLayers: 0},
	}
	out := AppendMessage(nil, &Message{Type: HaveNone})
	for i := range requests {
		out = AppendMessage(out, &requests[i])
	}
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}

	d := NewDecoder(conn, 0)
	answered := map[int]bool{}
	for len(answered) < len(requests) {
		var m Message
		if err := d.Decode(&m); err != nil {
			t.Fatalf("decode after %d answers: %v", len(answered), err)
		}
		if m.Type != Hashes && m.Type != HashReject {
			continue
		}
		i := -1
		for k, r := range requests {
			if m.PiecesRoot == r.PiecesRoot && m.BaseLayer == r.BaseLayer && m.Index == r.Index && m.Length == r.Length && m.ProofLayers == r.ProofLayers {
				i = k
			}
		}
		if i < 0 || answered[i] {
			t.Fatalf("answer to no request: %v", m.String())
		}
		answered[i] = true
		if i == 2 {
			if m.Type != HashReject {
				t.Fatalf("request beyond the root answered with %v", m.String())
			}
			continue
		}
		if m.Type != Hashes {
			t.Fatalf("request %d rejected: %v", i, m.String())
		}
		hs, err := merkle.Split(m.Hashes)
		if err != nil {
			t.Fatal(err)
		}
		p := merkle.Proof{
			Request: merkle.Request{Base: int(m.BaseLayer), Index: int(m.Index), Length: int(m.Length), ProofLayers: int(m.ProofLayers)},
			Nodes:   hs[:m.Length],
			Uncles:  hs[m.Length:],
		}
		node, height, index, err := p.Anchor()
		if err != nil || node != root || height != levels || index != 0 {
			t.Fatalf("request %d: proof leads to (%d, %d), not the root: %v", i, height, index, err)
		}
		want := layer
		if i == 1 {
			want = leaves[1<<pl : 2<<pl]
		}
		for k, h := range want {
			if p.Nodes[k] != h {
				t.Fatalf("request %d: node %d differs from the data's", i, k)
			}
		}
	}
}
