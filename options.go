package wxacode

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-wxacode/wxacode/internal/baseurl"
)

// DefaultBaseURL is the WeChat API host that NewClient and
// NewStableTokenSource call unless WithBaseURL says otherwise.
const DefaultBaseURL = "https://api.weixin.qq.com"

// Defaults used when no Option overrides them; the option docs state them.
const (
	defaultMaxAttempts     = 3
	defaultTimeout         = 30 * time.Second
	defaultRetryBackoff    = 200 * time.Millisecond
	defaultMaxRetryBackoff = 5 * time.Second
)

// Option configures a Client (NewClient, NewCloudRunClient) or a
// StableTokenSource (NewStableTokenSource). Each option's doc says which of
// them honour it; the others ignore it, and say so there.
type Option func(*options)

// options is the configuration Options write to.
type options struct {
	baseURL     string
	httpClient  *http.Client
	maxAttempts int
	backoffMin  time.Duration
	backoffMax  time.Duration
	logger      *slog.Logger
	fromAppID   string
	limiter     Limiter // nil: no rate limit
	cache       Cache
	baseErr     error // why baseURL is unusable, if it is
}

// WithBaseURL sets the scheme and host of the API: DefaultBaseURL for
// NewClient and NewStableTokenSource, CloudRunBaseURL for
// NewCloudRunClient. Tests point it at a wxacodetest.Server or an
// httptest.Server. A trailing "/" is ignored; anything but http(s)://host
// makes every call fail with an error saying so. All constructors honour it.
func WithBaseURL(u string) Option {
	return func(o *options) { o.baseURL = strings.TrimRight(u, "/") }
}

// WithHTTPClient sets the HTTP client used for every request; its Transport
// is the place for tracing, metrics and proxies. A copy of c is used, whose
// CheckRedirect refuses every redirect (c itself is not changed): a 3xx
// answer is returned as a *ResponseError, so credentials go nowhere but the
// base URL. By default each Client and StableTokenSource gets a private
// client with a 30 s timeout and a keep-alive pool of 100 connections;
// http.DefaultClient is never used or changed. A nil c keeps the default.
// All constructors honour it.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) { o.httpClient = c }
}

// WithMaxAttempts sets how many times a call is tried when it fails in a way
// that may pass (a transport error, HTTP 5xx, errcode -1), 3 by default. 1
// means no retry; values below 1 count as 1. The one retry after a rejected
// token (40001, 40014, 42001) is not counted here. A Client counts its
// calls, a StableTokenSource its token requests.
func WithMaxAttempts(n int) Option {
	return func(o *options) { o.maxAttempts = max(n, 1) }
}

// WithRetryBackoff sets the wait before the first retry (first, 200 ms by
// default) and the cap on later ones (limit, 5 s by default). The wait
// doubles with each attempt and is jittered between half and all of it.
// Waiting ends early when the context is done. All constructors honour it.
func WithRetryBackoff(first, limit time.Duration) Option {
	return func(o *options) {
		o.backoffMin = first
		o.backoffMax = max(first, limit)
	}
}

// WithLogger sets a logger for retries, token refreshes (Debug) and API
// errors (Warn, with errcode and rid). Nothing is logged by default, and no
// token or secret is ever logged. All constructors honour it.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// newOptions applies opts over the defaults.
func newOptions(opts []Option) options {
	o := options{
		baseURL:     DefaultBaseURL,
		maxAttempts: defaultMaxAttempts,
		backoffMin:  defaultRetryBackoff,
		backoffMax:  defaultMaxRetryBackoff,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.httpClient == nil {
		o.httpClient = newDefaultHTTPClient()
	} else {
		// A copy, so the caller's client is left as it is.
		hc := *o.httpClient
		o.httpClient = &hc
	}
	// Never follow a redirect: the next host would get the token in the
	// Referer, and a 307 would re-send the AppSecret. The 3xx comes back as
	// a *ResponseError.
	o.httpClient.CheckRedirect = noRedirect
	if o.backoffMin < 0 {
		o.backoffMin = 0
	}
	o.baseErr = checkBaseURL(o.baseURL)
	return o
}

// log records a message when a logger is set.
func (o *options) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if o.logger != nil {
		o.logger.LogAttrs(ctx, level, msg, attrs...)
	}
}

// checkBaseURL refuses base URLs that are not http(s)://host.
func checkBaseURL(raw string) error {
	if err := baseurl.Check(raw); err != nil {
		return fmt.Errorf("wxacode: base URL %q: %w", raw, err)
	}
	return nil
}
