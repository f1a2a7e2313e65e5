//go:build race

package cache

// raceBuild reports a -race build; see runValueLogGC.
const raceBuild = true
