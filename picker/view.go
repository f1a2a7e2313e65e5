package picker

// Views of the picker's state for status displays (a piece map that shows
// what is being fetched and where each reader is). They copy; the caller
// may keep what they return.

// ReaderView is where a reader is and how far ahead of it pieces are being
// fetched.
type ReaderView struct {
	// Pos is the torrent offset just past the reader's last sequential
	// read; -1 before its first read.
	Pos int64
	// Window is the readahead granted from Pos, in bytes (0: none yet,
	// or a scanner that never earned one).
	Window int64
}

// ReaderView describes reader id; ok is false for an unknown one.
func (p *Picker) ReaderView(id ReaderID) (v ReaderView, ok bool) {
	r := p.reader(id)
	if r == nil {
		return ReaderView{}, false
	}
	v.Pos = -1
	if r.hasPos {
		v.Pos = r.pos
		v.Window = p.windowOf(r)
	}
	return v, true
}

// InFlight appends to dst the pieces being downloaded (partial: a block
// requested or received, not yet verified), in no particular order.
func (p *Picker) InFlight(dst []int) []int {
	for _, pa := range p.parts {
		dst = append(dst, pa.piece)
	}
	return dst
}
