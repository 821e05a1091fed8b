package wxacode

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func TestValidate(t *testing.T) {
	valid := []Request{
		{Scene: "a=1"},
		{Scene: strings.Repeat("x", 32)},
		{Scene: "0123456789ABCDEFGHIJKLMNOPQRSTUV"},
		{Scene: "!#$&'()*+,/:;=?@-._~"},
		{Scene: "id=42", Page: "pages/index/index"},
		{Scene: "id=42", Page: "pages/详情/index"},
		{Scene: "id=42", Width: 280},
		{Scene: "id=42", Width: 1280},
		{Scene: "id=42", Width: 430},
		{Scene: "id=42", EnvVersion: EnvRelease},
		{Scene: "id=42", EnvVersion: EnvTrial},
		{Scene: "id=42", EnvVersion: EnvDevelop},
		{Scene: "id=42", AutoColor: true, LineColor: Color{R: 255}, IsHyaline: true, SkipPathCheck: true},
	}
	for _, r := range valid {
		if err := r.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", r, err)
		}
	}

	invalid := []struct {
		name      string
		r         Request
		wantField string
		wantIn    string // part of the reason
	}{
		{"empty scene", Request{}, "scene", "required"},
		{"33 characters", Request{Scene: strings.Repeat("x", 33)}, "scene", "at most 32"},
		{"percent", Request{Scene: "a%3D1"}, "scene", `'%'`},
		{"space", Request{Scene: "a 1"}, "scene", `' '`},
		{"chinese", Request{Scene: "id=中"}, "scene", `'中'`},
		{"quote", Request{Scene: `a"b`}, "scene", `'"'`},
		{"backslash", Request{Scene: `a\b`}, "scene", `'\\'`},
		{"caret", Request{Scene: "a^b"}, "scene", `'^'`},
		{"newline", Request{Scene: "a\nb"}, "scene", `'\n'`},
		{"leading slash", Request{Scene: "a=1", Page: "/pages/index/index"}, "page", `"/"`},
		{"parameters", Request{Scene: "a=1", Page: "pages/index/index?id=1"}, "page", "parameters"},
		{"scancode_time", Request{Scene: "a=1", Page: "pages/scancode_time/index"}, "page", "scancode_time"},
		{"control character", Request{Scene: "a=1", Page: "pages/\x01"}, "page", "control"},
		{"invalid utf-8", Request{Scene: "a=1", Page: "pages/\xff"}, "page", "UTF-8"},
		{"width 279", Request{Scene: "a=1", Width: 279}, "width", "279"},
		{"width 1281", Request{Scene: "a=1", Width: 1281}, "width", "1281"},
		{"width negative", Request{Scene: "a=1", Width: -430}, "width", "-430"},
		{"env typo", Request{Scene: "a=1", EnvVersion: "release_error"}, "env_version", "release_error"},
		{"env case", Request{Scene: "a=1", EnvVersion: "Release"}, "env_version", "Release"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			if ve.Field != tc.wantField {
				t.Errorf("Field = %q, want %q", ve.Field, tc.wantField)
			}
			if !strings.Contains(ve.Reason, tc.wantIn) {
				t.Errorf("Reason = %q, want it to mention %q", ve.Reason, tc.wantIn)
			}
			if got := err.Error(); !strings.HasPrefix(got, "wxacode: invalid "+tc.wantField+": ") {
				t.Errorf("Error() = %q, want prefix %q", got, "wxacode: invalid "+tc.wantField+": ")
			}
		})
	}
}

func TestValidateAllowsExactlyTheDocumentedAlphabet(t *testing.T) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$&'()*+,/:;=?@-._~"
	for c := 0; c < 256; c++ {
		want := strings.IndexByte(alphabet, byte(c)) >= 0
		got := isSceneByte(byte(c))
		if got != want {
			t.Errorf("isSceneByte(%q) = %v, want %v", rune(c), got, want)
		}
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	r := Request{Scene: "id=42&from=poster", Page: "pages/index/index", Width: 600, EnvVersion: EnvTrial}
	if n := testing.AllocsPerRun(100, func() { _ = r.Validate() }); n != 0 {
		t.Errorf("Validate allocates %v times for a valid request, want 0", n)
	}
}

// TestInvalidRequestDoesNoIO proves validation happens before any token
// fetch or request.
func TestInvalidRequestDoesNoIO(t *testing.T) {
	var tokenCalls, requests atomic.Int64
	ts := TokenFunc(func(context.Context) (string, error) {
		tokenCalls.Add(1)
		return testToken, nil
	})
	c, _ := setup(t, ts, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		writeImage(w, "image/jpeg", testJPEG(t))
	})
	for _, r := range []Request{{}, {Scene: "a b"}, {Scene: "a", Page: "/x"}, {Scene: "a", Width: 100}, {Scene: "a", EnvVersion: "beta"}} {
		_, err := c.GetUnlimited(context.Background(), r)
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("GetUnlimited(%+v) error = %v, want *ValidationError", r, err)
		}
	}
	if got := tokenCalls.Load(); got != 0 {
		t.Errorf("token fetched %d times, want 0", got)
	}
	if got := requests.Load(); got != 0 {
		t.Errorf("server saw %d requests, want 0", got)
	}
}

func TestRequestBody(t *testing.T) {
	tests := []struct {
		name string
		r    Request
		want string
	}{
		{"defaults send scene only", Request{Scene: "a=1"}, `{"scene":"a=1"}`},
		{"explicit defaults are not sent", Request{Scene: "a=1", EnvVersion: EnvRelease, Width: 430}, `{"scene":"a=1"}`},
		{"every field", Request{Scene: "id=42", Page: "pages/a/b", SkipPathCheck: true, EnvVersion: EnvTrial, Width: 1280, LineColor: Color{R: 1, G: 128, B: 255}, IsHyaline: true},
			`{"scene":"id=42","page":"pages/a/b","check_path":false,"env_version":"trial","width":1280,"line_color":{"r":1,"g":128,"b":255},"is_hyaline":true}`},
		{"auto colour drops line colour", Request{Scene: "a", AutoColor: true, LineColor: Color{R: 9}}, `{"scene":"a","auto_color":true}`},
		{"black line colour is the default", Request{Scene: "a", LineColor: Color{}}, `{"scene":"a"}`},
		{"develop", Request{Scene: "a", EnvVersion: EnvDevelop}, `{"scene":"a","env_version":"develop"}`},
		{"page is escaped", Request{Scene: "a", Page: `p/"q"\r` + "\t"}, `{"scene":"a","page":"p/\"q\"\\r\t"}`},
		{"html characters kept", Request{Scene: "a&b", Page: "p/<x>&"}, `{"scene":"a&b","page":"p/<x>&"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := tc.r.body()
			if err != nil {
				t.Fatal(err)
			}
			if got := string(raw); got != tc.want {
				t.Errorf("body = %s\nwant   %s", got, tc.want)
			}
			got := string(raw)
			var decoded map[string]any
			if err := json.Unmarshal([]byte(got), &decoded); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if decoded["scene"] != tc.r.Scene {
				t.Errorf("scene decodes to %v, want %q", decoded["scene"], tc.r.Scene)
			}
			if p, ok := decoded["page"]; ok && p != tc.r.Page {
				t.Errorf("page decodes to %v, want %q", p, tc.r.Page)
			}
			documented := map[string]bool{"scene": true, "page": true, "check_path": true, "env_version": true, "width": true, "auto_color": true, "line_color": true, "is_hyaline": true}
			for k := range decoded {
				if !documented[k] {
					t.Errorf("undocumented field %q sent", k)
				}
			}
		})
	}
}
