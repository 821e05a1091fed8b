package wxacode

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// CloudRunBaseURL is the address of WeChat Cloud Run's (微信云托管)
// open-API service (开放接口服务) inside a container: plain HTTP, with the
// access_token added by the platform.
const CloudRunBaseURL = "http://api.weixin.qq.com"

// DefaultCloudbaseTokenPath is where Cloud Run puts the WeChat token
// (微信令牌, cloudbase_access_token) inside a container.
const DefaultCloudbaseTokenPath = "/.tencentcloudbase/wx/cloudbase_access_token"

// NewCloudRunClient returns a Client for a service on WeChat Cloud Run whose
// open-API service (开放接口服务) is enabled with /wxa/getwxacodeunlimit in
// its whitelist. It sends no access_token: the platform authenticates the
// call, so the service holds no AppSecret. It takes the options NewClient
// takes; the base URL defaults to CloudRunBaseURL, and WithFromAppID names
// the calling account for resource reuse across accounts.
//
// Errors 41001 and 85107 say in their Hint what to configure; 85113 (the
// platform's token is not ready yet) is retried like -1.
func NewCloudRunClient(opts ...Option) *Client {
	return NewClient(openAPIService{}, append([]Option{WithBaseURL(CloudRunBaseURL)}, opts...)...)
}

// openAPIService is the token source of Cloud Run's open-API service: it
// sends no token, since the platform adds one.
type openAPIService struct{}

func (openAPIService) Token(context.Context) (string, error) { return "", nil }
func (openAPIService) TokenParamName() string                { return "" }

// WithFromAppID sends from_appid=appid with each call, naming the account
// whose resources a Cloud Run service uses on behalf of another (资源复用).
// Clients honour it; NewStableTokenSource ignores it.
func WithFromAppID(appid string) Option {
	return func(o *options) { o.fromAppID = appid }
}

// CloudbaseTokenSource reads the WeChat token (微信令牌) that Cloud Run
// keeps fresh in a file inside the container, and makes the Client send it
// as cloudbase_access_token (its TokenParamName). It caches the token,
// checks at most once a second whether the file changed (size or
// modification time), and reads it again after InvalidateToken. The token
// never appears in an error.
//
// While the platform rewrites the file it may be missing, empty or
// half-written for a moment: the token read before keeps being served
// until the API rejects it (InvalidateToken). A source that has no token
// to serve returns an error, and so does a file over 4 KiB (no token is
// that long: it is not sent in a URL) or one holding spaces inside. A
// UTF-8 byte order mark and surrounding white space are not part of the
// token.
type CloudbaseTokenSource struct {
	path string
	now  func() time.Time // replaced by tests

	mu        sync.Mutex
	token     string
	modTime   time.Time
	size      int64
	checkedAt time.Time
	checking  chan struct{} // closed when the file check under way ends
	lastErr   error         // what the last check found wrong
}

// cloudbaseSettle is how long after its last change a file must stay
// unchanged before a token read from it replaces the one in service: the
// platform may be writing it still.
const cloudbaseSettle = time.Second

// cloudbaseStaleWait is how long a caller holding a token in service
// waits for a file check before it is served that token: a file on a hung
// mount, or a FIFO, never stalls it longer.
const cloudbaseStaleWait = 100 * time.Millisecond

// cloudbaseRecheck is how often the file is looked at for a change.
const cloudbaseRecheck = time.Second

// maxCloudbaseToken is the largest token file read: real tokens are a few
// hundred bytes.
const maxCloudbaseToken = 4 << 10

// NewCloudbaseTokenSource returns a source reading path, or
// DefaultCloudbaseTokenPath when path is "".
func NewCloudbaseTokenSource(path string) *CloudbaseTokenSource {
	if path == "" {
		path = DefaultCloudbaseTokenPath
	}
	return &CloudbaseTokenSource{path: path, now: time.Now}
}

// TokenParamName returns "cloudbase_access_token".
func (s *CloudbaseTokenSource) TokenParamName() string { return "cloudbase_access_token" }

