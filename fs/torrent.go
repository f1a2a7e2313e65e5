package fs

// Lock order: rootNode.mu → torrentDir.mu → go-fuse Inode locks.

import (
	"context"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/swarmfs/swarmfs/engine/metainfo"
)

// torrentDir is a torrent's folder in the root. Its tree of folders and files
// is built once, as persistent inodes, when the metadata is known: at once for
// a .torrent, when it arrives for a magnet. Until then the folder lists empty
// and a lookup inside it waits for the metadata.
type torrentDir struct {
	gofs.Inode
	readOnly

	// Read-only after construction.
	srv     *Server
	t       Torrent
	ih      metainfo.Hash
	mtime   time.Time
	removed chan struct{} // closed when the torrent is removed

	removeOnce sync.Once

	// name is the folder's current name in the root; guarded by
	// rootNode.mu.
	name string

	mu sync.Mutex // guards the following
	// built is set once the tree is linked under the folder.
	built bool
	// nlink is the folder's link count: 2 + its sub-folders.
	nlink uint32
}

var (
	_ gofs.NodeGetattrer   = (*torrentDir)(nil)
	_ gofs.NodeLookuper    = (*torrentDir)(nil)
	_ gofs.NodeOpendirer   = (*torrentDir)(nil)
	_ gofs.NodeStatfser    = (*torrentDir)(nil)
	_ gofs.NodeGetxattrer  = (*torrentDir)(nil)
	_ gofs.NodeListxattrer = (*torrentDir)(nil)
)

// timed is the optional interface a Torrent implements to set its times.
type timed interface{ Time() time.Time }

func newTorrentDir(srv *Server, t Torrent) *torrentDir {
	d := &torrentDir{
		srv:     srv,
		t:       t,
		ih:      t.InfoHash(),
		mtime:   time.Now(),
		removed: make(chan struct{}),
		nlink:   2,
	}
	if tt, ok := t.(timed); ok {
		if mt := tt.Time(); !mt.IsZero() {
			d.mtime = mt
		}
	}
	return d
}

// markRemoved wakes whatever waits on the folder's metadata.
func (d *torrentDir) markRemoved() {
	d.removeOnce.Do(func() { close(d.removed) })
}

// isBuilt tells whether the tree is there.
func (d *torrentDir) isBuilt() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.built
}

// watchInfo waits for the metadata, builds the tree, gives the folder its
// real name and tells the kernel. Owned by the Server (srv.wg).
func (d *torrentDir) watchInfo() {
	defer d.srv.wg.Done()
	select {
	case <-d.t.InfoReady():
	case <-d.removed:
		return
	case <-d.srv.closing:
		return
	}
	info := d.t.Info()
	if info == nil {
		d.srv.logf("swarmfs: torrent %s: InfoReady closed but Info is nil", d.ih)
		return
	}
	fresh := d.build(context.Background(), info)
	d.srv.root.rename(d)
	if fresh {
		d.srv.notify.add(func() { d.NotifyContent(0, 0) })
	}
}

// ensureBuilt builds the tree if the metadata is known, without waiting.
func (d *torrentDir) ensureBuilt(ctx context.Context) bool {
	if d.isBuilt() {
		return true
	}
	info := d.t.Info()
	if info == nil {
		return false
	}
	d.build(ctx, info)
	return true
}

// waitBuilt waits, bounded by the read timeout, for the metadata and builds
// the tree.
func (d *torrentDir) waitBuilt(ctx context.Context) syscall.Errno {
	if d.ensureBuilt(ctx) {
		return 0
	}
	timer := time.NewTimer(d.srv.readTimeout)
	defer timer.Stop()
	select {
	case <-d.t.InfoReady():
	case <-ctx.Done():
		return syscall.EINTR
	case <-d.removed:
		return syscall.ENOENT
	case <-d.srv.closing:
		return toErrno(errUnmounting)
	case <-timer.C:
		d.srv.logf("swarmfs: torrent %s: no metadata after %v", d.ih, d.srv.readTimeout)
		return syscall.EIO
	}
	if !d.ensureBuilt(ctx) {
		return syscall.EIO
	}
	return 0
}

