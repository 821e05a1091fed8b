//go:build race

package wxacoderedis

// raceEnabled: the race detector slows every goroutine several times over;
// on a shared two-core machine the fleet stress tests' 12 ms turns then
// meet scheduling delays of that size, and their windows are measured on
// the noise. .ci/run runs them without it.
const raceEnabled = true
