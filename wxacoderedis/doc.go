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
// per period together, plus a burst of max(1, ceil(n/60)); a busy replica
// may use all of the rate the idle ones leave. NewCache keeps codes so that
// a code minted by one process is served to every other without a call,
// and is minted once in the fleet even when several processes miss it at
// the same moment (a lease, see NewCache).
//
// Redis 7.0 or later is needed: the quota's script declares
// "#!lua flags=allow-oom", so that the quota is kept even when codes fill
// Redis.
//
// # One round trip a grant
//
// Wait reserves a turn on Redis's clock in one script call and then sleeps
// in its own process until that turn, as x/time/rate's Reserve does in one
// process: waiting callers never poll Redis, and callers waiting together
// share one call (at most two are in flight per Limiter). The script is
// this package's own (a GCRA, as github.com/go-redis/redis_rate runs, but
// redis_rate can only allow or refuse a request now, and a refused caller
// must ask again: at 800 waiting callers that was 900 commands a grant).
// Each process maps Redis's clock to its own from the round trip with the
// shortest time, NTP-style, so replicas on other hosts keep to the same
// turns. A caller whose context ends while it sleeps gives its turn back
// when no later turn was taken, else the next caller of its process uses
// it; a caller whose deadline comes before any turn it could have takes
// none. A caller woken late (a collector pause, a busy machine) gives its
// turn up once and takes another, rather than send together with the
// next turn.
//
// # When Redis is slow, full or out
//
// Each command is bounded in time by this package (250 ms by default,
// WithTimeout), whatever the go-redis options: go-redis ignores context
// deadlines on reads unless ContextTimeoutEnabled is set, and waits its
// ReadTimeout (3 s) on a server that accepted the connection and stopped
// answering. Setting up a connection (dialling, HELLO, AUTH, CLIENT
// SETINFO: several round trips) has a bound of its own, twice the
// command's and at least 500 ms, and the script is loaded (SCRIPT LOAD) as
// a command of its own: a slow Redis is not taken for a dead one. The
// Cache keeps at most 8 commands in flight, so that a thousand callers
// missing at once do not queue for connections inside their bound.
// Without ContextTimeoutEnabled each command runs in another goroutine,
// which the caller stops waiting for at the bound: one the Limiter or
// Cache keeps for its next commands (its stack already grown to hold
// go-redis's calls) and lets end after 5 s without one; a command that
// hangs holds its goroutine alone. With ContextTimeoutEnabled (on a
// *redis.Client, *redis.ClusterClient or *redis.Ring), go-redis ends the
// command at the bound itself and it runs in the caller's goroutine, which
// saves the hand-over (BenchmarkLimiterWaitDeadlines).
//
// A command that fails or runs out of time leaves Redis alone for a second
// (WithPause); then one caller at a time tries it again (the limiter in
// the background). Meanwhile:
//   - the Limiter paces this process to its share of n: n divided by the
//     number of Limiters Redis last said share the quota (each reports
//     itself at most once a second, and every answer carries the count;
//     one unseen for 10 s drops out), after
//     the last turn of the fleet's it heard of, since those turns are
//     still taken. When Redis answers again the share still applies, on
//     top of Redis's turns, for a pause and a period: the other replicas
//     may not know yet, and what they granted alone Redis never heard of.
//     WithFallback sets another policy: a fixed limit, or waiting for
//     Redis (fail closed). A Redis that lost the quota's state (a restart
//     without persistence, a failover, a flush) is noticed by every
//     Limiter whose last answer is too recent for the key to have expired,
//     also when another replica made the key anew first (the key records
//     when it was made), and the same share and grace apply;
//   - the Cache counts every Get as a miss and stores nothing: the Get
//     that found Redis failing returns its error (which the wxacode.Client
//     logs at Warn), the others a plain miss; every Put fails at once (the
//     Client logs it and still returns the image).
//
// A write refused because Redis is full (OOM, under the default
// maxmemory-policy noeviction) is not an outage: the Cache's Put fails and
// is logged once, Gets go on, and the limiter's script still writes.
//
// # Logs
//
// With WithLogger, no answer is logged once at Warn ("Redis is not
// answering") and the answer after it once at Info; an answer that refuses
// a command (WRONGPASS, NOAUTH, NOPERM, OOM, a script's ERR) is logged at
// Error with Redis's own words, once per kind until it changes, so a wrong
// password is the first line. Nothing is logged by default.
//
// # Keys
//
// Everything lives under keys that start with wxacode:NAME: (use the
// AppID: a code's key does not include it):
//   - wxacode:NAME:quota, a hash: the quota's state ("tat", "born") and
//     the Limiters sharing it ("r:ID", counted in "fleet"); it expires on
//     its own once idle. One
//     key, so the script stays in one slot of a Redis Cluster;
//   - wxacode:NAME:code:KEY, one string per code (KEY is
//     wxacode.Request.Key()), without expiry unless WithTTL says
//     otherwise;
//   - wxacode:NAME:lease:KEY, a process minting the code (10 s at most).
//
// A code is about 40 KB: Redis suits the codes in use (a hot set, with
// WithTTL if they churn), not a million of them. For those, put object
// storage (S3, COS, a shared disk with wxacode.DirCache) behind
// wxacode.Cache's two methods. Run the cache on a Redis of its own, or
// with maxmemory-policy allkeys-lru, so that codes make room for each
// other rather than fill Redis.
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
// passes in) and what go-redis itself needs (github.com/cespare/xxhash/v2
// for cluster hash slots, go.uber.org/atomic and golang.org/x/sys for its
// connection pool); nothing else. github.com/go-redis/redis_rate is no
// longer needed: its script cannot reserve a turn (see above). The wxacode
// module itself needs nothing outside the standard library.
package wxacoderedis
