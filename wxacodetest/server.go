package wxacodetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// Server is a fake WeChat API listening on a loopback address.
type Server struct {
	// URL is the base URL of the fake, such as http://127.0.0.1:41234: pass
	// it to wxacode.WithBaseURL.
	URL string

	httpServer *httptest.Server
	cfg        config
	images     *imageCache

	mu            sync.Mutex
	offset        time.Duration      // added to the wall clock by Advance
	tokens        map[string]*issued // every token issued, by value
	stable        string             // the current stable token
	lastForced    time.Time
	forcedToday   []time.Time
	tokenRequests int
	requests      []Request
	window        []time.Time // getwxacodeunlimit calls in the last minute, oldest first
	failures      []int       // errcodes queued by FailNext
	ridSeq        uint64
	calls         int // getwxacodeunlimit calls so far
	conns         int // TCP connections accepted
}

// issued is one access_token the fake handed out.
type issued struct {
	value     string
	expiresAt time.Time
	stable    bool // from stable_token
}

// Request is one recorded getwxacodeunlimit call: the decoded JSON fields
// (with the API's defaults filled in for the ones not sent), the token it
// carried, and how the fake answered.
type Request struct {
	Scene      string `json:"scene"`
	Page       string `json:"page"`
	CheckPath  bool   `json:"check_path"`  // true unless the body sent check_path:false
	EnvVersion string `json:"env_version"` // "release" unless sent
	Width      int    `json:"width"`       // 430 unless sent
	AutoColor  bool   `json:"auto_color"`
	LineColor  Color  `json:"line_color"`
	IsHyaline  bool   `json:"is_hyaline"`

	// Fields lists the JSON fields the body sent, in the order sent.
	Fields []string `json:"fields"`
	// Token is the access_token query parameter ("" when absent), or
	// cloudbase_access_token with WithCloudbaseTokens.
	Token string `json:"token,omitempty"`
	// FromAppID is the from_appid query parameter (Cloud Run resource
	// reuse), "" when absent.
	FromAppID string `json:"from_appid,omitempty"`
	// Query is the whole query string as received.
	Query string `json:"query,omitempty"`
	// Time is the fake's clock when the call arrived.
	Time time.Time `json:"time"`
	// ErrCode is the errcode answered, 0 for an image.
	ErrCode int `json:"errcode"`
}

// Color is an RGB colour as decoded from line_color, encoded as the API
// writes it ({"r":0,"g":0,"b":0}).
type Color struct {
	R uint8 `json:"r"`
	G uint8 `json:"g"`
	B uint8 `json:"b"`
}

// ServerOption configures a Server.
type ServerOption func(*config)

type config struct {
	appID, secret   string
	published       map[string]bool // nil: every well-formed page
	ratePerMinute   int
	expiresIn       time.Duration
	latency         time.Duration
	errContentType  string
	tidyPNG         bool // PNG bodies under image/png
	acceptNoToken   bool
	cloudbaseTokens bool
	failEvery       int
	failEveryCode   int
	listener        net.Listener                    // nil: a new one on a loopback port
	middleware      func(http.Handler) http.Handler // nil: none
}

// DefaultExpiresIn is the life of issued tokens unless WithExpiresIn says
// otherwise.
const DefaultExpiresIn = 7200 * time.Second

// Defaults of a new Server that tests need not name.
const (
	defaultAppID       = "wx0000000000fake01"
	defaultMinuteQuota = 5000
	jsonContentType    = "application/json; encoding=utf-8" // of error answers
)

// WithCredentials sets the AppID and AppSecret the token endpoints accept.
// By default the AppID is wx0000000000fake01 and the secret is random; an
// empty appID or secret keeps its default.
func WithCredentials(appID, secret string) ServerOption {
	return func(c *config) {
		if appID != "" {
			c.appID = appID
		}
		if secret != "" {
			c.secret = secret
		}
	}
}

// WithPublishedPages sets the pages of the "published release": with
// check_path true (the default), any other page answers 41030. Without this
// option every well-formed page counts as published.
func WithPublishedPages(pages ...string) ServerOption {
	return func(c *config) {
		c.published = make(map[string]bool, len(pages))
		for _, p := range pages {
			c.published[p] = true
		}
	}
}

// WithMinuteQuota sets how many getwxacodeunlimit calls a sliding minute
// allows before answering 45009: the service's quota, 5000 by default as
// the API documents. n <= 0 means no quota. (wxacode.WithRateLimit is the
// client's own limiter.)
func WithMinuteQuota(n int) ServerOption {
	return func(c *config) { c.ratePerMinute = n }
}

// WithExpiresIn sets the life of issued tokens (DefaultExpiresIn by
// default).
func WithExpiresIn(d time.Duration) ServerOption {
	return func(c *config) { c.expiresIn = d }
}

// WithLatency delays every answer by d of real time (ended early when the
// client hangs up), to exercise timeouts and concurrency.
func WithLatency(d time.Duration) ServerOption {
	return func(c *config) { c.latency = d }
}

// WithFailEvery makes every n-th getwxacodeunlimit call (the n-th, 2n-th,
// …) answer errcode, for load tests with a steady rate of faults: n = 100
// and errcode -1 fails 1% of calls.
func WithFailEvery(n, errcode int) ServerOption {
	return func(c *config) { c.failEvery, c.failEveryCode = n, errcode }
}

// WithOpenAPIService makes the fake act as Cloud Run's open-API service
// (开放接口服务): getwxacodeunlimit calls without a token are accepted, as
// the platform adds one. Calls with a token are still checked.
func WithOpenAPIService() ServerOption {
	return func(c *config) { c.acceptNoToken = true }
}

