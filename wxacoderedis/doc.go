// Package wxacoderedis lets several processes that mint codes for one mini
// program share its quota and its codes through Redis, for
// github.com/go-wxacode/wxacode:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379"})
//	client := wxacode.NewClient(ts,
//		wxacode.WithLimiter(wxacoderedis.NewLimiter(rdb, appID, 4500, time.Minute)),
//		wxacode.WithCache(wxacoderedis.NewCache(rdb, appID)))
//
// NewLimiter paces every process that shares rdb and name to n requests
// per period together, plus a burst of max(1, ceil(n/60)): the GCRA of
// github.com/go-redis/redis_rate, one Lua script run on the server's
// clock, so the replicas' clocks do not matter, and a busy replica may use
// all of the rate the idle ones leave. NewCache keeps codes so that a code
// minted by one process is served to every other without a call.
//
// # Redis is never a new way to fail
//
// Every Redis call is bounded in time by this package (250 ms by default,
// WithTimeout), whatever the go-redis options: go-redis ignores context
// deadlines on reads unless ContextTimeoutEnabled is set, and waits its
// ReadTimeout (3 s) on a server that accepted the connection and stopped
// answering. A call that fails or runs out of time makes the Limiter or
// Cache leave Redis alone for a second (WithPause), so a dead Redis costs
// a replica one bounded wait a second, not a wait per call. Meanwhile:
//   - the Limiter paces this process alone to the same n per period
//     (wxacode.NewRateLimiter), so the fleet sends at most N times the
//     rate while Redis is out, and the API answers 45009 to the excess
//     rather than nothing being minted;
//   - the Cache counts every Get as a miss and stores nothing: the Get
//     that found Redis failing returns its error (which the wxacode.Client
//     logs at Warn), the others during the pause a plain miss; every Put
//     returns an error at once (the Client logs it and still returns the
//     image).
//
// Each logs once at Warn when Redis stops answering and once at Info when
// it answers again (WithLogger); nothing is logged by default.
//
// # Keys
//
// Everything lives under keys that start with wxacode:NAME: (use the
// AppID: a code's key does not include it):
//   - wxacode:NAME:quota, the limiter's state (redis_rate's script, run on
//     this key as it is rather than behind redis_rate's own "rate:"
//     prefix), a small value that expires on its own once the bucket is
//     full again;
//   - wxacode:NAME:code:KEY, one string per code (KEY is
//     wxacode.Request.Key()), without expiry unless WithTTL says
//     otherwise.
//
// A code is about 40 KB: Redis suits the codes in use (a hot set, with
// WithTTL if they churn), not a million of them. For those, put object
// storage (S3, COS, a shared disk with wxacode.DirCache) behind
// wxacode.Cache's two methods.
//
// # Tokens
//
// No shared token store is needed: the stable_token endpoint
// (wxacode.NewStableTokenSource) gives every caller the same token while
// it is valid, so each replica's own source fetches once per token life.
// Never let callers of /cgi-bin/token share the AppID: each such call
// replaces the token for everyone, and so does a forced stable_token
// refresh.
//
// # Dependencies
//
// This module needs github.com/redis/go-redis/v9 (the client the caller
// passes in) and github.com/go-redis/redis_rate/v10 (the rate algorithm),
// and what go-redis itself needs (github.com/cespare/xxhash/v2 for cluster
// hash slots, go.uber.org/atomic and golang.org/x/sys for its connection
// pool); nothing else. The wxacode module itself needs nothing outside the
// standard library.
package wxacoderedis
