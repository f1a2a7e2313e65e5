package tracker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

func TestScrapeURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://t.example/announce", "http://t.example/scrape"},
		{"http://t.example/x/announce.php?pk=1", "http://t.example/x/scrape.php?pk=1"},
		{"https://t.example:8443/announce#frag", "https://t.example:8443/scrape"},
		{"http://t.example/a", ""},
		{"http://t.example/announce/x", ""},
		{"http://t.example", ""},
	} {
		got, err := ScrapeURL(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrNoScrape) {
				t.Errorf("ScrapeURL(%q) = %q, %v; want ErrNoScrape", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ScrapeURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseHTTPScrape(t *testing.T) {
	ih := [20]byte{1, 2, 3}
	entry := func(h [20]byte, body string) string { return fmt.Sprintf("d5:filesd20:%sd%see", h[:], body) }
	for _, tc := range []struct {
		name, body string
		want       ScrapeResult
		err        error
	}{
		{"counts", entry(ih, "8:completei5e10:downloadedi7e10:incompletei3e") + "e", ScrapeResult{Seeders: 5, Leechers: 3, Completed: 7}, nil},
		{"negative and missing", entry(ih, "8:completei-5e") + "e", ScrapeResult{}, nil},
		{"other torrent", entry([20]byte{9}, "8:completei5e") + "e", ScrapeResult{}, ErrNoScrape},
		{"failure", "d14:failure reason7:go awaye", ScrapeResult{}, ErrFailure},
		{"not a dict", "le", ScrapeResult{}, nil},
		{"entry not a dict", fmt.Sprintf("d5:filesd20:%si1eee", ih[:]), ScrapeResult{}, nil},
		{"huge string", "d5:files999999999:", ScrapeResult{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseHTTPScrape([]byte(tc.body), ih)
			switch {
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
			case tc.want == ScrapeResult{} && tc.name != "negative and missing":
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
			default:
				if err != nil || got != tc.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
				}
			}
		})
	}
}

// TestUDPScrape scrapes a fake BEP 15 tracker: a connect, then action 2
// with the info-hash; its seeders, completed, leechers come back in that
// order. An error action is the tracker's refusal.
func TestUDPScrape(t *testing.T) {
	f := newFakeUDP(t)
	ih := [20]byte{7, 7, 7}
	gotHash := make(chan [20]byte, 8) // written by the fake's goroutine
	f.setRespond(func(_ int, pkt []byte) [][]byte {
		if len(pkt) < 16 || binary.BigEndian.Uint32(pkt[8:]) != actionScrape {
			return [][]byte{f.standard(pkt)}
		}
		gotHash <- [20]byte(pkt[16:36])
		b := binary.BigEndian.AppendUint32(nil, actionScrape)
		b = binary.BigEndian.AppendUint32(b, tidOf(pkt))
		for _, n := range []uint32{4, 9, 2} { // seeders, completed, leechers
			b = binary.BigEndian.AppendUint32(b, n)
		}
		return [][]byte{b}
	})
	r, err := fastUDP().scrape(ctxT(t), mustURL(t, f.url()), ih, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if want, h := (ScrapeResult{Seeders: 4, Completed: 9, Leechers: 2}), <-gotHash; r != want || h != ih {
		t.Fatalf("got %+v for %x; want %+v for %x", r, h, want, ih)
	}
	f.setRespond(func(_ int, pkt []byte) [][]byte {
		if len(pkt) >= 16 && binary.BigEndian.Uint32(pkt[8:]) == actionScrape {
			return [][]byte{udpErrorPacket(tidOf(pkt), "not today")}
		}
		return [][]byte{f.standard(pkt)}
	})
	if _, err := fastUDP().scrape(ctxT(t), mustURL(t, f.url()), ih, netip.Addr{}); !errors.Is(err, ErrFailure) {
		t.Fatalf("refused scrape: %v, want ErrFailure", err)
	}
}

func TestParseUDPScrape(t *testing.T) {
	b := binary.BigEndian.AppendUint32(nil, actionScrape)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // negative: 0
	if _, err := parseUDPScrape(b); err == nil {
		t.Fatal("accepted a short scrape answer")
	}
	b = binary.BigEndian.AppendUint32(b, 3)
	r, err := parseUDPScrape(b)
	if want := (ScrapeResult{Seeders: 1, Completed: 0, Leechers: 3}); err != nil || r != want {
		t.Fatalf("got %+v, %v; want %+v", r, err, want)
	}
}

// TestOpentrackerScrape: opentracker counts a seeder and a leecher of a
// torrent, over HTTP (BEP 48) and UDP.
func TestOpentrackerScrape(t *testing.T) {
	hashHTTP, hashUDP := [20]byte{0xbb, 1}, [20]byte{0xbb, 2}
	httpURL, udpURL := startOpentracker(t, hashHTTP, hashUDP)
	for _, tc := range []struct {
		name, url string
		hash      [20]byte
	}{{"http", httpURL, hashHTTP}, {"udp", udpURL, hashUDP}} {
		t.Run(tc.name, func(t *testing.T) {
			for i, left := range []int64{0, 1000} {
				req := AnnounceRequest{InfoHash: tc.hash, Port: uint16(41000 + i), Left: left, Event: Started, NumWant: 5}
				copy(req.PeerID[:], fmt.Sprintf("-SW0001-scrape%06d", i))
				if _, err := Announce(ctxT(t), tc.url, req); err != nil {
					t.Fatal(err)
				}
			}
			r, err := Scrape(ctxT(t), tc.url, tc.hash, netip.Addr{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Seeders != 1 || r.Leechers != 1 {
				t.Fatalf("scrape %+v; want 1 seeder and 1 leecher", r)
			}
		})
	}
}
