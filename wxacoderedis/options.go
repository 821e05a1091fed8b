package wxacoderedis

import (
	"log/slog"
	"time"
)

// Defaults of the options.
const (
	defaultTimeout = 250 * time.Millisecond
	defaultPause   = time.Second
)

// Option configures a Limiter (NewLimiter) or a Cache (NewCache); each
// option's doc says which honours it.
type Option func(*options)

type options struct {
	timeout  time.Duration
	pause    time.Duration
	logger   *slog.Logger
	ttl      time.Duration
	fallback fallback
}

func newOptions(opts []Option) options {
	o := options{timeout: defaultTimeout, pause: defaultPause}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithTimeout bounds each Redis command (250 ms by default); past it, the
// command counts as failed. Setting up a connection has a bound of its
// own: twice this one, and at least 500 ms. Values of zero or less keep
// the default. Both NewLimiter and NewCache honour it.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithPause sets how long Redis is left alone after a failed call (1 s by
// default). Values of zero or less keep the default. Both NewLimiter and
// NewCache honour it.
func WithPause(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.pause = d
		}
	}
}

// WithLogger logs, at Warn, when Redis stops answering and, at Info, when
// it answers again: once each, never per call; and at Error, with Redis's
// own words, when Redis refuses a command (WRONGPASS, NOPERM, OOM...), once
// per kind until it changes. Nothing is logged by default. Both NewLimiter
// and NewCache honour it.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithTTL makes the Cache keep each code for d after it is stored, for
// users who keep only hot codes in Redis; by default codes never expire (a
// code never changes). NewCache honours it; NewLimiter ignores it.
func WithTTL(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.ttl = d
		}
	}
}

// WithFallback sets what a Limiter does while Redis does not answer (or
// refuses its commands). By default each process paces itself to its
// share of the quota: n divided by the number of Limiters that Redis last
// said share it (each reports itself in every reservation; one unseen for
// 10 s drops out), so the fleet as a whole keeps to about n, at the cost
// of the share an idle replica leaves unused. A process that never reached
// Redis counts itself alone.
//
// WithFallback(n, period) paces this process to n per period instead, for
// operators who know better (a fixed number of replicas, or a share kept
// low on purpose). WithFallback(0, period), or any n or period of zero or
// less, waits for Redis: a caller waits until Redis answers or its context
// ends. That is envoy's failure_mode_deny: not one request over the quota,
// but nothing minted while Redis is out. The default, like envoy's
// failure_mode_allow with a local limit, keeps minting at the cost of a
// fleet that may send a little over n while replicas come and go.
//
// NewLimiter honours it; NewCache ignores it.
func WithFallback(n int, period time.Duration) Option {
	return func(o *options) { o.fallback = fallback{set: true, n: n, period: period} }
}
