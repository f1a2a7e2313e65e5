package session

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/swarmfs/swarmfs/cache"
	"github.com/swarmfs/swarmfs/engine"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// TorrentStatus is one torrent in "swarmfs status" and the control API.
type TorrentStatus struct {
	Name     string `json:"name"`
	InfoHash string `json:"info_hash"`
	// InfoHashV2 is the full v2 (SHA-256) info-hash of a v2 or hybrid
	// torrent once its info is known; InfoHash is then the v1 hash
	// (hybrid) or this one truncated (v2-only).
	InfoHashV2   string  `json:"info_hash_v2,omitempty"`
	HasInfo      bool    `json:"has_info"`
	Progress     float64 `json:"progress"`
	Size         int64   `json:"size"`
	Completed    int64   `json:"completed"`
	DownloadRate float64 `json:"download_rate"`
	UploadRate   float64 `json:"upload_rate"`
	Downloaded   int64   `json:"downloaded"`
	Wasted       int64   `json:"wasted"`
	// Requests counts the picker's costly decisions (duplicates, cancels).
	Requests engine.RequestCounters `json:"requests"`
	Uploaded int64                  `json:"uploaded"`
	// Ratio is uploaded over downloaded (or over completed, when more);
	// SeedGoal the seeding goal ("" for none); SeedState "downloading",
	// "seeding" or "goal reached"; SuperSeeding says BEP 16 is on.
	Ratio        float64 `json:"ratio"`
	SeedGoal     string  `json:"seed_goal,omitempty"`
	SeedState    string  `json:"seed_state"`
	SuperSeeding bool    `json:"super_seeding,omitempty"`
	// Swarm is what the trackers count (nil before a scrape answered);
	// NoSeeders says the torrent waits while they count no seeder.
	Swarm     *engine.SwarmCounts `json:"swarm,omitempty"`
	NoSeeders bool                `json:"no_seeders,omitempty"`
	// Trackers is each tracker's last announce and scrape result.
	Trackers []engine.TrackerStatus `json:"trackers,omitempty"`
	Peers    int                    `json:"peers"`
	Seeds    int                    `json:"seeds"`
	// EncryptedPeers and PlainPeers split Peers by MSE/PE: RC4, or
	// plaintext (a plain handshake, or MSE that selected plaintext).
	EncryptedPeers int `json:"encrypted_peers"`
	PlainPeers     int `json:"plain_peers"`
	// TCPPeers and UTPPeers split Peers by transport.
	TCPPeers    int   `json:"tcp_peers"`
	UTPPeers    int   `json:"utp_peers"`
	CachedBytes int64 `json:"cached_bytes"`
	// WebSeeds are the torrent's url-list sources (BEP 19): state and rate.
	WebSeeds []engine.WebSeedStats `json:"web_seeds,omitempty"`
	// Waiting names a read waiting for a piece that no source has.
	Waiting string `json:"waiting,omitempty"`
}

// CacheStatus is "swarmfs cache": the whole cache and each torrent's share.
type CacheStatus struct {
	Size     int64        `json:"size"`
	Capacity int64        `json:"capacity"`
	Disk     int64        `json:"disk"`
	Torrents []CacheEntry `json:"torrents"`
}

// CacheEntry is one torrent's use of the cache.
type CacheEntry struct {
	Name     string `json:"name"`
	InfoHash string `json:"info_hash"`
	Pieces   int    `json:"pieces"`
	Bytes    int64  `json:"bytes"`
}

// Status describes every torrent, by name; never nil.
func (s *Session) Status() []TorrentStatus {
	cached := map[metainfo.Hash]int64{}
	for _, u := range s.store.Usage() {
		cached[u.InfoHash] = u.Bytes
	}
	out := []TorrentStatus{}
	for _, t := range s.Torrents() {
		st := t.Stats()
		ts := TorrentStatus{
			Name: t.Name(), InfoHash: t.ih.String(), HasInfo: t.Info() != nil,
			Size: st.TotalLength, Completed: st.BytesCompleted,
			DownloadRate: st.DownloadRate, UploadRate: st.UploadRate,
			Downloaded: st.Downloaded, Wasted: st.Wasted, Requests: st.Requests,
			Uploaded: st.Uploaded, Peers: st.Peers, Seeds: st.Seeds,
			EncryptedPeers: st.EncryptedPeers, PlainPeers: st.PlainPeers,
			TCPPeers: st.TCPPeers, UTPPeers: st.UTPPeers,
			CachedBytes: cached[t.ih],
			WebSeeds:    st.WebSeeds, Waiting: st.Waiting,
			Ratio: st.Ratio, SeedGoal: st.SeedGoal, SeedState: st.SeedState,
			SuperSeeding: st.SuperSeeding,
			Swarm:        st.Swarm, NoSeeders: st.NoSeeders, Trackers: st.Trackers,
		}
		if info := t.Info(); info != nil && info.HasV2() {
			ts.InfoHashV2 = info.InfoHashV2.String()
		}
		if st.TotalLength > 0 {
			ts.Progress = float64(st.BytesCompleted) / float64(st.TotalLength)
		}
		out = append(out, ts)
	}
	return out
}

