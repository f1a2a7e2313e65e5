//go:build !race

package main

// raceEnabled: see e2e_race_test.go.
const raceEnabled = false