// build makes the tree of folders and files for info and links it under the
// folder; it reports whether this call built it. Pad files are left out. Each
// node's inode number derives from the info-hash and its path.
func (d *torrentDir) build(ctx context.Context, info *metainfo.Info) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.built {
		return false
	}
	gen := d.StableAttr().Gen
	// Sub-folders and files are linked under their parents while
	// unreachable; the top level is linked last, so nobody sees a folder
	// before its link count is final.
	type dirInfo struct {
		inode *gofs.Inode
		node  *dirNode
	}
	dirs := map[string]dirInfo{}
	var top []struct {
		name  string
		inode *gofs.Inode
	}
	topNames := map[string]bool{}
	used := map[uint64]bool{d.StableAttr().Ino: true}
	newIno := func(parts []string) uint64 {
		for salt := uint32(0); ; salt++ {
			ino := inoOf(d.ih, parts, salt)
			if !used[ino] {
				used[ino] = true
				return ino
			}
		}
	}
	topDirs := uint32(0)
	for i := range info.Files {
		f := &info.Files[i]
		if f.Pad || len(f.Path) == 0 {
			continue
		}
		// Walk (and make) the folders of f's path.
		var parent *gofs.Inode
		var parentNode *dirNode
		key := ""
		ok := true
		for j, comp := range f.Path[:len(f.Path)-1] {
			if j == 0 {
				key = comp
			} else {
				key += "/" + comp
			}
			if di, found := dirs[key]; found {
				parent, parentNode = di.inode, di.node
				continue
			}
			if j == 0 && topNames[comp] || j > 0 && parent.GetChild(comp) != nil {
				ok = false // a file already has this name
				break
			}
			node := &dirNode{srv: d.srv, t: d.t, mtime: d.mtime, nlink: 2}
			node.ino = newIno(f.Path[:j+1])
			inode := d.NewPersistentInode(ctx, node, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: node.ino, Gen: gen})
			if j == 0 {
				top = append(top, struct {
					name  string
					inode *gofs.Inode
				}{comp, inode})
				topNames[comp] = true
				topDirs++
			} else {
				parent.AddChild(comp, inode, false)
				parentNode.nlink++
			}
			dirs[key] = dirInfo{inode, node}
			parent, parentNode = inode, node
		}
		leaf := f.Path[len(f.Path)-1]
		if !ok || (parent == nil && topNames[leaf]) || (parent != nil && parent.GetChild(leaf) != nil) {
			d.srv.logf("swarmfs: torrent %s: skipping %q: name clash", d.ih, f.DisplayPath())
			continue
		}
		fn := &fileNode{
			srv:     d.srv,
			t:       d.t,
			index:   i,
			removed: d.removed,
			size:    f.Length,
			mtime:   d.mtime,
			media:   IsMedia(leaf),
		}
		fn.ino = newIno(f.Path)
		inode := d.NewPersistentInode(ctx, fn, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: fn.ino, Gen: gen})
		if parent == nil {
			top = append(top, struct {
				name  string
				inode *gofs.Inode
			}{leaf, inode})
			topNames[leaf] = true
		} else {
			parent.AddChild(leaf, inode, false)
		}
	}
	for _, e := range top {
		d.AddChild(e.name, e.inode, false)
	}
	d.nlink = 2 + topDirs
	d.built = true
	return true
}

// fill sets the folder's attributes.
func (d *torrentDir) fill(out *fuse.Attr) {
	d.mu.Lock()
	nlink := d.nlink
	d.mu.Unlock()
	fillDirAttr(out, d.StableAttr().Ino, nlink, d.mtime)
}

func (d *torrentDir) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.ensureBuilt(ctx)
	d.fill(&out.Attr)
	if !d.isBuilt() {
		// The link count changes when the metadata arrives.
		out.SetTimeout(shortTimeout)
	}
	return 0
}

