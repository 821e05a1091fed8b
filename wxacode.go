// Package wxacode calls WeChat's getUnlimitedQRCode API
// (POST /wxa/getwxacodeunlimit), which mints mini program codes without a
// limit on their number.
//
// A [Client] validates each [Request] locally against the documented
// rules, gets an access_token from a [TokenSource], sends the JSON body and
// returns the image bytes, or a typed error:
//   - [*ValidationError]: the request breaks a documented rule; nothing was
//     sent;
//   - [*APIError]: the service answered {"errcode":…,"errmsg":…}; its
//     [APIError.Hint] says how to fix the codes users meet most;
//   - [*ResponseError]: the answer was neither an image nor a JSON error;
//   - [*TokenError]: the TokenSource failed (not retried: a source retries
//     its own requests);
//   - [*LimiterError]: the [Limiter] failed with an error not the
//     context's (nothing was sent);
//   - otherwise a transport error (a [*url.Error] whose URL has its
//     credentials redacted), or the context's error.
//
// No error, field of an error or log record ever holds an access_token or
// an AppSecret, and no redirect is ever followed.
//
// The seams are small interfaces: [TokenSource] (with the optional
// [TokenInvalidator] and [TokenParamNamer]), [Cache] (with the optional
// [CacheReleaser]) and [Limiter]. A nil one, or one holding a nil pointer,
// is none: no cache, no limit, and a Client without a token source fails
// every call.
//
// The service answers JPEG by default and PNG when IsHyaline is set (under
// Content-Type image/jpeg all the same): treat the bytes as an image of
// any type and look at them ([ImageExt], [net/http.DetectContentType])
// rather than trust the header.
package wxacode

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"reflect"
	"sync"
)

// unlimitedPath is the path of getUnlimitedQRCode.
const unlimitedPath = "/wxa/getwxacodeunlimit"

// Client calls getUnlimitedQRCode. It is safe for concurrent use by many
// goroutines; make one and share it.
type Client struct {
	ts          TokenSource
	invalidator TokenInvalidator // ts, when it implements it
	tokenParam  string           // the query parameter of the token; "" sends none
	credentials []string         // what ts knows that must stay secret too
	opts        options

	mu      sync.Mutex             // guards flights
	flights map[string]*codeFlight // calls shared by key, with WithCache
}

// NewClient returns a Client that takes access_tokens from ts. Options set
// the base URL, HTTP client, retries, rate limit and logging. A ts with a
// TokenParamName() string method chooses the query parameter its tokens go
// in (access_token by default).
func NewClient(ts TokenSource, opts ...Option) *Client {
	c := &Client{tokenParam: "access_token", opts: newOptions(opts), flights: make(map[string]*codeFlight)}
	// One rule for the seams: a nil, or an interface holding a nil pointer
	// (func, map...), is none. No cache, no limit; no token source makes
	// every call fail, as a Client cannot call without one.
	if isNil(c.opts.cache) {
		c.opts.cache = nil
	}
	if isNil(c.opts.limiter) {
		c.opts.limiter = nil
	}
	if isNil(ts) {
		return c // every call fails with errNoTokenSource
	}
	c.ts = ts
	c.invalidator, _ = ts.(TokenInvalidator)
	if n, ok := ts.(TokenParamNamer); ok {
		c.tokenParam = n.TokenParamName()
	}
	if h, ok := ts.(interface{ credentials() []string }); ok {
		c.credentials = h.credentials()
	}
	return c
}

// isNil reports whether v is nil, or an interface holding a nil pointer,
// func or map (a common "optional dependency" pattern), whose methods
// would panic.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch v := reflect.ValueOf(v); v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Slice, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// errNoTokenSource is returned by a Client made without a TokenSource, or
// with a nil one inside the interface.
var errNoTokenSource = errors.New("wxacode: Client has no TokenSource (NewClient was given a nil one)")

