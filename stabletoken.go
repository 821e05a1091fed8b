package wxacode

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the stable_token endpoint and how StableTokenSource keeps within
// them.
const (
	// maxRefreshMargin is how long before expiry a token is refreshed. The
	// service hands out a new token in the last 5 minutes of the old one's
	// life, and keeps both valid meanwhile.
	maxRefreshMargin = 5 * time.Minute
	// forceRefreshInterval: forced refreshes closer together are ignored by
	// the service.
	forceRefreshInterval = 30 * time.Second
	// maxForcedPerDay is how many forced refreshes one source makes in 24
	// hours: half of the service's 20 a day, leaving the rest to other
	// processes and people sharing the AppID.
	maxForcedPerDay = 10
	// refreshTimeout bounds one refresh, retries included. A refresh runs
	// detached from the caller whose Token call started it, since other
	// callers wait for its result.
	refreshTimeout = 2 * time.Minute
	// refreshRetryPause is how long a cached token is served without
	// asking again after a refresh failed.
	refreshRetryPause = 30 * time.Second
)

// StableTokenSource fetches access_tokens from the stable_token endpoint
// (getStableAccessToken) and caches them. It is safe for concurrent use:
// however many goroutines ask at once, one request at a time goes to the
// token endpoint and they all share its answer.
//
// A token is refreshed a margin before it expires: 5 minutes, or a fifth of
// expires_in when that is shorter (near the service's rotation it answers
// expires_in as low as 300 s). If a refresh fails while the cached token is
// still valid, the cached token keeps being served.
//
// After InvalidateToken the next call fetches again with force_refresh false;
// only if the service answers the very token that was rejected does it ask
// once more with force_refresh true, at most once per 30 s and 10 times a
// day, because the service allows about 20 forced refreshes a day.
type StableTokenSource struct {
	appID    string
	secret   string
	endpoint string
	opts     options
	now      func() time.Time // replaced by tests

	cur atomic.Pointer[cachedToken] // read without locking on the hot path

	mu       sync.Mutex // guards the fields below
	flight   *tokenFlight
	rejected string      // a token the API refused, until a fresh one comes
	forced   []time.Time // forced refreshes in the last 24 hours
}

// cachedToken is an access_token and when to stop serving it.
type cachedToken struct {
	value     string
	refreshAt time.Time // fetch a new one from here on
	expiresAt time.Time // the service stops accepting it here
	life      time.Duration
}

// tokenFlight is one refresh that callers wait for.
type tokenFlight struct {
	done  chan struct{}
	value string
	err   error
}

// NewStableTokenSource returns a StableTokenSource for the mini program's
// AppID and AppSecret. It honours WithBaseURL, WithHTTPClient,
// WithMaxAttempts, WithRetryBackoff and WithLogger, and ignores the options
// that only concern calls to getwxacodeunlimit (WithRateLimit,
// WithFromAppID, WithCache). The secret is sent only in the body of the
// token request and never appears in an error or a log record.
func NewStableTokenSource(appID, appSecret string, opts ...Option) *StableTokenSource {
	o := newOptions(opts)
	if o.logger != nil {
		o.logger = o.logger.With(slog.String("appid", appID))
	}
	return &StableTokenSource{
		appID:    appID,
		secret:   appSecret,
		endpoint: o.baseURL + "/cgi-bin/stable_token",
		opts:     o,
		now:      time.Now,
	}
}

// Token returns the cached access_token while it has not expired, or
// fetches one. Inside the refresh margin it still returns the cached token
// at once and starts a refresh in the background (one at a time); only a
// caller with no unexpired token to be given waits for a fetch. Errors from
// the token endpoint are *APIError (for example 40125, a wrong secret) or
// *ResponseError; an error of ctx is returned when ctx ends first.
func (s *StableTokenSource) Token(ctx context.Context) (string, error) {
	if s.opts.baseErr != nil {
		return "", s.opts.baseErr
	}
	now := s.now()
	if t := s.cur.Load(); t != nil && now.Before(t.refreshAt) {
		return t.value, nil
	}
	s.mu.Lock()
	f := s.flight
	if f == nil {
		if t := s.cur.Load(); t != nil && now.Before(t.refreshAt) {
			s.mu.Unlock()
			return t.value, nil
		}
		f = &tokenFlight{done: make(chan struct{})}
		s.flight = f
		// Detached from ctx (values kept): the callers that join this
		// flight must not fail because the first one gave up.
		go s.refresh(context.WithoutCancel(ctx), f)
	}
	s.mu.Unlock()
	if t := s.cur.Load(); t != nil && now.Before(t.expiresAt) {
		return t.value, nil // still valid: never withheld while a refresh runs
	}
	select {
	case <-f.done:
		return f.value, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// InvalidateToken tells s that the API rejected token. If it is the cached
// token, the next Token call fetches a new one. A token already replaced is
// ignored, so many goroutines reporting the same rejection cause one fetch.
func (s *StableTokenSource) InvalidateToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.cur.Load(); t != nil && t.value == token {
		s.cur.Store(nil)
		s.rejected = token
	}
}

// refresh runs one flight: it fetches a token, stores it and wakes the
// waiters.
func (s *StableTokenSource) refresh(ctx context.Context, f *tokenFlight) {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()

	s.mu.Lock()
	rejected := s.rejected
	s.mu.Unlock()

	t, err := s.fetch(ctx, false)
	if err == nil && rejected != "" && t.value == rejected {
		if s.allowForce() {
			t, err = s.fetch(ctx, true)
		} else {
			s.opts.log(ctx, slog.LevelWarn, "wxacode: stable_token returned the rejected token; forced refresh not allowed yet")
		}
	}

	s.mu.Lock()
	if err == nil {
		s.cur.Store(t)
		if t.value != rejected {
			s.rejected = ""
		}
		f.value = t.value
	} else if old := s.cur.Load(); old != nil && s.now().Before(old.expiresAt) {
		// The cached token still works: serve it, and try again after a
		// pause rather than make every caller wait for a failing endpoint.
		s.opts.log(ctx, slog.LevelWarn, "wxacode: token refresh failed; serving the cached token until it expires", slog.String("error", err.Error()))
		retryAt := s.now().Add(refreshRetryPause)
		if retryAt.After(old.expiresAt) {
			retryAt = old.expiresAt
		}
		s.cur.Store(&cachedToken{value: old.value, refreshAt: retryAt, expiresAt: old.expiresAt, life: old.life})
		f.value = old.value
	} else {
		f.err = err
	}
	s.flight = nil
	s.mu.Unlock()
	close(f.done)
}

// allowForce reports whether a forced refresh is within the limits, and
// records it if so.
func (s *StableTokenSource) allowForce() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	kept := s.forced[:0]
	for _, at := range s.forced {
		if now.Sub(at) < 24*time.Hour {
			kept = append(kept, at)
		}
	}
	s.forced = kept
	if len(kept) >= maxForcedPerDay || (len(kept) > 0 && now.Sub(kept[len(kept)-1]) < forceRefreshInterval) {
		return false
	}
	s.forced = append(s.forced, now)
	return true
}

