package peer

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func addrs(ss ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range ss {
		out = append(out, netip.MustParseAddrPort(s))
	}
	return out
}

func TestParsePexMessage(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want PexMessage
	}{
		{"v4 added and dropped", "d5:added12:\x7f\x00\x00\x02\x1a\xe1\x0a\x00\x00\x01\x00\x507:added.f2:\x02\x117:dropped6:\x7f\x00\x00\x03\x00\x01e", 0,
			PexMessage{Added: addrs("127.0.0.2:6881", "10.0.0.1:80"), AddedFlags: []byte{0x02, 0x11}, Dropped: addrs("127.0.0.3:1")}},
		{"v4 and v6 merged", "d5:added6:\x7f\x00\x00\x02\x1a\xe17:added.f1:\x016:added618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe28:added6.f1:\x048:dropped618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x02e", 0,
			PexMessage{Added: addrs("127.0.0.2:6881", "[::1]:6882"), AddedFlags: []byte{0x01, 0x04}, Dropped: addrs("[2001:db8::1]:2")}},
		{"flags missing", "d5:added6:\x7f\x00\x00\x02\x1a\xe1e", 0,
			PexMessage{Added: addrs("127.0.0.2:6881"), AddedFlags: []byte{0}}},
		{"flags too long", "d5:added6:\x7f\x00\x00\x02\x1a\xe17:added.f3:\x02\x02\x02e", 0,
			PexMessage{Added: addrs("127.0.0.2:6881"), AddedFlags: []byte{2}}},
		{"max keeps v4 first", "d5:added12:\x7f\x00\x00\x02\x1a\xe1\x0a\x00\x00\x01\x00\x506:added618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe27:dropped12:\x7f\x00\x00\x02\x1a\xe1\x0a\x00\x00\x01\x00\x50e", 1,
			PexMessage{Added: addrs("127.0.0.2:6881"), AddedFlags: []byte{0}, Dropped: addrs("127.0.0.2:6881")}},
		{"max spills into v6", "d5:added6:\x7f\x00\x00\x02\x1a\xe16:added636:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe2\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe38:added6.f2:\x04\x08e", 2,
			PexMessage{Added: addrs("127.0.0.2:6881", "[::1]:6882"), AddedFlags: []byte{0, 4}}},
		{"empty", "de", 0, PexMessage{}},
		{"empty strings", "d5:added0:7:added.f0:7:dropped0:e", 0, PexMessage{}},
		{"wrong types ignored", "d5:addedi1e7:droppedli1eee", 0, PexMessage{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePexMessage([]byte(tc.in), tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParsePexMessageBad(t *testing.T) {
	for _, in := range []string{
		"",
		"le",
		"d5:added5:\x7f\x00\x00\x02\x1ae",
		"d6:added66:\x7f\x00\x00\x02\x1a\xe1e",
		"d7:dropped7:\x7f\x00\x00\x02\x1a\xe1\x00e",
		"d5:added4294967296:e",
		"d5:added6:\x7f\x00\x00\x02\x1a\xe1",
	} {
		_, err := ParsePexMessage([]byte(in), 50)
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("ParsePexMessage(%q) = %v, want ErrProtocol", in, err)
		}
	}
}

func TestPexMessageMarshal(t *testing.T) {
	m := PexMessage{
		Added:      addrs("127.0.0.2:6881", "[::1]:6882", "[::ffff:10.0.0.1]:80"),
		AddedFlags: []byte{PexFlagSeed, PexFlagUTP | PexFlagEncryption},
		Dropped:    addrs("[2001:db8::1]:2", "127.0.0.3:1"),
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "d5:added12:\x7f\x00\x00\x02\x1a\xe1\x0a\x00\x00\x01\x00\x50" +
		"7:added.f2:\x02\x00" +
		"6:added618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe2" +
		"8:added6.f1:\x05" +
		"7:dropped6:\x7f\x00\x00\x03\x00\x01" +
		"8:dropped618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x02e"
	if string(b) != want {
		t.Fatalf("Marshal = %q\nwant %q", b, want)
	}
	back, err := ParsePexMessage(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantBack := PexMessage{
		Added:      addrs("127.0.0.2:6881", "10.0.0.1:80", "[::1]:6882"),
		AddedFlags: []byte{PexFlagSeed, 0, PexFlagUTP | PexFlagEncryption},
		Dropped:    addrs("127.0.0.3:1", "[2001:db8::1]:2"),
	}
	if !reflect.DeepEqual(back, wantBack) {
		t.Fatalf("round trip %+v", back)
	}

	if b, err := (PexMessage{}).Marshal(); err != nil || string(b) != "d5:added0:7:added.f0:6:added60:8:added6.f0:7:dropped0:8:dropped60:e" {
		t.Fatalf("empty: %q %v", b, err)
	}
	if _, err := (PexMessage{AddedFlags: []byte{1}}).Marshal(); err == nil {
		t.Fatal("flags without peers marshalled")
	}
	if _, err := (PexMessage{Added: []netip.AddrPort{{}}}).Marshal(); err == nil {
		t.Fatal("invalid address marshalled")
	}
}
