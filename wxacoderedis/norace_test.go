//go:build !race

package wxacoderedis

// raceEnabled: see race_test.go.
const raceEnabled = false