// stableTokenRequest is the body of POST /cgi-bin/stable_token.
type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// stableTokenResponse is its answer, a token or an error.
type stableTokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	errorBody
}

// fetch asks the endpoint for a token, retrying what may pass.
func (s *StableTokenSource) fetch(ctx context.Context, force bool) (*cachedToken, error) {
	body, err := json.Marshal(stableTokenRequest{GrantType: "client_credential", AppID: s.appID, Secret: s.secret, ForceRefresh: force})
	if err != nil {
		return nil, err
	}
	t, err := retry(ctx, &s.opts, "wxacode: retrying token request", func() (*cachedToken, error) {
		t, err := s.fetchOnce(ctx, body)
		if err != nil {
			return nil, newRedactor("", s.secret).error(err)
		}
		return t, nil
	})
	if err != nil {
		s.opts.log(ctx, slog.LevelWarn, "wxacode: access token refresh failed", slog.String("error", err.Error()))
		return nil, err
	}
	s.opts.log(ctx, slog.LevelDebug, "wxacode: access token refreshed", slog.Bool("force_refresh", force), slog.Duration("expires_in", t.life))
	return t, nil
}

// fetchOnce makes one token request.
func (s *StableTokenSource) fetchOnce(ctx context.Context, body []byte) (*cachedToken, error) {
	resp, err := s.opts.postJSON(ctx, s.endpoint, body)
	if err != nil {
		return nil, err
	}
	ct := resp.Header.Get("Content-Type")
	if isRedirect(resp.StatusCode) {
		discard(resp.Body)
		return nil, redirectError(resp)
	}
	data, err := readBody(resp, maxJSONBytes) // closes the body
	if err != nil {
		return nil, err
	}
	fail := func(reason string) error {
		return &ResponseError{StatusCode: resp.StatusCode, ContentType: ct, Reason: reason, Body: errorSnippet(data)}
	}
	var out stableTokenResponse
	jsonErr := json.Unmarshal(trimJSON(data), &out)
	if apiErr, ok := out.apiError(); jsonErr == nil && ok && apiErr.Code != 0 {
		return nil, apiErr
	}
	switch {
	case resp.StatusCode/100 != 2:
		// Whatever the body (a proxy's HTML page, say), the status is
		// what went wrong.
		return nil, fail("token request failed with HTTP status " + strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode))
	case jsonErr != nil:
		return nil, fail("token response is not JSON")
	case out.AccessToken == "":
		return nil, fail("token response has no access_token")
	case out.ExpiresIn <= 0:
		return nil, fail("token response has no positive expires_in")
	}
	// A life beyond a day is no real token's; capping it keeps the
	// Duration from overflowing (which would refetch on every call).
	life := time.Duration(min(out.ExpiresIn, maxTokenLife)) * time.Second
	now := s.now()
	return &cachedToken{value: out.AccessToken, refreshAt: now.Add(life - refreshMargin(life)), expiresAt: now.Add(life), life: life}, nil
}

// maxTokenLife caps expires_in, in seconds: 24 hours.
const maxTokenLife = 24 * 60 * 60

// credentials returns what a Client using s must also keep out of its
// errors: a service may echo the AppSecret anywhere.
func (s *StableTokenSource) credentials() []string { return []string{s.secret} }

// refreshMargin is how long before the end of life a token is refreshed:
// 5 minutes, but never more than a fifth of its life, so a token handed out
// with expires_in 300 is used for 4 minutes rather than refetched on every
// call.
func refreshMargin(life time.Duration) time.Duration {
	return min(maxRefreshMargin, life/5)
}