// Lookup waits for the metadata (a magnet's folder is empty until then), so
// a program opening a path inside a just-added magnet gets the file, not
// ENOENT.
func (d *torrentDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := d.waitBuilt(ctx); errno != 0 {
		return nil, errno
	}
	ch := d.GetChild(name)
	if ch == nil {
		return nil, syscall.ENOENT
	}
	fillChild(ch, &out.Attr, out)
	return ch, 0
}

// Opendir builds the tree if the metadata is known; listing never waits on
// the swarm.
func (d *torrentDir) Opendir(ctx context.Context) syscall.Errno {
	d.ensureBuilt(ctx)
	return 0
}

func (d *torrentDir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return d.srv.root.Statfs(ctx, out)
}

func (d *torrentDir) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return torrentXattr(attr, dest, d.t, d.progress)
}

func (d *torrentDir) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return torrentListxattr(dest, d.t)
}

func (d *torrentDir) progress() float64 { return clamp01(d.t.Stats().Progress) }

// dirNode is a folder inside a torrent. Its children are persistent inodes,
// so go-fuse answers listings from the tree; its Lookup is ours only to
// give a file that is not complete a short attribute timeout (go-fuse's
// own lookup keeps the attributes but not the timeout Getattr gives, so
// the kernel would keep a file's st_blocks, its progress for du, an hour).
type dirNode struct {
	gofs.Inode
	readOnly

	// Read-only once linked into the tree.
	srv   *Server
	t     Torrent
	ino   uint64
	mtime time.Time
	nlink uint32
}

var (
	_ gofs.NodeGetattrer   = (*dirNode)(nil)
	_ gofs.NodeLookuper    = (*dirNode)(nil)
	_ gofs.NodeStatfser    = (*dirNode)(nil)
	_ gofs.NodeGetxattrer  = (*dirNode)(nil)
	_ gofs.NodeListxattrer = (*dirNode)(nil)
)

func (n *dirNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillDirAttr(&out.Attr, n.ino, n.nlink, n.mtime)
	return 0
}

func (n *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ch := n.GetChild(name)
	if ch == nil {
		return nil, syscall.ENOENT
	}
	fillChild(ch, &out.Attr, out)
	return ch, 0
}

func (n *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return n.srv.root.Statfs(ctx, out)
}

func (n *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return torrentXattr(attr, dest, n.t, func() float64 { return clamp01(n.t.Stats().Progress) })
}

func (n *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return torrentListxattr(dest, n.t)
}

// fillChild fills the entry of a child of a torrent folder.
func fillChild(ch *gofs.Inode, attr *fuse.Attr, out *fuse.EntryOut) {
	switch n := ch.Operations().(type) {
	case *fileNode:
		if timeout := n.fill(attr); timeout != longTimeout {
			out.SetAttrTimeout(timeout)
		}
	case *dirNode:
		fillDirAttr(attr, n.ino, n.nlink, n.mtime)
	}
}

// readOnly answers every change inside a torrent with EROFS.
type readOnly struct{}

var (
	_ gofs.NodeSetattrer     = readOnly{}
	_ gofs.NodeCreater       = readOnly{}
	_ gofs.NodeMkdirer       = readOnly{}
	_ gofs.NodeRmdirer       = readOnly{}
	_ gofs.NodeUnlinker      = readOnly{}
	_ gofs.NodeRenamer       = readOnly{}
	_ gofs.NodeMknoder       = readOnly{}
	_ gofs.NodeLinker        = readOnly{}
	_ gofs.NodeSymlinker     = readOnly{}
	_ gofs.NodeSetxattrer    = readOnly{}
	_ gofs.NodeRemovexattrer = readOnly{}
	_ gofs.NodeTmpfiler      = readOnly{}
)

func (readOnly) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (readOnly) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (readOnly) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnly) Rmdir(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (readOnly) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (readOnly) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}

func (readOnly) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnly) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnly) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (readOnly) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.EROFS
}

func (readOnly) Removexattr(ctx context.Context, attr string) syscall.Errno { return syscall.EROFS }

func (readOnly) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}