// Token returns the token in the file, read again when the file changed,
// or the token read before while the file is missing, empty, unusable, or
// changed less than a second ago (being written). With no token to serve,
// a missing, empty or oversized file, or one that is not a regular file,
// is an error (and the client sends nothing).
//
// The file is read in a goroutine of its own, one read at a time, never
// with the lock held: a caller waits for it until ctx ends, or at most
// 100 ms when a token is in service (then it gets that one), so a FIFO or
// a hung mount at the path never blocks Token past its ctx.
func (s *CloudbaseTokenSource) Token(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.token != "" && s.now().Sub(s.checkedAt) < cloudbaseRecheck {
		defer s.mu.Unlock()
		return s.token, nil
	}
	if s.checking == nil {
		s.checkedAt = s.now()
		s.checking = make(chan struct{})
		go s.check(s.checking)
	}
	done, served := s.checking, s.token
	s.mu.Unlock()

	var stale <-chan time.Time
	if served != "" {
		t := time.NewTimer(cloudbaseStaleWait)
		defer t.Stop()
		stale = t.C
	}
	select {
	case <-done:
	case <-stale:
		return served, nil
	case <-ctx.Done():
		if served != "" {
			return served, nil
		}
		return "", ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" {
		return s.token, nil
	}
	return "", s.lastErr
}

// check reads the file and puts its token in service, unless the file is
// as it was, or changed less than cloudbaseSettle ago while a token is in
// service; with none in service, it lets the file settle first.
func (s *CloudbaseTokenSource) check(done chan struct{}) {
	defer close(done)
	s.mu.Lock()
	known := fileState{s.token, s.modTime, s.size}
	s.mu.Unlock()
	token, fi, err := s.read(known)
	if err == nil && known.token == "" {
		if age := time.Since(fi.ModTime()); age >= 0 && age < cloudbaseSettle { // the file's clock is the wall's
			time.Sleep(cloudbaseSettle - age)
			token, fi, err = s.read(known)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checking = nil
	switch {
	case err != nil:
		s.lastErr = err // the token in service, if any, stays
	case s.token != "" && token != s.token && time.Since(fi.ModTime()) < cloudbaseSettle:
		s.checkedAt = time.Time{} // being written: the token in service stays; look again soon
	default:
		s.token, s.modTime, s.size, s.lastErr = token, fi.ModTime(), fi.Size(), nil
	}
}

// fileState is a token and the file it was read from.
type fileState struct {
	token   string
	modTime time.Time
	size    int64
}

// read returns the token in the file, unless the file is as it was when
// known was read. A file that is not a regular file (a FIFO, a device) is
// refused before it is opened, and one that changed while it was read is
// refused as being written.
func (s *CloudbaseTokenSource) read(known fileState) (string, os.FileInfo, error) {
	before, err := os.Stat(s.path)
	if err != nil {
		return "", nil, fmt.Errorf("wxacode: Cloud Run token file: %w (is the WeChat token (微信令牌) enabled for this service?)", err)
	}
	if !before.Mode().IsRegular() {
		return "", nil, fmt.Errorf("wxacode: Cloud Run token file %s is not a regular file", s.path)
	}
	if known.token != "" && before.ModTime().Equal(known.modTime) && before.Size() == known.size {
		return known.token, before, nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return "", nil, fmt.Errorf("wxacode: Cloud Run token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", nil, fmt.Errorf("wxacode: Cloud Run token file: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCloudbaseToken+1))
	if err != nil {
		return "", nil, fmt.Errorf("wxacode: Cloud Run token file: %w", err)
	}
	if len(data) > maxCloudbaseToken {
		return "", nil, fmt.Errorf("wxacode: Cloud Run token file %s is over %d bytes: not a token", s.path, maxCloudbaseToken)
	}
	data = bytes.TrimSpace(data)
	data = bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	switch {
	case len(data) == 0:
		return "", nil, fmt.Errorf("wxacode: Cloud Run token file %s is empty", s.path)
	case bytes.ContainsAny(data, " \t\r\n"):
		return "", nil, fmt.Errorf("wxacode: Cloud Run token file %s holds more than one word: not a token", s.path)
	}
	if after, err := f.Stat(); err != nil || !after.ModTime().Equal(fi.ModTime()) || after.Size() != fi.Size() {
		return "", nil, fmt.Errorf("wxacode: Cloud Run token file %s changed while it was read", s.path)
	}
	return string(data), fi, nil
}

// InvalidateToken makes the next Token call read the file again, and
// return an error rather than token if the file has nothing else.
func (s *CloudbaseTokenSource) InvalidateToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token == s.token {
		s.token = ""
	}
}
