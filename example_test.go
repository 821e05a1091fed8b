package wxacode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // register the decoders the examples use
	_ "image/png"
	"log"
	"strings"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/wxacodetest"
)

// The examples run against wxacodetest, an in-process fake of the WeChat
// API; in production leave out WithBaseURL.

func Example() {
	srv := wxacodetest.NewServer()
	defer srv.Close()

	ts := wxacode.NewStableTokenSource(srv.AppID(), srv.AppSecret(), wxacode.WithBaseURL(srv.URL))
	client := wxacode.NewClient(ts, wxacode.WithBaseURL(srv.URL))

	img, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: "id=42", Page: "pages/item/index"})
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, format, _ := image.DecodeConfig(bytes.NewReader(img))
	scene, _ := wxacodetest.ReadScene(img)
	fmt.Printf("%s %dx%d%s scene=%s\n", format, cfg.Width, cfg.Height, wxacode.ImageExt(img), scene)
	// Output: jpeg 430x430.jpg scene=id=42
}

func ExampleClient_GetUnlimited_transparent() {
	srv := wxacodetest.NewServer()
	defer srv.Close()
	client := wxacode.NewClient(wxacode.StaticToken(srv.Token()), wxacode.WithBaseURL(srv.URL))

	img, err := client.GetUnlimited(context.Background(), wxacode.Request{
		Scene:     "id=42",
		Width:     280,
		LineColor: wxacode.Color{R: 7, G: 193, B: 96},
		IsHyaline: true, // transparent background: the service answers PNG
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	decoded, format, _ := image.Decode(bytes.NewReader(img))
	_, _, _, alpha := decoded.At(0, 0).RGBA()
	fmt.Println(format, decoded.Bounds().Dx(), "corner alpha:", alpha)
	// Output: png 280 corner alpha: 0
}

func ExampleRequest_Validate() {
	for _, r := range []wxacode.Request{
		{Scene: "id=42"},
		{Scene: "名字=张三"},
		{Scene: "id=42", Page: "/pages/index/index"},
		{Scene: "id=42", Width: 200},
	} {
		fmt.Println(r.Validate())
	}
	// Output:
	// <nil>
	// wxacode: invalid scene: character '名' at byte 0 is not allowed (only 0-9 A-Z a-z !#$&'()*+,/:;=?@-._~)
	// wxacode: invalid page: must not start with "/" (write pages/index/index)
	// wxacode: invalid width: must be 0 (default 430) or from 280 to 1280, got 200
}

func ExampleAPIError() {
	srv := wxacodetest.NewServer(wxacodetest.WithPublishedPages("pages/index/index"))
	defer srv.Close()
	client := wxacode.NewClient(wxacode.StaticToken(srv.Token()), wxacode.WithBaseURL(srv.URL))

	_, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: "id=42", Page: "pages/draft/index"})
	var apiErr *wxacode.APIError
	if errors.As(err, &apiErr) {
		msg, _, _ := strings.Cut(apiErr.Message, " rid:")
		fmt.Println(apiErr.Code, msg, "| has rid:", apiErr.RequestID() != "")
	}
	fmt.Println(errors.Is(err, &wxacode.APIError{Code: wxacode.CodeInvalidPage}))
	// Output:
	// 41030 invalid page | has rid: true
	// true
}

func ExampleAPIError_Hint() {
	srv := wxacodetest.NewServer()
	defer srv.Close()
	client := wxacode.NewClient(wxacode.StaticToken("a-token-from-elsewhere"), wxacode.WithBaseURL(srv.URL))

	_, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: "id=42"})
	var apiErr *wxacode.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Code)
		fmt.Println(apiErr.Hint())
	}
	// Output:
	// 40001
	// the token was replaced: another process or tool fetched a new one; share one StableTokenSource (or one token service) per AppID, and do not mix /cgi-bin/token with stable_token
}

func ExampleWithCache() {
	srv := wxacodetest.NewServer()
	defer srv.Close()
	client := wxacode.NewClient(wxacode.StaticToken(srv.Token()), wxacode.WithBaseURL(srv.URL),
		wxacode.WithCache(wxacode.NewMemoryCache(64<<20)))

	for range 2 {
		img, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: "id=42"})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(len(img) > 0, "API calls so far:", len(srv.Requests()))
	}
	// Output:
	// true API calls so far: 1
	// true API calls so far: 1
}

func ExampleTokenFunc() {
	srv := wxacodetest.NewServer()
	defer srv.Close()

	// Any lookup fits: Redis, a central token service, or a third-party
	// platform's authorizer_access_token.
	lookups := 0
	ts := wxacode.TokenFunc(func(ctx context.Context) (string, error) {
		lookups++
		return srv.Token(), nil
	})
	client := wxacode.NewClient(ts, wxacode.WithBaseURL(srv.URL))
	if _, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: "a=1"}); err != nil {
		fmt.Println(err)
	}
	fmt.Println("lookups:", lookups)
	// Output: lookups: 1
}

func ExampleNewStableTokenSource() {
	srv := wxacodetest.NewServer()
	defer srv.Close()

	ts := wxacode.NewStableTokenSource(srv.AppID(), srv.AppSecret(), wxacode.WithBaseURL(srv.URL))
	client := wxacode.NewClient(ts, wxacode.WithBaseURL(srv.URL))
	for _, scene := range []string{"a=1", "a=2", "a=3"} {
		if _, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: scene}); err != nil {
			fmt.Println(err)
		}
	}
	srv.ExpireTokens() // the service rejects the cached token: the source fetches a new one
	if _, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: "a=4"}); err != nil {
		fmt.Println(err)
	}
	minted := 0
	for _, r := range srv.Requests() {
		if r.ErrCode == 0 {
			minted++
		}
	}
	fmt.Println("minted:", minted, "rejected:", len(srv.Requests())-minted, "token requests:", srv.TokenRequests())
	// Output: minted: 4 rejected: 1 token requests: 2
}
