// Package wxacode calls WeChat's getUnlimitedQRCode API
// (POST /wxa/getwxacodeunlimit), which mints mini program codes without a
// limit on their number.
//
// A Client validates each Request locally against the documented rules,
// gets an access_token from a TokenSource, sends the JSON body and returns
// the image bytes, or a typed error:
//   - *ValidationError: the request breaks a documented rule; nothing was
//     sent;
//   - *APIError: the service answered {"errcode":…,"errmsg":…};
//   - *ResponseError: the answer was neither an image nor a JSON error;
//   - *TokenError: the TokenSource failed;
//   - otherwise a transport error (a *url.Error whose URL has its
//     credentials redacted), or the context's error.
//
// No error or log record ever holds an access_token or an AppSecret.
//
// The service answers JPEG by default and PNG when IsHyaline is set: treat
// the bytes as an image of any type and look at them (http.DetectContentType)
// rather than assume PNG.
package wxacode

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
)

// unlimitedPath is the path of getUnlimitedQRCode.
const unlimitedPath = "/wxa/getwxacodeunlimit"

// Client calls getUnlimitedQRCode. It is safe for concurrent use by many
// goroutines; make one and share it.
type Client struct {
	ts          TokenSource
	invalidator TokenInvalidator // ts, when it implements it
	tokenParam  string           // the query parameter of the token
	credentials []string         // what ts knows that must stay secret too
	endpoint    string           // base URL, path and query up to the token's value
	cloudRun    bool             // the open-API service adds the token: none is sent
	opts        options
	limiter     *rateLimiter             // nil: no rate limit
	lastURL     atomic.Pointer[tokenURL] // the request URL for the latest token
	jsonType    []string                 // the Content-Type header value, shared read-only
}

// NewClient returns a Client that takes access_tokens from ts. Options set
// the base URL, HTTP client, retries, rate limit and logging. A ts that
// implements TokenParamNamer chooses the query parameter its tokens go in
// (access_token by default).
func NewClient(ts TokenSource, opts ...Option) *Client {
	c := &Client{
		ts:   ts,
		opts: newOptions(opts),
	}
	c.invalidator, _ = ts.(TokenInvalidator)
	param := "access_token"
	if n, ok := ts.(TokenParamNamer); ok {
		param = n.TokenParamName()
	}
	if h, ok := ts.(interface{ credentials() []string }); ok {
		c.credentials = h.credentials()
	}
	c.init(param)
	return c
}

// init derives what every call shares: the endpoint up to the token's
// value (or the whole URL when no token is sent) and the header value.
func (c *Client) init(tokenParam string) {
	c.tokenParam = tokenParam
	var q []string
	if c.opts.fromAppID != "" {
		q = append(q, "from_appid="+url.QueryEscape(c.opts.fromAppID))
	}
	if tokenParam != "" {
		q = append(q, tokenParam+"=")
	}
	c.endpoint = c.opts.baseURL + unlimitedPath
	if len(q) > 0 {
		c.endpoint += "?" + strings.Join(q, "&")
	}
	c.jsonType = []string{"application/json"}
	c.limiter = newRateLimiter(c.opts.rateN, c.opts.ratePeriod)
}

// errNoTokenSource is returned by a Client made without a TokenSource.
var errNoTokenSource = errors.New("wxacode: Client has no TokenSource")

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
func (c *Client) GetUnlimited(ctx context.Context, r Request) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if c.opts.baseErr != nil {
		return nil, c.opts.baseErr
	}
	if c.ts == nil && !c.cloudRun {
		return nil, errNoTokenSource
	}
	var rejection error // the service's first refusal of a token
	rejectedToken := "" // the token it refused
	for attempt := 1; ; attempt++ {
		token, err := c.token(ctx)
		if err != nil {
			return nil, err
		}
		if rejection != nil && token == rejectedToken {
			// The source has nothing fresher: resending would only be
			// rejected again.
			return nil, rejection
		}
		if c.limiter != nil {
			if err := c.limiter.wait(ctx); err != nil {
				return nil, err
			}
		}
		img, err := c.post(ctx, token, &r)
		if err == nil {
			return img, nil
		}
		err = c.explain(c.redact(err, token))
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			c.log(ctx, slog.LevelWarn, "wxacode: API error", slog.Int("errcode", apiErr.Code), slog.String("rid", apiErr.RequestID()))
			if apiErr.TokenRejected() && rejection == nil {
				rejection, rejectedToken = err, token
				if c.invalidator != nil {
					c.invalidator.InvalidateToken(token)
				}
				c.log(ctx, slog.LevelDebug, "wxacode: access token rejected; fetching a fresh one", slog.Int("errcode", apiErr.Code))
				attempt-- // a token refresh is not a retry
				continue
			}
		}
		if !c.opts.shouldRetry(err, attempt) {
			return nil, err
		}
		c.log(ctx, slog.LevelDebug, "wxacode: retrying", slog.Int("attempt", attempt), slog.String("error", err.Error()))
		if werr := c.opts.wait(ctx, attempt); werr != nil {
			return nil, werr
		}
	}
}

// token returns the token for the next attempt ("" when the platform
// adds it, on Cloud Run).
func (c *Client) token(ctx context.Context) (string, error) {
	if c.ts == nil {
		return "", nil
	}
	token, err := c.ts.Token(ctx)
	if err != nil {
		return "", c.redact(&TokenError{Err: err}, "")
	}
	return token, nil
}

// redact removes token, the source's own credentials and the value of any
// credential parameter from err.
func (c *Client) redact(err error, token string) error {
	return newRedactor(c.tokenParam, append([]string{token}, c.credentials...)...).error(err)
}

func (c *Client) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if c.opts.logger != nil {
		c.opts.logger.LogAttrs(ctx, level, msg, attrs...)
	}
}
