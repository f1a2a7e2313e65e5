package metainfo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSmokeCreate(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d", "e"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.bin"), make([]byte, 100000), 0o644)
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "d", "e", "f.txt"), []byte("hi\n"), 0o644)
	m, err := Create(dir, CreateOptions{Trackers: [][]string{{"http://a/announce"}, {"udp://b:1"}}, NoDate: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %+v %v %s", m2.InfoHash, m2.Info.Files, m2.Trackers(), m2.Magnet())
	os.WriteFile("/tmp/mi/smoke.torrent", b, 0o644)
}
