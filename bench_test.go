package wxacode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/wxacodetest"
)

// Client overhead is measured with cannedTransport, an http.RoundTripper
// that answers a ~10 KB image without sockets; the *Loopback benchmarks run
// the same calls against wxacodetest over loopback.

const benchToken = "ACCESS_TOKEN_0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij"

// cannedImage is a 10 KB body that passes as a complete JPEG.
func cannedImage() []byte {
	img := make([]byte, 10<<10)
	copy(img, "\xff\xd8\xff\xe0")
	img[len(img)-2], img[len(img)-1] = 0xff, 0xd9
	return img
}

// cannedTransport answers every request with img, as the service would.
type cannedTransport struct {
	img    []byte
	header http.Header
}

func newCannedTransport() *cannedTransport {
	img := cannedImage()
	return &cannedTransport{img: img, header: http.Header{
		"Content-Type":   {"image/jpeg"},
		"Content-Length": {strconv.Itoa(len(img))},
	}}
}

func (c *cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return &http.Response{
		StatusCode:    200,
		Header:        c.header,
		Body:          io.NopCloser(bytes.NewReader(c.img)),
		ContentLength: int64(len(c.img)),
		Request:       req,
	}, nil
}

// benchRequest is a typical request: a page and a scene.
var benchRequest = wxacode.Request{Scene: "id=1234567&from=poster", Page: "pages/item/index", Width: 600}

// rawBody is what a naive client marshals.
type rawBody struct {
	Scene string `json:"scene"`
	Page  string `json:"page,omitempty"`
	Width int    `json:"width,omitempty"`
}

// rawGetUnlimited is the same call made the naive way with plain net/http.
func rawGetUnlimited(ctx context.Context, hc *http.Client, base, token string) ([]byte, error) {
	body, err := json.Marshal(rawBody{Scene: benchRequest.Scene, Page: benchRequest.Page, Width: benchRequest.Width})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/wxa/getwxacodeunlimit?access_token="+token, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func BenchmarkGetUnlimited(b *testing.B) {
	hc := &http.Client{Transport: newCannedTransport()}
	c := wxacode.NewClient(wxacode.StaticToken(benchToken), wxacode.WithHTTPClient(hc))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetUnlimited(ctx, benchRequest); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetUnlimitedCached: a code served from a MemoryCache.
func BenchmarkGetUnlimitedCached(b *testing.B) {
	hc := &http.Client{Transport: newCannedTransport()}
	c := wxacode.NewClient(wxacode.StaticToken(benchToken), wxacode.WithHTTPClient(hc), wxacode.WithCache(wxacode.NewMemoryCache(1<<20)))
	ctx := context.Background()
	if _, err := c.GetUnlimited(ctx, benchRequest); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetUnlimited(ctx, benchRequest); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawHTTP(b *testing.B) {
	hc := &http.Client{Transport: newCannedTransport()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rawGetUnlimited(ctx, hc, wxacode.DefaultBaseURL, benchToken); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetUnlimitedParallel(b *testing.B) {
	hc := &http.Client{Transport: newCannedTransport()}
	srv := wxacodetest.NewServer()
	b.Cleanup(srv.Close)
	// A StableTokenSource, warmed once: the hot path is its cached token.
	ts := wxacode.NewStableTokenSource(srv.AppID(), srv.AppSecret(), wxacode.WithBaseURL(srv.URL))
	c := wxacode.NewClient(ts, wxacode.WithHTTPClient(hc))
	ctx := context.Background()
	if _, err := c.GetUnlimited(ctx, benchRequest); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetUnlimited(ctx, benchRequest); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGetUnlimitedLoopback(b *testing.B) {
	srv := wxacodetest.NewServer(wxacodetest.WithMinuteQuota(0))
	b.Cleanup(srv.Close)
	c := wxacode.NewClient(wxacode.StaticToken(srv.Token()), wxacode.WithBaseURL(srv.URL))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetUnlimited(ctx, benchRequest); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawHTTPLoopback(b *testing.B) {
	srv := wxacodetest.NewServer(wxacodetest.WithMinuteQuota(0))
	b.Cleanup(srv.Close)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	token := srv.Token()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rawGetUnlimited(ctx, hc, srv.URL, token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := benchRequest.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStableTokenParallel is the token lookup alone on the hot path:
// a cached token is one atomic load, whatever the contention.
func BenchmarkStableTokenParallel(b *testing.B) {
	srv := wxacodetest.NewServer()
	b.Cleanup(srv.Close)
	ts := wxacode.NewStableTokenSource(srv.AppID(), srv.AppSecret(), wxacode.WithBaseURL(srv.URL))
	ctx := context.Background()
	if _, err := ts.Token(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ts.Token(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
