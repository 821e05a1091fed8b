package wxacodetest_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	_ "image/jpeg"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/wxacodetest"
)

// newFake starts a fake and returns it with a client that fetches its
// tokens from it the way production code does.
func newFake(t *testing.T, opts ...wxacodetest.ServerOption) (*wxacodetest.Server, *wxacode.Client) {
	t.Helper()
	srv := wxacodetest.NewServer(opts...)
	t.Cleanup(srv.Close)
	ts := wxacode.NewStableTokenSource(srv.AppID(), srv.AppSecret(), wxacode.WithBaseURL(srv.URL))
	return srv, wxacode.NewClient(ts, wxacode.WithBaseURL(srv.URL), wxacode.WithMaxAttempts(1))
}

// TestClientSurfacesEveryDocumentedCode: for each code the API documents,
// the client returns an *APIError carrying it. Codes the client's own
// validation would catch first are injected with FailNext.
func TestClientSurfacesEveryDocumentedCode(t *testing.T) {
	codes := []int{
		wxacode.CodeSystemBusy, wxacode.CodeInvalidCredential, wxacode.CodeInvalidScene, wxacode.CodeInvalidPage,
		wxacode.CodeScancodeTimeReserved, wxacode.CodeInvalidArgs, wxacode.CodeInvalidSceneLength,
		wxacode.CodeAccessTokenMissing, wxacode.CodeInvalidAccessToken, wxacode.CodeAccessTokenExpired,
		wxacode.CodeDailyQuotaExceeded, wxacode.CodeMinuteQuotaExceeded,
	}
	for _, code := range codes {
		t.Run("errcode "+strconv.Itoa(code), func(t *testing.T) {
			srv, c := newFake(t)
			// Token codes make the client refresh and retry once: fail both.
			srv.FailNext(2, code)
			_, err := c.GetUnlimited(context.Background(), wxacode.Request{Scene: "a=1"})
			var apiErr *wxacode.APIError
			if !errors.As(err, &apiErr) || apiErr.Code != code {
				t.Fatalf("err = %v, want *APIError with code %d", err, code)
			}
			if apiErr.RequestID() == "" {
				t.Errorf("no rid in %q", apiErr.Message)
			}
		})
	}
}