// CacheStatus describes the cache, naming torrents after the running ones
// or their records.
func (s *Session) CacheStatus() CacheStatus {
	names := map[metainfo.Hash]string{}
	for _, t := range s.Torrents() {
		names[t.ih] = t.Name()
	}
	return CacheStatusOf(s.store, names)
}

// DropCached forgets a torrent's pieces: a running one is removed (its
// pieces cannot go while it runs), any other cached one is dropped from the
// cache, unless its removal is still under way (the engine may still have
// it open), which drops it. id is a name, an info-hash or a unique prefix of one. It returns
// the torrent's name; errors wrap os.ErrNotExist when nothing matches.
func (s *Session) DropCached(id string) (string, error) {
	if t, err := s.Find(id); err == nil {
		name := t.Name()
		if err := s.Remove(t.ih); err != nil {
			return "", err
		}
		return name, nil
	}
	ih, err := ResolveCached(s.store, id)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	_, pending := s.drops[ih]
	s.mu.Unlock()
	if pending {
		return ih.String(), nil // its removal, under way, drops it
	}
	if err := s.store.DropTorrent(ih); err != nil {
		return "", err
	}
	return ih.String(), nil
}

// CacheStatusOf describes a cache, naming torrents from names or from
// their records. It serves "swarmfs cache" with no mount running too.
func CacheStatusOf(c Store, names map[metainfo.Hash]string) CacheStatus {
	st := CacheStatus{Size: c.Size(), Capacity: c.Capacity(), Disk: c.DiskUsage(), Torrents: []CacheEntry{}}
	seen := map[metainfo.Hash]bool{}
	add := func(ih metainfo.Hash, pieces int, bytes int64) {
		name, ok := names[ih]
		if !ok {
			name = recordName(c, ih)
		}
		st.Torrents = append(st.Torrents, CacheEntry{Name: name, InfoHash: ih.String(), Pieces: pieces, Bytes: bytes})
	}
	for _, u := range c.Usage() {
		seen[u.InfoHash] = true
		add(u.InfoHash, u.Pieces, u.Bytes)
	}
	for _, ih := range c.Torrents() {
		if !seen[ih] {
			add(ih, 0, 0)
		}
	}
	sort.Slice(st.Torrents, func(i, j int) bool { return st.Torrents[i].Name < st.Torrents[j].Name })
	return st
}

// recordName names a torrent after its record: the info's name, or the
// magnet's display name, else the hex info-hash.
func recordName(c Store, ih metainfo.Hash) string {
	b, err := c.Meta(cache.InfoHash(ih))
	if err != nil {
		return ih.String()
	}
	if mi, err := metainfo.Parse(b); err == nil {
		return mi.Info.Name
	}
	if m, err := metainfo.ParseMagnet(string(b)); err == nil && m.DisplayName != "" {
		return metainfo.SanitizeComponent(m.DisplayName) + " (metadata not yet known)"
	}
	return ih.String()
}

// ResolveCached finds a cached torrent by name, info-hash or a unique
// prefix of at least 6 hex digits. Errors wrap os.ErrNotExist.
func ResolveCached(c Store, id string) (metainfo.Hash, error) {
	st := CacheStatusOf(c, nil)
	lower := strings.ToLower(id)
	var found []CacheEntry
	for _, e := range st.Torrents {
		if e.Name == id || e.InfoHash == lower {
			found = []CacheEntry{e}
			break
		}
		if len(id) >= 6 && strings.HasPrefix(e.InfoHash, lower) {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		return metainfo.Hash{}, fmt.Errorf("no single cached torrent matches %q: %w", id, os.ErrNotExist)
	}
	return metainfo.ParseHash(found[0].InfoHash)
}
