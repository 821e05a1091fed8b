package wxacode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// Guidance added to errors whose cause on Cloud Run is known.
const (
	hintOpenAPIDisabled = "Cloud Run: enable the open-API service (开放接口服务) for this service and redeploy a new version; until then the platform adds no token"
	hintNotWhitelisted  = "Cloud Run: add /wxa/getwxacodeunlimit to the open-API service's whitelist (API 权限) and redeploy"
	hint502             = "Cloud Run: the open-API service answers 502 for paths not in its whitelist: check that /wxa/getwxacodeunlimit is listed"
)

// NewCloudRunClient returns a Client for a service on WeChat Cloud Run whose
// open-API service (开放接口服务) is enabled with /wxa/getwxacodeunlimit in
// its whitelist. It sends no access_token: the platform authenticates the
// call, so the service holds no AppSecret. The base URL defaults to
// CloudRunBaseURL; WithBaseURL must name an http:// or https:// host (any
// other is refused with an error on every call). WithFromAppID names the
// calling account for resource reuse across accounts.
//
// Errors 41001 and 85107 come back with a Hint saying what to configure;
// 85113 (the platform's token is not ready yet) is retried like -1.
func NewCloudRunClient(opts ...Option) *Client {
	c := &Client{
		opts:     newOptions(append([]Option{WithBaseURL(CloudRunBaseURL)}, opts...)),
		cloudRun: true,
	}
	c.init("")
	return c
}

// WithFromAppID sends from_appid=appid with each call, naming the account
// whose resources a Cloud Run service uses on behalf of another (资源复用).
func WithFromAppID(appid string) Option {
	return func(o *options) { o.fromAppID = appid }
}

// explain adds Cloud Run guidance to errors whose cause is known there.
func (c *Client) explain(err error) error {
	if !c.cloudRun {
		return err
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch apiErr.Code {
		case CodeAccessTokenMissing:
			apiErr.Hint = hintOpenAPIDisabled
		case CodeNotInWhitelist:
			apiErr.Hint = hintNotWhitelisted
		}
	}
	var respErr *ResponseError
	if errors.As(err, &respErr) && respErr.StatusCode == 502 {
		respErr.Hint = hint502
	}
	return err
}

// TokenParamNamer is implemented by a TokenSource whose tokens go in a
// query parameter other than access_token; NewClient then uses that name.
type TokenParamNamer interface {
	TokenParamName() string
}

// CloudbaseTokenSource reads the WeChat token (微信令牌) that Cloud Run
// keeps fresh in a file inside the container, and makes the Client send it
// as cloudbase_access_token. It caches the token, checks at most once a
// second whether the file changed (size or modification time), and reads it
// again after InvalidateToken. The token never appears in an error.
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

// Token returns the token in the file, read again when the file changed. A
// missing or empty file is an error (and the client sends nothing).
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
	fi, err := os.Stat(s.path)
	if err != nil {
		return "", fmt.Errorf("wxacode: Cloud Run token file: %w (is the WeChat token (微信令牌) enabled for this service?)", err)
	}
	s.checkedAt = now
	if s.token != "" && fi.ModTime().Equal(s.modTime) && fi.Size() == s.size {
		return s.token, nil
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return "", fmt.Errorf("wxacode: Cloud Run token file: %w", err)
	}
	token := string(bytes.TrimSpace(data))
	if token == "" {
		s.token = ""
		return "", fmt.Errorf("wxacode: Cloud Run token file %s is empty", s.path)
	}
	s.token, s.modTime, s.size = token, fi.ModTime(), fi.Size()
	return token, nil
}

// InvalidateToken makes the next Token call read the file again.
func (s *CloudbaseTokenSource) InvalidateToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token == s.token {
		s.token = ""
	}
}
