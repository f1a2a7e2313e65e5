package metainfo

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/swarmfs/swarmfs/engine/bencode"
)

// MaxTorrentSize bounds a .torrent file wherever swarmfs reads one (Load,
// the control API, a file copied into the mount, the command line): it is
// held in memory whole, and parsed into several times its size. Torrents of
// a few hundred thousand files fit.
const MaxTorrentSize = 16 << 20

// MetaInfo is a parsed .torrent file. Its fields are plain data; it is safe
// for concurrent reads once parsed.
type MetaInfo struct {
	// Announce is the single tracker URL of BEP 3.
	Announce string
	// AnnounceList holds the BEP 12 tiers as found (non-string entries
	// dropped). Use Trackers for the cleaned list.
	AnnounceList [][]string
	// URLList holds BEP 19 web seed URLs.
	URLList []string
	// CreationDate is zero when absent.
	CreationDate time.Time
	Comment      string
	CreatedBy    string
	// Nodes are DHT bootstrap nodes of a trackerless torrent (BEP 5), as
	// "host:port".
	Nodes []string
	// InfoBytes is the info dictionary exactly as in the file; Marshal
	// writes it back verbatim.
	InfoBytes []byte
	Info      *Info
	// InfoHash names the torrent to trackers, the DHT and peers: the SHA-1
	// of InfoBytes, or for a v2-only torrent their SHA-256 truncated to 20
	// bytes (Info.InfoHash).
	InfoHash Hash
	// InfoHashV2 is the SHA-256 of InfoBytes for a v2 or hybrid torrent,
	// zero for a v1 one.
	InfoHashV2 HashV2
}

// rawMeta receives the top-level dictionary with every field undecoded, so
// that a malformed optional field can be ignored on its own.
type rawMeta struct {
	Announce     bencode.RawMessage `bencode:"announce"`
	AnnounceList bencode.RawMessage `bencode:"announce-list"`
	URLList      bencode.RawMessage `bencode:"url-list"`
	CreationDate bencode.RawMessage `bencode:"creation date"`
	Comment      bencode.RawMessage `bencode:"comment"`
	CommentUTF8  bencode.RawMessage `bencode:"comment.utf-8"`
	CreatedBy    bencode.RawMessage `bencode:"created by"`
	Info         bencode.RawMessage `bencode:"info"`
	Nodes        bencode.RawMessage `bencode:"nodes"`
	PieceLayers  bencode.RawMessage `bencode:"piece layers"` // v2; kept raw so it is not decoded
}

// Parse parses a .torrent file. The info dictionary must be valid (see
// ParseInfo); the descriptive top-level fields (announce, announce-list,
// url-list, creation date, comment, created by) are optional, and one of the
// wrong type is ignored rather than failing the torrent, as other clients do.
// The piece layers of a v2 or hybrid torrent, when present, must match the
// files' pieces roots (BEP 52); when absent the Info's files have no Layer
// and peers can supply them. data is not retained: InfoBytes is a copy.
func Parse(data []byte) (*MetaInfo, error) {
	if len(data) == 0 {
		return nil, invalidf("empty input")
	}
	if err := bencode.Check(data); err != nil {
		return nil, fmt.Errorf("metainfo: %w: %w", ErrInvalid, err)
	}
	if data[0] != 'd' {
		return nil, invalidf("top-level value is not a dictionary")
	}
	if err := checkKeys("torrent", data); err != nil {
		return nil, err
	}
	infoBytes, ok, err := bencode.Raw(data, "info")
	if err != nil {
		return nil, fmt.Errorf("metainfo: %w: %w", ErrInvalid, err)
	}
	if !ok {
		return nil, invalidf("missing info dictionary")
	}
	var raw rawMeta
	if err := bencode.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("metainfo: %w: %w", ErrInvalid, err)
	}
	info, err := ParseInfo(infoBytes)
	if err != nil {
		return nil, err
	}
	if err := parsePieceLayers(info, raw.PieceLayers); err != nil {
		return nil, err
	}
	m := &MetaInfo{
		InfoBytes:  append([]byte(nil), infoBytes...),
		Info:       info,
		InfoHash:   info.InfoHash(),
		InfoHashV2: info.InfoHashV2,
	}
	m.Announce = strings.TrimSpace(optString(raw.Announce))
	m.AnnounceList = parseTiers(raw.AnnounceList)
	m.URLList = parseURLList(raw.URLList)
	if s, ok := utf8String(raw.CommentUTF8); ok {
		m.Comment = s
	} else {
		m.Comment = optString(raw.Comment)
	}
	m.CreatedBy = optString(raw.CreatedBy)
	m.Nodes = parseNodes(raw.Nodes)
	if raw.CreationDate != nil {
		var secs int64
		if bencode.Unmarshal(raw.CreationDate, &secs) == nil && secs > 0 {
			m.CreationDate = time.Unix(secs, 0).UTC()
		}
	}
	return m, nil
}

