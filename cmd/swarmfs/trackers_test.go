package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseTrackerList(t *testing.T) {
	got, err := parseTrackerList(strings.NewReader("# newTrackon\nudp://tracker.example:1337/announce\n\n  http://t.example/announce  \n# end\nhttps://t.example/a?k=1\n"))
	want := []string{"udp://tracker.example:1337/announce", "http://t.example/announce", "https://t.example/a?k=1"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"ftp://t.example/announce\n", "not a url\n", "udp:///announce\n", strings.Repeat("http://t.example/announce\n", maxTrackers+1)} {
		if _, err := parseTrackerList(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %.40q", bad)
		}
	}
}
