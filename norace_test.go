//go:build !race

package wxacode

// raceEnabled: see race_test.go.
const raceEnabled = false