// TestClientAgainstRealConditions reaches the codes through the conditions
// that cause them, not injection.
func TestClientAgainstRealConditions(t *testing.T) {
	ctx := context.Background()
	t.Run("unknown token 40001", func(t *testing.T) {
		srv := wxacodetest.NewServer()
		t.Cleanup(srv.Close)
		c := wxacode.NewClient(wxacode.StaticToken("made-up"), wxacode.WithBaseURL(srv.URL))
		_, err := c.GetUnlimited(ctx, wxacode.Request{Scene: "a=1"})
		if !errors.Is(err, &wxacode.APIError{Code: 40001}) {
			t.Errorf("err = %v, want 40001", err)
		}
	})
	t.Run("missing token 41001", func(t *testing.T) {
		srv := wxacodetest.NewServer()
		t.Cleanup(srv.Close)
		c := wxacode.NewClient(wxacode.StaticToken(""), wxacode.WithBaseURL(srv.URL))
		_, err := c.GetUnlimited(ctx, wxacode.Request{Scene: "a=1"})
		if !errors.Is(err, &wxacode.APIError{Code: 41001}) {
			t.Errorf("err = %v, want 41001", err)
		}
	})
	t.Run("static token expired 42001", func(t *testing.T) {
		srv := wxacodetest.NewServer()
		t.Cleanup(srv.Close)
		c := wxacode.NewClient(wxacode.StaticToken(srv.Token()), wxacode.WithBaseURL(srv.URL))
		srv.ExpireTokens()
		_, err := c.GetUnlimited(ctx, wxacode.Request{Scene: "a=1"})
		if !errors.Is(err, &wxacode.APIError{Code: 42001}) {
			t.Errorf("err = %v, want 42001", err)
		}
	})
	t.Run("unpublished page 41030", func(t *testing.T) {
		_, c := newFake(t, wxacodetest.WithPublishedPages("pages/index/index"))
		_, err := c.GetUnlimited(ctx, wxacode.Request{Scene: "a=1", Page: "pages/new/index"})
		if !errors.Is(err, &wxacode.APIError{Code: 41030}) {
			t.Errorf("err = %v, want 41030", err)
		}
		if _, err := c.GetUnlimited(ctx, wxacode.Request{Scene: "a=1", Page: "pages/new/index", SkipPathCheck: true}); err != nil {
			t.Errorf("with SkipPathCheck: %v", err)
		}
	})
	t.Run("rate limit 45009", func(t *testing.T) {
		_, c := newFake(t, wxacodetest.WithMinuteQuota(2))
		for range 2 {
			if _, err := c.GetUnlimited(ctx, wxacode.Request{Scene: "a=1"}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.GetUnlimited(ctx, wxacode.Request{Scene: "a=1"})
		if !errors.Is(err, &wxacode.APIError{Code: 45009}) {
			t.Errorf("err = %v, want 45009", err)
		}
	})
	t.Run("expiry mid-use is healed by the stable token source", func(t *testing.T) {
		srv, c := newFake(t)
		if _, err := c.GetUnlimited(ctx, wxacode.Request{Scene: "a=1"}); err != nil {
			t.Fatal(err)
		}
		srv.ExpireTokens()
		if _, err := c.GetUnlimited(ctx, wxacode.Request{Scene: "a=2"}); err != nil {
			t.Fatalf("after ExpireTokens: %v", err)
		}
		if got := srv.TokenRequests(); got != 2 {
			t.Errorf("TokenRequests = %d, want 2", got)
		}
	})
	t.Run("advance past expiry", func(t *testing.T) {
		srv, c := newFake(t)
		if _, err := c.GetUnlimited(ctx, wxacode.Request{Scene: "a=1"}); err != nil {
			t.Fatal(err)
		}
		srv.Advance(wxacodetest.DefaultExpiresIn)
		// The client's own clock has not moved, so it sends the cached
		// token, gets 42001, refreshes and succeeds.
		if _, err := c.GetUnlimited(ctx, wxacode.Request{Scene: "a=2"}); err != nil {
			t.Fatalf("after Advance: %v", err)
		}
	})
}

func TestRoundTripImage(t *testing.T) {
	srv, c := newFake(t)
	img, err := c.GetUnlimited(context.Background(), wxacode.Request{Scene: "id=42", Page: "pages/item/index", EnvVersion: wxacode.EnvTrial, Width: 600})
	if err != nil {
		t.Fatal(err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil || format != "jpeg" || cfg.Width != 600 || cfg.Height != 600 {
		t.Errorf("image = %s %d×%d (%v), want jpeg 600×600", format, cfg.Width, cfg.Height, err)
	}
	code, err := wxacodetest.ReadCode(img)
	if err != nil || code != (wxacodetest.Code{Scene: "id=42", Page: "pages/item/index", EnvVersion: "trial"}) {
		t.Errorf("ReadCode = %+v, %v", code, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Width != 600 || reqs[0].Token == "" {
		t.Errorf("Requests = %+v", reqs)
	}
}

func TestColdClientOneTokenRequest(t *testing.T) {
	srv, c := newFake(t)
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if _, err := c.GetUnlimited(context.Background(), wxacode.Request{Scene: "n=" + string(rune('a'+i%26))}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := srv.TokenRequests(); got != 1 {
		t.Errorf("TokenRequests = %d, want 1", got)
	}
	if got := len(srv.Requests()); got != 100 {
		t.Errorf("Requests = %d, want 100", got)
	}
}

// TestTransparentCodeUnderJPEGHeader: the client takes a transparent
// code's format from its bytes, not from the image/jpeg header the service
// (and the fake) send; WithTidyContentTypes sends image/png.
func TestTransparentCodeUnderJPEGHeader(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []wxacodetest.ServerOption
		wantType string
	}{
		{"as the service", nil, "image/jpeg"},
		{"tidy", []wxacodetest.ServerOption{wxacodetest.WithTidyContentTypes()}, "image/png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, client := newFake(t, tc.opts...)
			img, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: "a=1", IsHyaline: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := wxacode.ImageExt(img); got != ".png" {
				t.Errorf("ImageExt = %q, want .png", got)
			}
			if code, err := wxacodetest.ReadCode(img); err != nil || code.Scene != "a=1" {
				t.Errorf("ReadCode = %+v, %v", code, err)
			}
			resp, err := http.Post(srv.URL+"/wxa/getwxacodeunlimit?access_token="+srv.Token(), "application/json", strings.NewReader(`{"scene":"b","is_hyaline":true}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Content-Type"); got != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
			}
		})
	}
}
