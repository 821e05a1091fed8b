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
}

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
// or the token read before while the file is missing, empty or unusable.
// With no token to serve, a missing, empty or oversized file is an error
// (and the client sends nothing).
func (s *CloudbaseTokenSource) Token(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && now.Sub(s.checkedAt) < cloudbaseRecheck {
		return s.token, nil
	}
	s.checkedAt = now
	token, fi, err := s.read()
	if err != nil {
		if s.token != "" {
			return s.token, nil // the platform is rewriting the file
		}
		return "", err
	}
	if token != s.token || !fi.ModTime().Equal(s.modTime) || fi.Size() != s.size {
		s.token, s.modTime, s.size = token, fi.ModTime(), fi.Size()
	}
	return s.token, nil
}

// read returns the token in the file, unless the file is as it was when
// the cached token was read.
func (s *CloudbaseTokenSource) read() (string, os.FileInfo, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return "", nil, fmt.Errorf("wxacode: Cloud Run token file: %w (is the WeChat token (微信令牌) enabled for this service?)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", nil, fmt.Errorf("wxacode: Cloud Run token file: %w", err)
	}
	if s.token != "" && fi.ModTime().Equal(s.modTime) && fi.Size() == s.size {
		return s.token, fi, nil
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
