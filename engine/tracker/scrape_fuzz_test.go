package tracker

import (
	"errors"
	"testing"
)

// FuzzScrapeResponse feeds arbitrary bytes to both scrape parsers: as an
// HTTP body (BEP 48) and as a UDP datagram (BEP 15 action 2). Neither may
// panic, and what they accept has no negative count. Its seed corpus is in
// testdata/fuzz/FuzzScrapeResponse.
func FuzzScrapeResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ih := [20]byte{1, 2, 3}
		check := func(r ScrapeResult, err error) {
			if err != nil {
				if r != (ScrapeResult{}) {
					t.Fatalf("result %+v with error %v", r, err)
				}
				if errors.Is(err, ErrFailure) && len(err.Error()) > maxMessage+len(ErrFailure.Error())+2 {
					t.Fatalf("failure message of %d bytes", len(err.Error()))
				}
				return
			}
			if r.Seeders < 0 || r.Leechers < 0 || r.Completed < 0 {
				t.Fatalf("result %+v", r)
			}
		}
		check(parseHTTPScrape(b, ih))
		check(parseUDPScrape(b))
	})
}
