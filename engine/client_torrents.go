package engine

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/swarmfs/swarmfs/engine/metainfo"
	"github.com/swarmfs/swarmfs/engine/mse"
	"github.com/swarmfs/swarmfs/engine/storage"
)

// The client's torrents: adding one (from its metainfo or a magnet), finding
// one by either of its info-hashes, listing and removing them (see
// client.go for the lock order).

// TorrentOptions tunes one torrent.
type TorrentOptions struct {
	// Storage overrides the client's provider for this torrent.
	Storage storage.Provider
	// DownloadAll completes the torrent in the background (rarest first);
	// otherwise only what readers ask for is downloaded. A torrent added
	// for downloading or seeding wants DownloadAll.
	DownloadAll bool
	// Peers are dialled directly, besides what trackers return.
	Peers []netip.AddrPort
	// Trackers overrides the metainfo's tiers.
	Trackers [][]string
	// SuperSeed makes a torrent that is complete when it starts an initial
	// seed that hides what it has and hands each peer one piece at a time
	// (BEP 16), so that a small uplink sends each piece about once.
	// Ignored for a torrent that is not complete.
	SuperSeed bool
	// SeedRatio and SeedTime are seeding goals (0: none): the torrent
	// uploads until its upload ratio (uploaded over downloaded, or over
	// the bytes it holds when more) reaches SeedRatio, or until it has
	// seeded for SeedTime (counted from completion, or from the start
	// without DownloadAll), whichever comes first; then it uploads
	// nothing more and, once complete on a store that does not evict,
	// leaves the swarm (goal.go).
	SeedRatio float64
	SeedTime  time.Duration
	// ExtraTrackers are announce URLs added, as a last tier, to a torrent
	// added with its info that is not private (never to a private one,
	// BEP 27; nor to a magnet, whose privacy is unknown until its info
	// arrives). URLs already among its trackers are not repeated.
	ExtraTrackers []string
	// Name, for AddTorrent of a hybrid, may be its truncated v2 hash: the
	// torrent then goes by that name alone (its cache entries too), as
	// when it was first added by a v2-only (btmh) magnet; a restore of
	// such a torrent from its record must, or it would not find its
	// cached pieces. Zero, or the v1 hash: the v1 hash, with the v2 one
	// as its alias. Anything else is an error.
	Name metainfo.Hash
}

// AddTorrent adds a torrent with known metainfo and starts it. Adding a
// torrent twice returns the existing one; if that one came from a magnet
// and still waits for its metadata, mi's info dictionary completes it.
func (c *Client) AddTorrent(mi *metainfo.MetaInfo, opts TorrentOptions) (*Torrent, error) {
	if mi.Info == nil {
		return nil, fmt.Errorf("engine: torrent %s has no info", mi.InfoHash)
	}
	name, alias := mi.InfoHash, v2Alias(mi, nil)
	if !opts.Name.IsZero() && opts.Name != name {
		if opts.Name != alias {
			return nil, fmt.Errorf("engine: %s is not a name of torrent %s", opts.Name, mi.InfoHash)
		}
		name, alias = alias, metainfo.Hash{}
	}
	if t, ok, err := c.existing(name); ok || err != nil {
		if ok {
			t.offerInfo(mi)
		}
		return t, err
	}
	tiers := opts.Trackers
	if tiers == nil {
		tiers = mi.Trackers()
	}
	if !mi.Info.Private {
		tiers = withExtraTier(tiers, opts.ExtraTrackers)
	}
	t := newTorrent(c, name, nil, opts, tiers)
	t.v2only = isV2Only(mi, nil)
	t.alias.Store(alias)
	if err := t.openInfo(mi); err != nil {
		t.close()
		return nil, err
	}
	return c.insert(t, func(old *Torrent) { old.offerInfo(mi) })
}

// AddMagnet adds a torrent known only by its magnet link and starts it at
// once: peers come from the magnet's trackers and x.pe peers, opts.Peers,
// the DHT, PEX and LSD, and the info dictionary from those peers (BEP 9).
// Until it arrives, Info is nil and InfoReady open. Adding a torrent twice
// returns the existing one.
func (c *Client) AddMagnet(m *metainfo.Magnet, opts TorrentOptions) (*Torrent, error) {
	if m == nil || m.InfoHash.IsZero() {
		return nil, errors.New("engine: magnet without an info-hash")
	}
	if t, ok, err := c.existing(m.InfoHash); ok || err != nil {
		return t, err
	}
	tiers := opts.Trackers
	if tiers == nil && len(m.Trackers) > 0 {
		tiers = [][]string{append([]string(nil), m.Trackers...)}
	}
	return c.insert(newTorrent(c, m.InfoHash, m, opts, tiers), nil)
}

// existing returns the torrent already added for ih, or ErrClosed.
func (c *Client) existing(ih metainfo.Hash) (*Torrent, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false, ErrClosed
	}
	t, ok := c.lookupLocked(ih)
	return t, ok, nil
}

// insert registers and starts a new torrent, unless another was added for
// the same hash meanwhile: then t is dropped and onOld gets the winner.
func (c *Client) insert(t *Torrent, onOld func(*Torrent)) (*Torrent, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		t.close()
		return nil, ErrClosed
	}
	old, ok := c.lookupLocked(t.infoHash)
	alias := t.alias.Load()
	if !ok && !alias.IsZero() {
		old, ok = c.lookupLocked(alias)
	}
	if ok {
		c.mu.Unlock()
		t.close()
		if onOld != nil {
			onOld(old)
		}
		return old, nil
	}
	c.torrents[t.infoHash] = t
	c.req2[mse.Req2(t.infoHash)] = t.infoHash
	if !alias.IsZero() {
		c.aliases[alias] = t.infoHash
		c.req2[mse.Req2(alias)] = alias
	}
	c.mu.Unlock()
	t.start()
	return t, nil
}

// Torrent returns the torrent with the given info-hash (for a hybrid,
// either hash: its v2 one truncated too).
func (c *Client) Torrent(ih metainfo.Hash) (*Torrent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lookupLocked(ih)
}

// addAlias registers alias as t's second name (a hybrid added by its btih
// magnet, whose info showed it), unless t has left or another torrent
// has that name (added by its btmh magnet). It reports whether it did.
func (c *Client) addAlias(t *Torrent, alias metainfo.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.torrents[t.infoHash] != t {
		return false
	}
	if _, taken := c.lookupLocked(alias); taken {
		return false
	}
	c.aliases[alias] = t.infoHash
	c.req2[mse.Req2(alias)] = alias
	return true
}

// lookupLocked finds a torrent by its name or its alias; c.mu held.
func (c *Client) lookupLocked(ih metainfo.Hash) (*Torrent, bool) {
	if t, ok := c.torrents[ih]; ok {
		return t, true
	}
	t, ok := c.torrents[c.aliases[ih]]
	return t, ok
}

// Torrents lists the client's torrents.
func (c *Client) Torrents() []*Torrent {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Torrent, 0, len(c.torrents))
	for _, t := range c.torrents {
		out = append(out, t)
	}
	return out
}

// RemoveTorrent stops a torrent: it announces "stopped", closes its
// connections and its store. Cached pieces stay in storage.
func (c *Client) RemoveTorrent(ih metainfo.Hash) error {
	c.mu.Lock()
	t, ok := c.torrents[ih]
	delete(c.torrents, ih)
	delete(c.req2, mse.Req2(ih))
	if alias := t.alias.Load(); ok && !alias.IsZero() {
		delete(c.aliases, alias)
		delete(c.req2, mse.Req2(alias))
	}
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("engine: no torrent %s", ih)
	}
	t.close()
	return nil
}
