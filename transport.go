package wxacode

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
)

// post sends one request for r with token and parses the answer. The hot
// path avoids what a naive client pays for: no reflection for the body, no
// URL parsing or concatenation while the token stays the same, one
// allocation for the body and its reader, and a response buffer sized from
// Content-Length.
func (c *Client) post(ctx context.Context, token string, r *Request) ([]byte, error) {
	u, err := c.urlFor(token)
	if err != nil {
		return nil, err
	}
	// An empty URL parses without error; its URL struct is then reused for
	// our own, so the cached URL is copied, never shared.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "", nil)
	if err != nil {
		return nil, err
	}
	*req.URL = *u
	req.Host = u.Host
	body := newRequestBody(r)
	req.Body = body
	req.ContentLength = int64(len(body.data))
	data := body.data
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	req.Header["Content-Type"] = c.jsonType

	resp, err := c.opts.httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parseImageResponse(resp)
}

// tokenURL is the request URL for one token.
type tokenURL struct {
	token string
	u     *url.URL
}

// urlFor returns the request URL for token, parsed once per token. On
// Cloud Run's open-API service no token is sent at all.
func (c *Client) urlFor(token string) (*url.URL, error) {
	if t := c.lastURL.Load(); t != nil && t.token == token {
		return t.u, nil
	}
	raw := c.endpoint
	if !c.cloudRun {
		raw += url.QueryEscape(token)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	c.lastURL.Store(&tokenURL{token: token, u: u})
	return u, nil
}

// requestBody is the JSON body and its reader in one allocation; bodies of
// typical requests fit the inline array.
type requestBody struct {
	reader bytes.Reader
	data   []byte
	inline [192]byte
}

func newRequestBody(r *Request) *requestBody {
	b := &requestBody{}
	b.data = r.appendJSON(b.inline[:0])
	b.reader.Reset(b.data)
	return b
}

func (b *requestBody) Read(p []byte) (int, error) { return b.reader.Read(p) }
func (b *requestBody) Close() error               { return nil }
