package cache

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits maps a lower-cased unit to its multiplier. Single letters and the
// "iB" forms are binary (as in dd, du and docker: 100M is 100 MiB); the "B"
// forms are decimal (SI: 1.5GB is 1.5e9 bytes).
var sizeUnits = map[string]float64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"kib": 1 << 10,
	"kb":  1e3,
	"m":   1 << 20,
	"mib": 1 << 20,
	"mb":  1e6,
	"g":   1 << 30,
	"gib": 1 << 30,
	"gb":  1e9,
	"t":   1 << 40,
	"tib": 1 << 40,
	"tb":  1e12,
}

// ParseSize parses a byte count such as "512MiB", "20GiB", "1.5GB", "100M" or
// "1048576". Units are case-insensitive; a space may separate number and unit.
// A fractional result is rounded down to whole bytes.
func ParseSize(s string) (int64, error) {
	in := strings.TrimSpace(s)
	i := 0
	for i < len(in) && (in[i] >= '0' && in[i] <= '9' || in[i] == '.') {
		i++
	}
	num, unit := in[:i], strings.ToLower(strings.TrimSpace(in[i:]))
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("cache: invalid size %q: %s (want a number and an optional unit: "+
			"B, KiB, MiB, GiB, TiB (or K, M, G, T), KB, MB, GB, TB; e.g. 512MiB or 20GiB)", s, why)
	}
	if num == "" {
		return bad("no number")
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return bad(fmt.Sprintf("unknown unit %q", in[i:]))
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseUint(num, 10, 63)
		if err != nil {
			return bad("number out of range")
		}
		if m := uint64(mult); n > math.MaxInt64/m {
			return bad("too large")
		}
		return int64(n * uint64(mult)), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return bad("malformed number")
	}
	v := math.Floor(f * mult)
	if v >= math.MaxInt64 {
		return bad("too large")
	}
	return int64(v), nil
}

// formatSize renders n in binary units for messages.
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit && exp < 4; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
