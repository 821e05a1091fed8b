package wxacoderedis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// reserveLua reserves turns on the quota: the GCRA that redis_rate runs
// to allow one request, in the form x/time/rate.Reserve takes in one
// process: a turn is always taken (within the horizon) and the caller is
// told when it may go, so waiting callers sleep and never ask again.
// Times are microseconds on Redis's clock, so the replicas' clocks do not
// matter.
//
// KEYS[1], the quota, is one hash: "tat" is the theoretical arrival time
// (when the bucket would be full again), "born" when the key was made,
// "r:ID" when the Limiter ID was last seen, and "fleet" how many Limiters
// the last call that reported one counted, so that every call tells each
// Limiter how many share the quota (what it falls back to when Redis is
// out is its share). One key keeps the script within one slot of a Redis
// Cluster.
//
// ARGV: interval (µs a turn), burst offset (burst × interval), ID (empty:
// this call does not report; a Limiter reports at most once a second),
// lead (µs: no turn sooner than now + lead; the caller's last round trip,
// since a turn due before the answer arrives would go late, bunched with
// the next), floor (µs: tat is at least this: the end of the fleet's turns
// as this Limiter last heard it, so that a Redis that lost its state, by a
// restart or a failover, does not hand out again turns the replicas still
// hold), debt (µs: turns this Limiter granted alone while Redis was out,
// which the quota must count, sent by the call that finds Redis back),
// born (the quota's "born" as this Limiter last heard it, while the key
// cannot have expired since; else 0), then one horizon (µs; negative:
// none) for each caller that wants a turn, earliest first: the i-th caller
// takes the next turn if it comes within its horizon, else it gets none
// and the turn goes to the next caller, so that no turn is spent on a
// caller who could not use it. A Limiter unseen for memory (fleetMemory,
// written in the script: see TestReserveLuaMemory) drops out of the fleet.
//
// It returns one flat array: the turns taken, the number of Limiters seen
// (counted now by a call that reports; else as the last call that
// reported counted them, at most a second or so before, or 0 for a key
// made since), "tat" after the turns (which identifies the last of them
// for giveBackLua), Redis's clock (µs, by which each Limiter maps Redis's
// times to its own), 1 when Redis lost the quota's state (then no turn is
// taken: the replicas may be pacing themselves alone, and the caller must
// first keep to its share), "born", then for each caller the time of its
// turn (µs) or 0 for none.
//
// "born" is when the key was made (µs). Redis lost the state
// when the key is gone while the caller knows of turns still to come, or
// when it is gone or made anew since the caller's last answer, which came
// too recently for the key to have expired: a restart, a failover, a
// flush. The second finds it also when the turns the caller knew of are
// over, or when another replica reached the new Redis first.
//
// A call that does not report costs Redis three commands (TIME, HMGET,
// HSET), as redis_rate's does (TIME, GET, SET), and one write. The script
// is kept lean, since Redis runs it alone, and at 2 callers its time is
// on every caller's path (BenchmarkLimiterWaitParallel): strings become
// numbers by arithmetic (x + 0), not tonumber; numbers go to Redis as Lua
// numbers, which Redis writes itself (string.format costs a few hundred
// ns more). Redis 7.0 writes them with %.17g, exact for microseconds
// since 1970 (16 digits, below 2^53); later versions may write a round
// number in exponent form (1.8e+15), which reads back exact too: so tat is
// compared as a number (giveBackLua), never as a string. born alone is
// formatted here, once a key, since callers send it back to be compared.
//
// allow-oom: the quota must be written even when codes fill Redis under
// noeviction; a plain script's write would be refused (Redis 7.0 or
// later reads the flags).
const reserveLua = `#!lua flags=allow-oom
local key, id, memory = KEYS[1], ARGV[3], 10000000
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local st = redis.pcall('HMGET', key, 'tat', 'born', 'fleet')
if st.err then -- another type: an older version's key
  redis.call('DEL', key)
  st = {}
end
local stored, born = st[1], st[2]
local floor = ARGV[5] + 0
-- the quota's key outlives its last turn: missing while a caller knows of
-- turns still to come, or not the one the caller last heard of, Redis lost
-- it (a restart, a failover, a flush)
local lost = 0
if ((not stored) and floor > now) or (ARGV[7] ~= '0' and born ~= ARGV[7]) then
  lost = 1
end
local new = not born
if new then born = string.format('%.0f', now) end
local tat = now + ARGV[4]
if stored then
  stored = stored + 0
  if stored > tat then tat = stored end
end
if floor > tat then tat = floor end
tat = tat + ARGV[6]
-- the answer: six values, then each caller's turn; at is the time of the
-- last turn taken (tat is the time of the next turn plus the burst offset)
local interval, at = ARGV[1] + 0, tat - ARGV[2]
local got, out = 0, {0, 0, 0, now, lost, 0}
for i = 8, #ARGV do
  local h = ARGV[i] + 0
  if lost == 0 and (h < 0 or at + interval <= now + h) then
    at = at + interval
    got = got + 1
    out[i - 1] = at
  else
    out[i - 1] = 0
  end
end
tat = at + ARGV[2]
if id ~= '' then
  -- this Limiter, and those seen within memory; the others drop out
  local me = 'r:' .. id
  local all = redis.call('HGETALL', key)
  local fleet = 1
  for i = 1, #all, 2 do
    local f = all[i]
    if f ~= me and string.sub(f, 1, 2) == 'r:' then
      if all[i + 1] + 0 < now - memory then
        redis.call('HDEL', key, f)
      else
        fleet = fleet + 1
      end
    end
  end
  out[2] = fleet
  redis.call('HSET', key, 'tat', tat, 'born', born, 'fleet', fleet, me, now)
elseif new then
  redis.call('HSET', key, 'tat', tat, 'born', born)
else
  out[2] = (st[3] or 0) + 0
  redis.call('HSET', key, 'tat', tat)
end
-- The key outlives the last turn. A call with an ID sets its life (a
-- Limiter that asks sends one at least once a second); one without
-- needs to only for a new key or when turns reach further than half of
-- memory.
if new or id ~= '' or tat - now > memory / 2 then
  redis.call('PEXPIRE', key, math.floor(math.max(tat - now, memory) / 1000) + 1000)
end
out[1], out[3], out[6] = got, tat, born + 0
return out
`

