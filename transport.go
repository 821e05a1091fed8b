package wxacode

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"time"
)

// The HTTP exchange: the default client, the JSON POST both the code and
// the token requests make, and the body that ends its request's context.

// noRedirect makes the client return a 3xx as it is: credentials go
// nowhere but the base URL.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// postJSON POSTs body as JSON to url with the configured HTTP client. The
// caller closes the response body.
func (o *options) postJSON(ctx context.Context, url string, body []byte) (*http.Response, error) {
	// A context of the request's own, so that a refused body can be given
	// up on (discard) without closing it under a read in progress.
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.httpClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &requestBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// requestBody is a response body that ends its request's context when
// closed, or when a read of it is given up on.
type requestBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *requestBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

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
	return &http.Client{Transport: t, Timeout: defaultTimeout}
}
