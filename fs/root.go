package fs

// Lock order: rootNode.mu → torrentDir.mu → go-fuse Inode locks (see
// server.go). rootNode.mu is never held across a Host call or a kernel
// notification.

import (
	"context"
	"encoding/hex"
	"strings"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// rootNode is the mount's root: one folder per torrent, plus, briefly, the
// .torrent and .magnet files being written into it.
type rootNode struct {
	gofs.Inode

	// Read-only after construction.
	srv *Server

	mu sync.Mutex // guards the following
	// byHash and byName index the torrent folders shown; byName by the
	// folder's current name.
	byHash map[metainfo.Hash]*torrentDir
	byName map[string]*torrentDir
	// gen numbers torrent folders in order of appearance; it is their
	// inodes' generation, so a torrent removed and added again gets fresh
	// inodes even while the kernel still holds the old ones.
	gen uint64
	// watching is set once the mount is up; before that, folders that need
	// an info watcher wait in unwatched.
	watching  bool
	unwatched []*torrentDir
}

var (
	_ gofs.NodeOnAdder       = (*rootNode)(nil)
	_ gofs.NodeLookuper      = (*rootNode)(nil)
	_ gofs.NodeOpendirer     = (*rootNode)(nil)
	_ gofs.NodeGetattrer     = (*rootNode)(nil)
	_ gofs.NodeSetattrer     = (*rootNode)(nil)
	_ gofs.NodeStatfser      = (*rootNode)(nil)
	_ gofs.NodeCreater       = (*rootNode)(nil)
	_ gofs.NodeMkdirer       = (*rootNode)(nil)
	_ gofs.NodeRmdirer       = (*rootNode)(nil)
	_ gofs.NodeUnlinker      = (*rootNode)(nil)
	_ gofs.NodeRenamer       = (*rootNode)(nil)
	_ gofs.NodeMknoder       = (*rootNode)(nil)
	_ gofs.NodeLinker        = (*rootNode)(nil)
	_ gofs.NodeSymlinker     = (*rootNode)(nil)
	_ gofs.NodeSetxattrer    = (*rootNode)(nil)
	_ gofs.NodeTmpfiler      = (*rootNode)(nil)
	_ gofs.NodeRemovexattrer = (*rootNode)(nil)
)

// OnAdd shows the host's torrents; it runs while mounting, before the kernel
// sends any request.
func (r *rootNode) OnAdd(ctx context.Context) {
	r.mu.Lock()
	r.byHash = make(map[metainfo.Hash]*torrentDir)
	r.byName = make(map[string]*torrentDir)
	r.mu.Unlock()
	if !r.srv.hostAnswers() {
		return // the Server shows them once the Host is ready
	}
	for _, t := range r.srv.host.Torrents() {
		r.add(ctx, t, "")
	}
}

// Lookup finds a torrent folder, or a file being written, as go-fuse
// would on its own, once the Host's torrents are shown.
func (r *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := r.srv.awaitReady(ctx); errno != 0 {
		return nil, errno
	}
	ch := r.GetChild(name)
	if ch == nil {
		return nil, syscall.ENOENT
	}
	if ga, ok := ch.Operations().(gofs.NodeGetattrer); ok {
		var a fuse.AttrOut
		if errno := ga.Getattr(ctx, nil, &a); errno == 0 {
			out.Attr = a.Attr
		}
	}
	return ch, 0
}

// Opendir holds a listing of the root until the Host's torrents are
// shown.
func (r *rootNode) Opendir(ctx context.Context) syscall.Errno {
	return r.srv.awaitReady(ctx)
}

// startWatchers starts the info watchers of the folders added before the
// mount was up.
func (r *rootNode) startWatchers() {
	r.mu.Lock()
	r.watching = true
	ds := r.unwatched
	r.unwatched = nil
	r.mu.Unlock()
	for _, d := range ds {
		r.srv.wg.Add(1)
		go d.watchInfo()
	}
}

// add shows torrent t as a folder and returns it (the existing one if t is
// already shown). With name set (a mkdir), the folder is not linked into the
// root: go-fuse does that under name when the handler returns. With name
// empty, it is linked under a name derived from t.Name().
func (r *rootNode) add(ctx context.Context, t Torrent, name string) (*torrentDir, bool) {
	ih := t.InfoHash()
	r.mu.Lock()
	if d := r.byHash[ih]; d != nil {
		r.mu.Unlock()
		return d, false
	}
	r.gen++
	gen := r.gen
	r.mu.Unlock()

	// Build outside the lock: a torrent of a million files takes a while.
	d := newTorrentDir(r.srv, t)
	ino := r.NewPersistentInode(ctx, d, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: inoOf(ih, nil, 0), Gen: gen})
	if info := t.Info(); info != nil {
		d.build(ctx, info)
	}

	r.mu.Lock()
	if other := r.byHash[ih]; other != nil {
		// Lost a race with another add of the same torrent.
		r.mu.Unlock()
		ino.RmAllChildren()
		return other, false
	}
	if name == "" {
		name = r.uniqueNameLocked(sanitizeName(t.Name(), ih), ih)
		r.AddChild(name, ino, false)
	}
	d.name = name
	r.byHash[ih] = d
	r.byName[name] = d
	watch := r.watching
	if !watch {
		r.unwatched = append(r.unwatched, d)
	}
	r.mu.Unlock()
	if watch {
		r.srv.wg.Add(1)
		go d.watchInfo()
	}
	return d, true
}