// GetUnlimited mints one code for r and returns the image bytes exactly as
// the service sent them: JPEG by default, PNG when r.IsHyaline, though any
// image type is accepted, so do not assume PNG.
//
// r is validated first (*ValidationError, before any token fetch or
// request). Failures that may pass (transport errors, HTTP 5xx, errcode -1)
// are retried with exponential backoff and jitter, up to WithMaxAttempts
// attempts in all, waiting on ctx. When the service rejects the token
// (40001, 40014, 42001), the TokenSource is told (TokenInvalidator), asked
// again, and the request is sent once more if the token changed; a second
// rejection is returned as *APIError. Other API errors are returned at once.
//
// With WithCache, the code is looked up under r.Key() first (no token is
// fetched for a hit), a minted code is stored before GetUnlimited returns,
// and concurrent calls for one code share one lookup and one API call.
func (c *Client) GetUnlimited(ctx context.Context, r Request) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if c.opts.baseErr != nil {
		return nil, c.opts.baseErr
	}
	if c.ts == nil {
		return nil, errNoTokenSource
	}
	body, err := r.body()
	if err != nil {
		return nil, err
	}
	if c.opts.cache != nil {
		return c.cached(ctx, keyOf(body), body)
	}
	return c.mint(ctx, body)
}

// mint calls the API for body, retrying what may pass.
func (c *Client) mint(ctx context.Context, body []byte) ([]byte, error) {
	refreshed := false // the one token refresh a call may make
	return retry(ctx, &c.opts, "wxacode: retrying", func() ([]byte, error) {
		token, err := c.token(ctx)
		if err != nil {
			return nil, err
		}
		img, err := c.send(ctx, token, body)
		var apiErr *APIError
		if refreshed || !errors.As(err, &apiErr) || !apiErr.tokenRejected() {
			return img, err
		}
		// A token refresh is part of this attempt, not a retry.
		refreshed = true
		if c.invalidator != nil {
			c.invalidator.InvalidateToken(token)
		}
		c.opts.log(ctx, slog.LevelDebug, "wxacode: access token rejected; fetching a fresh one", slog.Int("errcode", apiErr.Code))
		fresh, ferr := c.token(ctx)
		if ferr != nil {
			return nil, ferr
		}
		if fresh == token {
			return nil, err // the source has nothing fresher: resending would be rejected again
		}
		img, err = c.send(ctx, fresh, body)
		return img, c.redact(err, token) // the answer may echo the rejected token too
	})
}

// token returns the token for the next request, as a *TokenError when the
// source fails.
func (c *Client) token(ctx context.Context) (string, error) {
	token, err := c.ts.Token(ctx)
	if err != nil {
		return "", c.redact(&TokenError{Err: err}, "")
	}
	return token, nil
}

// send waits for the rate limiter, then makes one request with token and
// returns the image or an error free of credentials; API errors are
// logged.
func (c *Client) send(ctx context.Context, token string, body []byte) ([]byte, error) {
	if l := c.opts.limiter; l != nil {
		if err := l.Wait(ctx); err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, c.redact(&LimiterError{Err: err}, token)
		}
	}
	img, err := c.post(ctx, token, body)
	err = c.redact(err, token)
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		c.opts.log(ctx, slog.LevelWarn, "wxacode: API error", slog.Int("errcode", apiErr.Code), slog.String("rid", apiErr.RequestID()))
	}
	return img, err
}

// post sends one request and sorts out the answer.
func (c *Client) post(ctx context.Context, token string, body []byte) ([]byte, error) {
	u, sep := c.opts.baseURL+unlimitedPath, "?"
	if c.opts.fromAppID != "" {
		u, sep = u+sep+"from_appid="+url.QueryEscape(c.opts.fromAppID), "&"
	}
	if c.tokenParam != "" {
		u += sep + c.tokenParam + "=" + url.QueryEscape(token)
	}
	resp, err := c.opts.postJSON(ctx, u, body)
	if err != nil {
		return nil, err
	}
	return parseImageResponse(resp) // closes the body
}

// redact removes token, the source's own credentials and the value of any
// credential parameter from err.
func (c *Client) redact(err error, token string) error {
	if err == nil {
		return nil
	}
	return newRedactor(c.tokenParam, append([]string{token}, c.credentials...)...).error(err)
}
