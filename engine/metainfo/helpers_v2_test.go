package metainfo

import (
	"strconv"
	"strings"
	"testing"

	"github.com/swarmfs/swarmfs/engine/merkle"
)

// v2In is one file of a hand-built v2 or hybrid torrent.
type v2In struct {
	path string // slash-separated
	data []byte
}

// v2Spec describes a hand-built v2 or hybrid torrent. Its file trees are
// computed with engine/merkle; the golden fixtures check that against
// libtorrent.
type v2Spec struct {
	name    string
	pl      int64
	files   []v2In // in tree order (sorted by path components)
	hybrid  bool
	single  bool // hybrid: v1 part in the single-file form ("length")
	tailPad bool // hybrid: pad the last file too, as libtorrent 2.0.8 does
}

func v2Files(sizes ...int) []v2In {
	var out []v2In
	for i, n := range sizes {
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(i*7 + j*13 + j>>9)
		}
		out = append(out, v2In{path: "f" + strconv.Itoa(i) + ".bin", data: data})
	}
	return out
}

func (s v2Spec) roots() (roots [][32]byte, layers [][]byte) {
	for _, f := range s.files {
		h, err := merkle.NewHasher(s.pl)
		if err != nil {
			panic(err)
		}
		h.Write(f.data)
		root, layer := h.Sum()
		roots = append(roots, root)
		layers = append(layers, merkle.Join(layer))
	}
	return roots, layers
}

// info returns the info dictionary as a map, for tests to alter.
func (s v2Spec) info() map[string]any {
	roots, _ := s.roots()
	tree := map[string]any{}
	for i, f := range s.files {
		dir := tree
		comps := strings.Split(f.path, "/")
		for _, c := range comps[:len(comps)-1] {
			sub, ok := dir[c].(map[string]any)
			if !ok {
				sub = map[string]any{}
				dir[c] = sub
			}
			dir = sub
		}
		props := d("length", int64(len(f.data)))
		if len(f.data) > 0 {
			props["pieces root"] = string(roots[i][:])
		}
		dir[comps[len(comps)-1]] = d("", props)
	}
	info := d("name", s.name, "piece length", s.pl, "meta version", int64(2), "file tree", tree)
	if !s.hybrid {
		return info
	}
	// v1 part: the files with BEP 47 pad files aligning each to a piece.
	var stream []byte
	var list []any
	for i, f := range s.files {
		list = append(list, fileEntry(int64(len(f.data)), strings.Split(f.path, "/")...))
		stream = append(stream, f.data...)
		last := i == len(s.files)-1
		if r := int64(len(stream)) % s.pl; len(f.data) > 0 && r != 0 && (!last || s.tailPad) {
			pad := s.pl - r
			e := fileEntry(pad, ".pad", strconv.FormatInt(pad, 10))
			e["attr"] = "p"
			list = append(list, e)
			stream = append(stream, make([]byte, pad)...)
		}
	}
	info["pieces"] = string(piecesOf(stream, int(s.pl)))
	if s.single {
		info["length"] = int64(len(stream))
	} else {
		info["files"] = list
	}
	return info
}

// pieceLayers returns the "piece layers" dictionary.
func (s v2Spec) pieceLayers() map[string]any {
	roots, layers := s.roots()
	out := map[string]any{}
	for i := range s.files {
		if len(layers[i]) > 0 {
			out[string(roots[i][:])] = string(layers[i])
		}
	}
	return out
}

// torrent returns a whole .torrent with piece layers.
func (s v2Spec) torrent(t testing.TB) []byte {
	t.Helper()
	return mustMarshal(t, d("announce", "http://t.example/a", "info", s.info(), "piece layers", s.pieceLayers()))
}

// stream returns the torrent's data as its Info lays it out: files in
// order, zeros for pad files.
func stream(info *Info, files []v2In) []byte {
	out := make([]byte, 0, info.TotalLength)
	k := 0
	for _, f := range info.Files {
		if f.Pad {
			out = append(out, make([]byte, f.Length)...)
			continue
		}
		out = append(out, files[k].data...)
		k++
	}
	return out
}

// pieceData returns piece i of data.
func pieceData(info *Info, data []byte, i int) []byte {
	off := info.PieceOffset(i)
	return data[off : off+info.PieceLen(i)]
}