// uniqueNameLocked returns want, or want made unique among the root's
// entries with the start of the info-hash.
func (r *rootNode) uniqueNameLocked(want string, ih metainfo.Hash) string {
	hexs := ih.String()
	for _, name := range []string{want, want + " (" + hexs[:8] + ")", hexs} {
		if d := r.byName[name]; d != nil && d.ih == ih {
			return name
		}
		if r.byName[name] == nil && r.GetChild(name) == nil {
			return name
		}
	}
	return hexs + " (" + hexs[:8] + ")"
}

// rename gives d the folder name its torrent wants now (the info's name once
// the metadata is known).
func (r *rootNode) rename(d *torrentDir) {
	want := sanitizeName(d.t.Name(), d.ih)
	r.mu.Lock()
	old := d.name
	if r.byHash[d.ih] != d || want == old {
		r.mu.Unlock()
		return
	}
	name := r.uniqueNameLocked(want, d.ih)
	if name == old || !r.MvChild(old, r.EmbeddedInode(), name, false) {
		r.mu.Unlock()
		return
	}
	delete(r.byName, old)
	r.byName[name] = d
	d.name = name
	r.mu.Unlock()
	r.srv.notify.add(func() {
		r.NotifyEntry(old)
		r.NotifyEntry(name)
		r.NotifyContent(0, 0)
	})
}

// detachLocked forgets d; the caller unlinks it from the tree.
func (r *rootNode) detachLocked(d *torrentDir) {
	delete(r.byHash, d.ih)
	if r.byName[d.name] == d {
		delete(r.byName, d.name)
	}
	d.markRemoved()
}

// refresh makes the root match the host's torrent set ts.
func (r *rootNode) refresh(ts []Torrent) {
	ctx := context.Background()
	seen := make(map[metainfo.Hash]bool, len(ts))
	var fresh []*torrentDir
	for _, t := range ts {
		seen[t.InfoHash()] = true
		if d, ok := r.add(ctx, t, ""); ok {
			fresh = append(fresh, d)
		}
	}
	type gone struct {
		name string
		ino  *gofs.Inode
	}
	var removed []gone
	var added []string
	r.mu.Lock()
	for _, d := range fresh {
		if r.byHash[d.ih] == d {
			added = append(added, d.name)
		}
	}
	for ih, d := range r.byHash {
		if !seen[ih] {
			removed = append(removed, gone{d.name, d.EmbeddedInode()})
			r.detachLocked(d)
			r.RmChild(d.name)
		}
	}
	r.mu.Unlock()
	for _, g := range removed {
		g.ino.RmAllChildren()
	}
	if len(added)+len(removed) == 0 {
		return
	}
	r.srv.notify.add(func() {
		for _, g := range removed {
			r.NotifyDelete(g.name, g.ino)
		}
		for _, name := range added {
			r.NotifyEntry(name)
		}
		r.NotifyContent(0, 0)
	})
}

// Getattr: the root's link count follows the number of torrent folders.
func (r *rootNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r.mu.Lock()
	n := len(r.byHash)
	r.mu.Unlock()
	fillDirAttr(&out.Attr, 1, uint32(2+n), r.srv.mountTime)
	out.Mode = modeRoot
	// The torrent set changes; invalidations cover what we change, but
	// keep the root's own attributes fresh anyway.
	out.SetTimeout(shortTimeout)
	return 0
}

// Setattr: nobody may change the root's attributes (nor its extended
// attributes, below). The root's handlers that change its entries refuse
// other users first (see perm.go), then what nobody may do.
func (r *rootNode) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EPERM
}

