package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/swarmfs/swarmfs/engine/swarmtest"
)

func TestHelperArgs(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.torrent", "a.magnet", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	one := filepath.Join(dir, "b.torrent")
	tests := []struct {
		name string
		args []string
		want []string // nil: an error
		fake bool
	}{
		{"fstab options", []string{one, "/mnt", "-o", "rw,defaults,cache-size=20GiB,_netdev,nofail,x-systemd.automount,x-systemd.device-timeout=10,allow_other,noauto,user,nosuid,nodev"},
			[]string{"--daemon", "--cache-size=20GiB", "--allow-other", "/mnt", one}, false},
		{"flags anywhere", []string{"-n", "-o", "no_dht", one, "-v", "/mnt", "-oread-timeout=5s", "-t", "swarmfs"},
			[]string{"--daemon", "-v", "--no-dht", "--read-timeout=5s", "/mnt", one}, false},
		{"none", []string{"none", "/mnt", "-o", "data-dir=/d"}, []string{"--daemon", "--data-dir=/d", "/mnt"}, false},
		{"folder", []string{dir, "/mnt"}, []string{"--daemon", "/mnt", filepath.Join(dir, "a.magnet"), one}, false},
		{"fake", []string{"-fn", "none", "/mnt"}, []string{"--daemon", "/mnt"}, true},
		{"bool with value", []string{"none", "/mnt", "-o", "no-pex=true"}, []string{"--daemon", "--no-pex=true", "/mnt"}, false},
		{"sloppy", []string{"-s", "none", "/mnt", "-o", "frob=1,no-lsd"}, []string{"--daemon", "--no-lsd", "/mnt"}, false},
		{"unknown option", []string{"none", "/mnt", "-o", "frob=1"}, nil, false},
		{"value missing", []string{"none", "/mnt", "-o", "cache-size"}, nil, false},
		{"one argument", []string{"/mnt"}, nil, false},
		{"missing source", []string{filepath.Join(dir, "nope"), "/mnt"}, nil, false},
		{"bad letter", []string{"-q", "none", "/mnt"}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, fake, err := helperArgs(tc.args, discard{})
			if tc.want == nil {
				if err == nil {
					t.Fatalf("helperArgs(%q) = %q, want an error", tc.args, got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) || fake != tc.fake {
				t.Fatalf("helperArgs(%q) = %q, %v, %v; want %q, %v", tc.args, got, fake, err, tc.want, tc.fake)
			}
		})
	}
}

// TestMountHelper mounts through mount(8), as an administrator would: with
// "mount -t swarmfs SOURCE MNT -o OPTIONS" and with an fstab line (a test
// fstab through mount -T), and "none" for an empty mount; reads the files
// and unmounts with umount(8). It all happens in a private mount and pid
// namespace where /usr/sbin (/sbin on this system) is a folder holding
// only mount.swarmfs, a link to the test binary: the host's mount table
// and /sbin are untouched, and when the script ends the kernel kills
// whatever it left, taking its mounts with the namespace.
func TestMountHelper(t *testing.T) {
	requireRoot(t)
	requireProgs(t, "unshare", "mount", "umount", "pgrep")
	swarmtest.RequireTools(t, "fuse")
	bin := swarmfsBin(t)
	sbin, err := filepath.EvalSymlinks("/sbin")
	if err != nil {
		t.Fatal(err)
	}
	torrent, content, addr := startSeed(t, "f.txt")
	tmp := t.TempDir()
	helpers := filepath.Join(tmp, "sbin")
	os.Mkdir(helpers, 0o755)
	if err := os.Symlink(bin, filepath.Join(helpers, helperName)); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(tmp, "torrents")
	os.Mkdir(folder, 0o755)
	b, _ := os.ReadFile(torrent)
	os.WriteFile(filepath.Join(folder, "f.torrent"), b, 0o644)
	var mnt, dd [3]string
	for i := range mnt {
		mnt[i] = filepath.Join(tmp, "mnt"+string(rune('1'+i)))
		dd[i] = filepath.Join(tmp, "data"+string(rune('1'+i)))
		os.Mkdir(mnt[i], 0o755)
	}
	common := "listen=127.0.0.1:0,no_dht,no-lsd,no-trackers,cache-size=64MiB,peer=" + addr
	fstab := filepath.Join(tmp, "fstab")
	os.WriteFile(filepath.Join(fstab), []byte("# a test fstab\n"+
		folder+"  "+mnt[1]+"  swarmfs  defaults,_netdev,nofail,x-systemd.automount,"+common+",data-dir="+dd[1]+"  0 0\n"), 0o644)
	script := `
set -e
mount --bind ` + helpers + ` ` + sbin + `
mount -t swarmfs -o ` + common + `,data-dir=` + dd[0] + `,_netdev ` + torrent + ` ` + mnt[0] + `
echo "read1: $(cat ` + mnt[0] + `/f.txt/f.txt)"
umount ` + mnt[0] + `
mount -T ` + fstab + ` ` + mnt[1] + `
echo "read2: $(cat ` + mnt[1] + `/f.txt/f.txt)"
umount ` + mnt[1] + `
mount -t swarmfs none ` + mnt[2] + ` -o listen=127.0.0.1:0,no-dht,no-lsd,data-dir=` + dd[2] + `
echo "empty: $(ls -A ` + mnt[2] + ` | wc -l)"
grep swarmfs /proc/self/mounts | grep -c ' ` + tmp + `/' | sed 's/^/mounts: /'
umount ` + mnt[2] + `
i=0
while pgrep -x swarmfs >/dev/null; do
	i=$((i+1)); [ $i -lt 600 ] || { echo "daemons still running after umount"; exit 1; }
	sleep 0.1
done
echo done
`
	out, err := runProgErr(t, 3*time.Minute, "unshare", "-m", "-p", "-f", "--mount-proc", "--propagation", "private", "--kill-child", "sh", "-c", script)
	if err != nil {
		t.Fatalf("mount helper script: %v\n%s", err, out)
	}
	for _, want := range []string{"read1: " + content, "read2: " + content, "empty: 0", "mounts: 1", "done"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, m := range mnt {
		if isMounted(m) {
			t.Errorf("%s is mounted outside the namespace", m)
		}
	}
}

// TestMountHelperArgv0 runs the binary as mount.swarmfs with -f (fake):
// it checks its arguments and mounts nothing.
func TestMountHelperArgv0(t *testing.T) {
	link := filepath.Join(t.TempDir(), helperName)
	if err := os.Symlink(swarmfsBin(t), link); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(link, "-f", "none", t.TempDir(), "-o", "cache-size=1GiB").CombinedOutput(); err != nil {
		t.Fatalf("mount.swarmfs -f: %v\n%s", err, out)
	}
	out, err := exec.Command(link, "none", t.TempDir(), "-o", "frobnicate").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "frobnicate") {
		t.Fatalf("mount.swarmfs with an unknown option: %v\n%s", err, out)
	}
}
