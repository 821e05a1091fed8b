package wxacoderedis

import (
	"context"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/internal/wait"
	"github.com/redis/go-redis/v9"
)

// Limiter is a wxacode.Limiter shared by every process that uses the same
// Redis and name. It is safe for concurrent use.
type Limiter struct {
	rl    *redis_rate.Limiter
	key   string
	limit redis_rate.Limit
	local wxacode.Limiter // this process alone, while Redis is out
	guard *guard
}

// NewLimiter returns a Limiter that every process sharing rdb and name
// draws from: together they send at most n requests per period, plus a
// burst of max(1, ceil(n/60)), the burst wxacode.WithRateLimit allows. Use
// the AppID as name: the API's quota (5000 calls a minute) is per mini
// program. While Redis does not answer, the Limiter paces this process
// alone to n per period (see the package doc). n <= 0 or period <= 0
// means no limit.
//
// It honours WithTimeout, WithPause and WithLogger.
func NewLimiter(rdb redis.UniversalClient, name string, n int, period time.Duration, opts ...Option) *Limiter {
	o := newOptions(opts)
	l := &Limiter{
		rl:    redis_rate.NewLimiter(ownKeys{rdb}),
		key:   "wxacode:" + name + ":quota",
		local: wxacode.NewRateLimiter(n, period),
		guard: newGuard("limiter", o),
	}
	if n > 0 && period > 0 {
		l.limit = redis_rate.Limit{Rate: n, Period: period, Burst: max(1, (n+59)/60)}
	}
	return l
}

// ownKeys runs redis_rate's script on the key it was given as it is:
// redis_rate puts "rate:" before every key, and this package's keys all
// start with "wxacode:" (see the package doc). It changes nothing else.
type ownKeys struct{ redis.UniversalClient }

// rateKeyPrefix is what redis_rate puts before a key.
const rateKeyPrefix = "rate:"

func unprefix(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.TrimPrefix(k, rateKeyPrefix)
	}
	return out
}

func (o ownKeys) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return o.UniversalClient.Eval(ctx, script, unprefix(keys), args...)
}

func (o ownKeys) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return o.UniversalClient.EvalSha(ctx, sha1, unprefix(keys), args...)
}

func (o ownKeys) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return o.UniversalClient.EvalRO(ctx, script, unprefix(keys), args...)
}

func (o ownKeys) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return o.UniversalClient.EvalShaRO(ctx, sha1, unprefix(keys), args...)
}

func (o ownKeys) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return o.UniversalClient.Del(ctx, unprefix(keys)...)
}

// maxPoll bounds one wait between two asks: another process may give a
// turn back sooner than redis_rate's RetryAfter says (it never does today,
// but a clock jump on the server might).
const maxPoll = time.Second

// Wait blocks until this process may send a request, or ctx ends (then
// ctx's error). A Redis failure never reaches the caller: the local limit
// takes over.
func (l *Limiter) Wait(ctx context.Context) error {
	if l.limit.IsZero() {
		return ctx.Err()
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if l.guard.paused() {
			return l.local.Wait(ctx)
		}
		res, err := call(ctx, l.guard, func(ctx context.Context) (*redis_rate.Result, error) {
			return l.rl.Allow(ctx, l.key, l.limit)
		})
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return l.local.Wait(ctx)
		}
		if res.Allowed > 0 {
			return nil
		}
		if err := wait.For(ctx, min(max(res.RetryAfter, time.Millisecond), maxPoll)); err != nil {
			return err
		}
	}
}
