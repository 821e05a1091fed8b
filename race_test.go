//go:build race

package wxacode

// raceEnabled: the race detector changes how much some code allocates
// (io.ReadAll's buffers, for one), so allocation limits are checked in runs
// without it (.ci/run makes one).
const raceEnabled = true