// Load reads and parses the .torrent file at path, refusing files larger
// than MaxTorrentSize. Errors name the file.
func Load(path string) (*MetaInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("metainfo: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("metainfo: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("metainfo: %s: not a regular file", path)
	}
	if st.Size() > MaxTorrentSize {
		return nil, fmt.Errorf("metainfo: %s: %d bytes is larger than the %d-byte limit for a .torrent file", path, st.Size(), MaxTorrentSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxTorrentSize+1))
	if err != nil {
		return nil, fmt.Errorf("metainfo: %s: %w", path, err)
	}
	if len(data) > MaxTorrentSize {
		return nil, fmt.Errorf("metainfo: %s: larger than the %d-byte limit for a .torrent file", path, MaxTorrentSize)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Trackers returns the tracker tiers to announce to: the announce-list tiers
// when it has any URL (BEP 12 says announce is then ignored), else announce
// alone. URLs are trimmed, empty ones dropped, and a URL appearing twice is
// kept only where it first appears. The result is nil when there is no
// tracker; the slices are fresh copies.
func (m *MetaInfo) Trackers() [][]string {
	seen := make(map[string]bool)
	var tiers [][]string
	for _, tier := range m.AnnounceList {
		var out []string
		for _, u := range tier {
			u = strings.TrimSpace(u)
			if u == "" || seen[u] {
				continue
			}
			seen[u] = true
			out = append(out, u)
		}
		if len(out) > 0 {
			tiers = append(tiers, out)
		}
	}
	if len(tiers) > 0 {
		return tiers
	}
	if a := strings.TrimSpace(m.Announce); a != "" {
		return [][]string{{a}}
	}
	return nil
}

// outMeta is what Marshal writes; zeebo sorts the keys.
type outMeta struct {
	Announce     string             `bencode:"announce,omitempty"`
	AnnounceList [][]string         `bencode:"announce-list,omitempty"`
	Comment      string             `bencode:"comment,omitempty"`
	CreatedBy    string             `bencode:"created by,omitempty"`
	CreationDate int64              `bencode:"creation date,omitempty"`
	Info         bencode.RawMessage `bencode:"info"`
	Nodes        [][]any            `bencode:"nodes,omitempty"`
	PieceLayers  map[string][]byte  `bencode:"piece layers,omitempty"`
	URLList      []string           `bencode:"url-list,omitempty"`
}

// Marshal encodes m as a .torrent file. InfoBytes is written verbatim, so the
// info-hash is preserved, and so are the piece layers Info holds; top-level
// keys this package does not model are not.
func (m *MetaInfo) Marshal() ([]byte, error) {
	if len(m.InfoBytes) == 0 {
		return nil, errors.New("metainfo: marshal: no info dictionary")
	}
	if err := bencode.Check(m.InfoBytes); err != nil || m.InfoBytes[0] != 'd' {
		return nil, fmt.Errorf("metainfo: marshal: InfoBytes is not one bencoded dictionary")
	}
	out := outMeta{
		Announce:    m.Announce,
		Comment:     m.Comment,
		CreatedBy:   m.CreatedBy,
		Info:        bencode.RawMessage(m.InfoBytes),
		URLList:     m.URLList,
		PieceLayers: outPieceLayers(m.Info),
	}
	if len(m.AnnounceList) > 0 {
		out.AnnounceList = m.AnnounceList
	}
	if !m.CreationDate.IsZero() {
		out.CreationDate = m.CreationDate.Unix()
	}
	for _, n := range m.Nodes {
		host, port, err := net.SplitHostPort(n)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			return nil, fmt.Errorf("metainfo: marshal: node %q is not host:port", n)
		}
		out.Nodes = append(out.Nodes, []any{host, int64(p)})
	}
	b, err := bencode.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("metainfo: marshal: %w", err)
	}
	return b, nil
}

