package wxacode

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestHints: the codes users meet most say how to fix them, derived from
// the code alone, and Error shows the hint in parentheses.
func TestHints(t *testing.T) {
	tests := []struct {
		codes []int
		want  []string // words the hint must hold
		not   []string // advice that does not work
	}{
		{[]int{CodeInvalidCredential}, []string{"share one StableTokenSource", "/cgi-bin/token"}, nil},
		{[]int{CodeInvalidAppSecret}, []string{"AppSecret is wrong"}, nil},
		{[]int{CodeIPNotWhitelisted}, []string{"IP whitelist"}, nil},
		{[]int{CodeAccessTokenMissing}, []string{"no access_token was sent", "Cloud Run", "enable the open-API service", "redeploy"}, nil},
		// With check_path true the page must be released whatever the
		// env_version: EnvVersion is no fix.
		{[]int{CodeInvalidPage}, []string{"publish it", "SkipPathCheck", "trial or develop"}, []string{"EnvVersion", "env_version"}},
		{[]int{CodeInvalidScene, CodeInvalidSceneLength}, []string{"short id"}, nil},
		{[]int{CodeDailyQuotaExceeded, CodeMinuteQuotaExceeded}, []string{"5000 calls a minute", "WithRateLimit"}, nil},
		{[]int{CodeUnauthorized}, []string{"permission set"}, nil},
		{[]int{CodeNotInWhitelist}, []string{"whitelist", "/wxa/getwxacodeunlimit", "redeploy"}, nil},
	}
	for _, tc := range tests {
		for _, code := range tc.codes {
			e := &APIError{Code: code, Message: "msg rid: 1"}
			for _, w := range tc.want {
				if !strings.Contains(e.Hint(), w) {
					t.Errorf("Hint() of %d = %q, want it to mention %q", code, e.Hint(), w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(e.Hint(), w) {
					t.Errorf("Hint() of %d = %q offers %q, which does not fix it", code, e.Hint(), w)
				}
			}
			if want := "wxacode: errcode " + strconv.Itoa(code) + ": msg rid: 1 (" + e.Hint() + ")"; e.Error() != want {
				t.Errorf("Error() = %q, want %q", e.Error(), want)
			}
			if e.RequestID() != "1" {
				t.Errorf("RequestID() = %q with a hint, want 1", e.RequestID())
			}
		}
	}
	if e := (&APIError{Code: 40097, Message: "invalid args"}); e.Hint() != "" || e.Error() != "wxacode: errcode 40097: invalid args" {
		t.Errorf("a code without advice: Hint %q, Error %q", e.Hint(), e.Error())
	}
}

func TestAPIError(t *testing.T) {
	c, _ := setup(t, nil, func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, CodeInvalidPage, "invalid page rid: 6555a1b2-1c2d3e4f-5a6b7c8d")
	})
	_, err := c.GetUnlimited(context.Background(), Request{Scene: "a=1", Page: "pages/nope/index"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if want := "wxacode: errcode 41030: invalid page rid: 6555a1b2-1c2d3e4f-5a6b7c8d (" + apiErr.Hint() + ")"; err.Error() != want || apiErr.Hint() == "" {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if got, want := apiErr.RequestID(), "6555a1b2-1c2d3e4f-5a6b7c8d"; got != want {
		t.Errorf("RequestID() = %q, want %q", got, want)
	}
	if !errors.Is(err, &APIError{Code: CodeInvalidPage}) {
		t.Error("errors.Is(err, &APIError{Code: 41030}) = false, want true")
	}
	if errors.Is(err, &APIError{Code: CodeInvalidScene}) {
		t.Error("errors.Is(err, &APIError{Code: 40129}) = true, want false")
	}
	if got := (&APIError{Code: 1, Message: "no id"}).RequestID(); got != "" {
		t.Errorf("RequestID() without rid = %q, want empty", got)
	}
}