// giveBackLua gives turns back to the quota when they are the last ones
// taken (tat is still what their reservation left): then nobody's turn
// depends on them. A turn that cannot be given back is lost, which keeps
// the fleet under the quota, never over it.
//
// KEYS[1], the quota; ARGV: tat after the turns, turns, interval (µs).
// tat is compared as a number (see reserveLua).
const giveBackLua = `#!lua flags=allow-oom
local tat = redis.call('HGET', KEYS[1], 'tat')
if (not tat) or tat + 0 ~= ARGV[1] + 0 then return 0 end
redis.call('HSET', KEYS[1], 'tat', tat - ARGV[2] * ARGV[3])
return 1
`

// script is a Lua script run by its digest. It is loaded (SCRIPT LOAD) as a
// command of its own before its first run and again after a NOSCRIPT (a
// restarted Redis), so that no caller's command pays for EVALSHA, NOSCRIPT
// and EVAL one after the other.
type script struct {
	src    string
	sha    string
	loaded atomic.Bool
}

func newScript(src string) *script {
	sum := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(sum[:])}
}

// timing is when the command that ran a script was sent and its answer
// received.
type timing struct{ sent, received time.Time }

// run runs the script, each command bounded by g (see command).
func (s *script) run(ctx context.Context, g *guard, rdb redis.UniversalClient, keys []string, args ...any) (any, error) {
	v, _, err := s.runTimed(ctx, g, rdb, keys, args...)
	return v, err
}

// runTimed is run, and says when the script's own command went and came
// back (not the loading or connection set-up before it).
func (s *script) runTimed(ctx context.Context, g *guard, rdb redis.UniversalClient, keys []string, args ...any) (any, timing, error) {
	for try := 0; ; try++ {
		if !s.loaded.Load() {
			if _, err := command(ctx, g, rdb, func(ctx context.Context) (string, error) {
				return rdb.ScriptLoad(ctx, s.src).Result()
			}); err != nil {
				return nil, timing{}, err
			}
			s.loaded.Store(true)
		}
		type timed struct {
			v any
			timing
		}
		res, err := command(ctx, g, rdb, func(ctx context.Context) (timed, error) {
			sent := time.Now()
			v, err := rdb.EvalSha(ctx, s.sha, keys, args...).Result()
			return timed{v, timing{sent, time.Now()}}, err
		})
		if isNoScript(err) && try == 0 {
			s.loaded.Store(false)
			continue
		}
		return res.v, res.timing, err
	}
}