// WithCloudbaseTokens makes getwxacodeunlimit read its token from the
// cloudbase_access_token parameter (Cloud Run's WeChat token, 微信令牌)
// instead of access_token. The fake's own tokens (Token) are valid there.
func WithCloudbaseTokens() ServerOption {
	return func(c *config) { c.cloudbaseTokens = true }
}

// WithTidyContentTypes sends transparent (is_hyaline) codes under
// Content-Type "image/png". By default the fake does what the service
// does: a PNG body under "image/jpeg", so that a client that trusts the
// header names the file wrongly in tests too.
func WithTidyContentTypes() ServerOption {
	return func(c *config) { c.tidyPNG = true }
}

// WithTextPlainErrors sends JSON errors with Content-Type "text/plain", as
// older deployments of the service did.
func WithTextPlainErrors() ServerOption {
	return func(c *config) { c.errContentType = "text/plain" }
}

// WithListener makes the fake serve on l instead of a new loopback port, so
// that it can be reached at an address chosen in advance (the wxacode
// fake command serves on -addr). The Server takes l over: Close closes it.
// URL is built from l's address, with 127.0.0.1 for an unspecified host
// (":0" listens on every interface; the URL is the loopback one).
func WithListener(l net.Listener) ServerOption {
	return func(c *config) { c.listener = l }
}

// WithMiddleware wraps every request the fake serves in mw, which gets the
// fake's own handler: to log requests, or to answer paths of its own that
// the real API never uses (the wxacode fake command's /wxacodetest/
// control endpoints). mw must call the handler it is given for the API's
// paths.
func WithMiddleware(mw func(http.Handler) http.Handler) ServerOption {
	return func(c *config) { c.middleware = mw }
}

// NewServer starts a fake on a loopback address. Close it when done.
func NewServer(opts ...ServerOption) *Server {
	cfg := config{
		appID:          defaultAppID,
		secret:         randomHex(16),
		ratePerMinute:  defaultMinuteQuota,
		expiresIn:      DefaultExpiresIn,
		errContentType: jsonContentType,
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	s := &Server{
		cfg:    cfg,
		images: newImageCache(),
		tokens: make(map[string]*issued),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/token", s.handleToken)
	mux.HandleFunc("POST /cgi-bin/stable_token", s.handleStableToken)
	mux.HandleFunc("POST /wxa/getwxacodeunlimit", s.handleUnlimited)
	var h http.Handler = s.withLatency(mux)
	if cfg.middleware != nil {
		h = cfg.middleware(h)
	}
	s.httpServer = httptest.NewUnstartedServer(h)
	if cfg.listener != nil {
		_ = s.httpServer.Listener.Close()
		s.httpServer.Listener = cfg.listener
	}
	s.httpServer.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}
	s.httpServer.Start()
	s.URL = s.httpServer.URL
	if tcp, ok := s.httpServer.Listener.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		s.URL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	return s
}

// Close shuts the server down and waits for calls in flight.
func (s *Server) Close() { s.httpServer.Close() }

// Client returns an *http.Client for the server (its own transport).
func (s *Server) Client() *http.Client { return s.httpServer.Client() }

// AppID returns the AppID the token endpoints accept.
func (s *Server) AppID() string { return s.cfg.appID }

// AppSecret returns the AppSecret the token endpoints accept.
func (s *Server) AppSecret() string { return s.cfg.secret }

// Token returns a currently valid access_token (the stable one, issued now
// if needed), for wxacode.StaticToken. It is not counted in TokenRequests.
func (s *Server) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stableTokenLocked(false).value
}

// Requests returns the recorded getwxacodeunlimit calls, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// ForgetRequests drops the recorded getwxacodeunlimit calls: Requests then
// holds only the calls that come after.
func (s *Server) ForgetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// TokenRequests returns how many requests reached the token endpoints
// (cgi-bin/token and cgi-bin/stable_token), answered with a token or not.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// Conns returns how many TCP connections the server has accepted, to check
// that a client reuses its connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// FailNext makes the next n getwxacodeunlimit calls answer errcode, before
// any other check, with the service's message for it. Calls queue up:
// FailNext(2, -1) then FailNext(1, 45009) fails three calls.
func (s *Server) FailNext(n int, errcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, errcode)
	}
}

// ForgetFailures drops the calls FailNext queued and not yet answered.
func (s *Server) ForgetFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = nil
}

// ExpireTokens makes every token issued so far answer 42001 (expired). The
// token endpoints then issue new ones.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	for _, t := range s.tokens {
		if t.expiresAt.After(now) {
			t.expiresAt = now
		}
	}
}

// Advance moves the fake's clock forward by d: tokens get older and
// rate-limit windows pass. The clock's lead over the wall clock stops at
// the largest time.Duration (about 292 years) rather than wrap around.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case d > 0 && s.offset > math.MaxInt64-d:
		s.offset = math.MaxInt64
	case d < 0 && s.offset < math.MinInt64-d:
		s.offset = math.MinInt64
	default:
		s.offset += d
	}
}

// Now returns the fake's clock: the wall clock plus what Advance added.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Server) nowLocked() time.Time { return time.Now().Add(s.offset) }

// withLatency wraps h with the configured delay.
func (s *Server) withLatency(h http.Handler) http.Handler {
	if s.cfg.latency <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: net/http notices a client hanging up only
		// once the body has been read.
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		t := time.NewTimer(s.cfg.latency)
		defer t.Stop()
		select {
		case <-t.C:
			h.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	})
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