// Magnet returns a magnet URI for the torrent: info-hashes (v1, v2 or
// both), name, every tracker and every web seed.
func (m *MetaInfo) Magnet() string {
	mg := Magnet{InfoHash: m.InfoHash, InfoHashV2: m.InfoHashV2, WebSeeds: m.URLList}
	if m.Info != nil {
		mg.DisplayName = m.Info.Name
	}
	for _, tier := range m.Trackers() {
		mg.Trackers = append(mg.Trackers, tier...)
	}
	return mg.String()
}

// optString decodes an optional string field, "" when absent or of another
// type.
func optString(raw []byte) string {
	if raw == nil {
		return ""
	}
	var s string
	if bencode.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// parseTiers reads announce-list leniently: a tier that is a bare string
// becomes a tier of one, entries that are not strings are dropped.
func parseTiers(raw []byte) [][]string {
	if raw == nil {
		return nil
	}
	var v []any
	if bencode.Unmarshal(raw, &v) != nil {
		return nil
	}
	var tiers [][]string
	for _, t := range v {
		var tier []string
		switch t := t.(type) {
		case string:
			tier = []string{t}
		case []any:
			for _, u := range t {
				if s, ok := u.(string); ok {
					tier = append(tier, s)
				}
			}
		}
		if len(tier) > 0 {
			tiers = append(tiers, tier)
		}
	}
	return tiers
}

// parseNodes reads the BEP 5 nodes list, [["host", port], ...], keeping
// only well-formed entries.
func parseNodes(raw []byte) []string {
	if raw == nil {
		return nil
	}
	var v []any
	if bencode.Unmarshal(raw, &v) != nil {
		return nil
	}
	var out []string
	for _, n := range v {
		pair, ok := n.([]any)
		if !ok || len(pair) != 2 {
			continue
		}
		host, ok1 := pair[0].(string)
		port, ok2 := pair[1].(int64)
		if !ok1 || !ok2 || host == "" || port <= 0 || port > 65535 || strings.ContainsAny(host, "/ \x00") {
			continue
		}
		out = append(out, net.JoinHostPort(host, strconv.FormatInt(port, 10)))
	}
	return out
}

// parseURLList reads url-list, a string or a list of strings (BEP 19),
// dropping empty and repeated URLs.
func parseURLList(raw []byte) []string {
	if raw == nil {
		return nil
	}
	var urls []string
	var v any
	if bencode.Unmarshal(raw, &v) != nil {
		return nil
	}
	switch v := v.(type) {
	case string:
		urls = []string{v}
	case []any:
		for _, u := range v {
			if s, ok := u.(string); ok {
				urls = append(urls, s)
			}
		}
	}
	seen := make(map[string]bool)
	out := urls[:0]
	for _, u := range urls {
		u = strings.TrimSpace(u)
		if u == "" || seen[u] {
			continue
		}
		seen[u] = true
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
