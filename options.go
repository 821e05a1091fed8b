package wxacode

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is the WeChat API host that NewClient and
// NewStableTokenSource call unless WithBaseURL says otherwise.
const DefaultBaseURL = "https://api.weixin.qq.com"

// Defaults used when no Option overrides them.
const (
	// DefaultMaxAttempts is how many times a retryable failure is tried.
	DefaultMaxAttempts = 3
	// DefaultTimeout bounds one HTTP exchange of the default HTTP client.
	DefaultTimeout = 30 * time.Second
	// DefaultRetryBackoff is the wait before the first retry; each later
	// retry waits twice as long, up to DefaultMaxRetryBackoff, with jitter.
	DefaultRetryBackoff = 200 * time.Millisecond
	// DefaultMaxRetryBackoff caps the wait between two attempts.
	DefaultMaxRetryBackoff = 5 * time.Second
)

// Option configures a Client or a StableTokenSource. Both take the same
// options; each uses the ones that concern it.
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
	rateN       int
	ratePeriod  time.Duration
	baseErr     error // why baseURL is unusable, if it is
}

// WithBaseURL sets the scheme and host of the API, DefaultBaseURL by
// default. Tests point it at an httptest.Server or a wxacodetest.Server.
// A trailing "/" is ignored.
func WithBaseURL(u string) Option {
	return func(o *options) { o.baseURL = strings.TrimRight(u, "/") }
}

// WithHTTPClient sets the HTTP client used for every request. Its Transport
// is the place for tracing, metrics and proxies. A copy of c is used, whose
// CheckRedirect refuses every redirect (c itself is not changed): a 3xx
// answer is returned as a *ResponseError, so credentials go nowhere but the
// base URL. By default each Client and
// StableTokenSource gets a private client with a DefaultTimeout timeout and
// a keep-alive pool sized for concurrent use; http.DefaultClient is never
// used or changed. A nil c keeps the default.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) { o.httpClient = c }
}

// WithMaxAttempts sets how many times a call is tried when it fails in a way
// that may pass (a transport error, HTTP 5xx, errcode -1), DefaultMaxAttempts
// by default. 1 means no retry; values below 1 count as 1. The one retry
// after a rejected token (40001, 40014, 42001) is not counted here.
func WithMaxAttempts(n int) Option {
	return func(o *options) { o.maxAttempts = max(n, 1) }
}

// WithRetryBackoff sets the wait before the first retry (first) and the cap
// on later ones (limit), DefaultRetryBackoff and DefaultMaxRetryBackoff by
// default. The wait doubles with each attempt and is jittered between half
// and all of it. Waiting ends early when the context is done.
func WithRetryBackoff(first, limit time.Duration) Option {
	return func(o *options) {
		o.backoffMin = first
		o.backoffMax = max(first, limit)
	}
}

// WithLogger sets a logger for retries, token refreshes (Debug) and API
// errors (Warn, with errcode and rid). Nothing is logged by default, and no
// token or secret is ever logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// newOptions applies opts over the defaults.
func newOptions(opts []Option) options {
	o := options{
		baseURL:     DefaultBaseURL,
		maxAttempts: DefaultMaxAttempts,
		backoffMin:  DefaultRetryBackoff,
		backoffMax:  DefaultMaxRetryBackoff,
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

// checkBaseURL refuses base URLs that are not http(s)://host: a typo must
// not send credentials somewhere unexpected, or fail later with a confusing
// transport error.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("wxacode: base URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("wxacode: base URL %q must be http:// or https:// with a host and no query", raw)
	}
	return nil
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newDefaultHTTPClient returns a client of its own, with a transport of its
// own, so that nothing the application does to http.DefaultTransport changes
// it and nothing it does leaks out. The idle pool keeps up to 100
// connections to the one host we call: the net/http default of 2 would open
// and close connections all the time under concurrent use.
func newDefaultHTTPClient() *http.Client {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: t, Timeout: DefaultTimeout}
}
