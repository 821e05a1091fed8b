package wxacodetest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-wxacode/wxacode"
	"github.com/go-wxacode/wxacode/wxacodetest"
)

// How does my service handle the minute quota? Make the next call fail
// with it.
func ExampleServer_FailNext() {
	srv := wxacodetest.NewServer()
	defer srv.Close()
	client := wxacode.NewClient(wxacode.StaticToken(srv.Token()), wxacode.WithBaseURL(srv.URL), wxacode.WithMaxAttempts(1))

	srv.FailNext(1, wxacode.CodeMinuteQuotaExceeded)
	_, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: "id=42"})
	fmt.Println(errors.Is(err, &wxacode.APIError{Code: wxacode.CodeMinuteQuotaExceeded}))

	_, err = client.GetUnlimited(context.Background(), wxacode.Request{Scene: "id=42"})
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}

// Which request made this image? The fake's images carry it.
func ExampleReadScene() {
	srv := wxacodetest.NewServer()
	defer srv.Close()
	client := wxacode.NewClient(wxacode.StaticToken(srv.Token()), wxacode.WithBaseURL(srv.URL))

	img, err := client.GetUnlimited(context.Background(), wxacode.Request{Scene: "id=42", IsHyaline: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	scene, err := wxacodetest.ReadScene(img)
	fmt.Println(scene, err, wxacode.ImageExt(img))
	// Output:
	// id=42 <nil> .png
}