// Statfs reports a read-only filesystem the size of its torrents.
func (r *rootNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	r.mu.Lock()
	var size int64
	var files uint64
	for _, d := range r.byHash {
		if info := d.t.Info(); info != nil {
			size += info.TotalLength
			files += uint64(len(info.Files))
		}
		files++
	}
	r.mu.Unlock()
	out.Bsize = blockSize
	out.Frsize = blockSize
	out.Blocks = uint64((size + blockSize - 1) / blockSize)
	out.Files = files
	out.NameLen = 255
	return 0
}

// uploadKind returns ".torrent" or ".magnet" for a name that adds a torrent
// when written into the root, or "".
func uploadKind(name string) string {
	lower := strings.ToLower(name)
	for _, ext := range []string{".torrent", ".magnet"} {
		if strings.HasSuffix(lower, ext) && len(name) > len(ext) {
			return ext
		}
	}
	return ""
}

// Create accepts NAME.torrent and NAME.magnet: the content is added as a
// torrent when the file is closed. Nothing else can be created here.
func (r *rootNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if errno := r.srv.changeErrno(ctx); errno != 0 {
		return nil, nil, 0, errno
	}
	kind := uploadKind(name)
	if kind == "" {
		return nil, nil, 0, syscall.EPERM
	}
	if r.GetChild(name) != nil {
		return nil, nil, 0, syscall.EEXIST
	}
	u := &uploadNode{srv: r.srv, root: r, name: name, kind: kind}
	ino := r.NewInode(ctx, u, gofs.StableAttr{Mode: syscall.S_IFREG})
	u.fill(&out.Attr)
	// The entry lasts only until close: let the kernel forget it at once.
	out.SetEntryTimeout(1)
	out.SetAttrTimeout(1)
	return ino, &uploadHandle{u: u}, fuse.FOPEN_DIRECT_IO, 0
}

// Mkdir of a 40-hex name adds that torrent by info-hash.
func (r *rootNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := r.srv.changeErrno(ctx); errno != 0 {
		return nil, errno
	}
	if len(name) != 40 {
		return nil, syscall.EPERM
	}
	if _, err := hex.DecodeString(name); err != nil {
		return nil, syscall.EPERM
	}
	t, err := r.srv.host.AddMagnet("magnet:?xt=urn:btih:" + strings.ToLower(name))
	if err != nil {
		r.srv.logf("swarmfs: mkdir %s: %v", name, err)
		return nil, toErrno(err)
	}
	d, added := r.add(ctx, t, name)
	if !added {
		return nil, syscall.EEXIST
	}
	d.fill(&out.Attr)
	return d.EmbeddedInode(), 0
}

// Rmdir of a torrent folder removes the torrent (the folder is not empty,
// but this is the removal command).
func (r *rootNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if errno := r.srv.changeErrno(ctx); errno != 0 {
		return errno
	}
	r.mu.Lock()
	d := r.byName[name]
	r.mu.Unlock()
	if d == nil {
		if r.GetChild(name) != nil {
			return syscall.ENOTDIR
		}
		return syscall.ENOENT
	}
	if err := r.srv.host.Remove(d.ih); err != nil && toErrno(err) != syscall.ENOENT {
		r.srv.logf("swarmfs: rmdir %s: %v", name, err)
		return toErrno(err)
	}
	r.mu.Lock()
	if r.byHash[d.ih] == d {
		r.detachLocked(d)
	}
	r.mu.Unlock()
	// go-fuse unlinks name from the root when we return.
	d.EmbeddedInode().RmAllChildren()
	return 0
}

func (r *rootNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := r.srv.changeErrno(ctx); errno != 0 {
		return errno
	}
	r.mu.Lock()
	d := r.byName[name]
	r.mu.Unlock()
	if d != nil {
		return syscall.EISDIR
	}
	return syscall.EPERM
}

func (r *rootNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if errno := r.srv.changeErrno(ctx); errno != 0 {
		return errno
	}
	return syscall.EPERM
}

func (r *rootNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := r.srv.changeErrno(ctx); errno != 0 {
		return nil, errno
	}
	return nil, syscall.EPERM
}

func (r *rootNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := r.srv.changeErrno(ctx); errno != 0 {
		return nil, errno
	}
	return nil, syscall.EPERM
}

func (r *rootNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := r.srv.changeErrno(ctx); errno != 0 {
		return nil, errno
	}
	return nil, syscall.EPERM
}

func (r *rootNode) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if errno := r.srv.changeErrno(ctx); errno != 0 {
		return nil, nil, 0, errno
	}
	return nil, nil, 0, syscall.EPERM
}

func (r *rootNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.EPERM
}

func (r *rootNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return syscall.EPERM
}
