package engine

// withExtraTier returns tiers with the extra URLs that it lacks as one more
// tier (TorrentOptions.ExtraTrackers); tiers itself is not modified.
func withExtraTier(tiers [][]string, extra []string) [][]string {
	seen := map[string]bool{}
	for _, tier := range tiers {
		for _, u := range tier {
			seen[u] = true
		}
	}
	var last []string
	for _, u := range extra {
		if u != "" && !seen[u] {
			seen[u] = true
			last = append(last, u)
		}
	}
	if len(last) == 0 {
		return tiers
	}
	out := make([][]string, 0, len(tiers)+1)
	for _, tier := range tiers {
		if len(tier) > 0 {
			out = append(out, tier)
		}
	}
	return append(out, last)
}
