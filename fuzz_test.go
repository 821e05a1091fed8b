package wxacode

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// sceneAlphabet is the documented scene alphabet, written out independently
// of isSceneByte.
const sceneAlphabet = "0123456789" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmnopqrstuvwxyz" + "!#$&'()*+,/:;=?@-._~"

// documentedScene is the reference rule: 1 to 32 characters, all from the
// alphabet.
func documentedScene(s string) bool {
	n := 0
	for _, r := range s {
		if r >= 0x80 || !strings.ContainsRune(sceneAlphabet, r) {
			return false
		}
		n++
	}
	return n >= 1 && n <= 32
}

func FuzzValidate(f *testing.F) {
	f.Add("a=1", "pages/index/index", 0, "")
	f.Add(strings.Repeat("z", 32), "", 1280, "trial")
	f.Add(strings.Repeat("z", 33), "", 280, "develop")
	f.Add("id=中", "/pages", 279, "release_error")
	f.Add("a%20b", "pages/a?b=1", -1, "release")
	f.Add("!#$&'()*+,/:;=?@-._~", "pages/scancode_time", 430, "")
	f.Add("a\x00", "p\"\\\n\x7f\xff", 1<<40, "Release")
	f.Fuzz(func(t *testing.T, scene, page string, width int, env string) {
		r := Request{Scene: scene, Page: page, Width: width, EnvVersion: EnvVersion(env)}
		err := r.Validate()

		var ve *ValidationError
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("Validate returned %T, want *ValidationError", err)
		}
		sceneOK := documentedScene(scene)
		if !sceneOK && (err == nil || ve.Field != "scene") {
			t.Fatalf("scene %q breaks the documented rule but Validate = %v", scene, err)
		}
		if sceneOK && ve != nil && ve.Field == "scene" {
			t.Fatalf("scene %q follows the documented rule but Validate = %v", scene, err)
		}
		widthOK := width == 0 || (width >= 280 && width <= 1280)
		envOK := env == "" || env == "release" || env == "trial" || env == "develop"
		pageOK := !strings.HasPrefix(page, "/") && !strings.Contains(page, "?") && !strings.Contains(page, "scancode_time")
		if err == nil && (!widthOK || !envOK || !pageOK) {
			t.Fatalf("Validate accepted width=%d env=%q page=%q", width, env, page)
		}
		if err != nil {
			return
		}
		// A valid request encodes to JSON that decodes back to it.
		body, err := r.body()
		if err != nil {
			t.Fatalf("body: %v", err)
		}
		var got struct {
			Scene string `json:"scene"`
			Page  string `json:"page"`
			Width int    `json:"width"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body %q is not JSON: %v", body, err)
		}
		if got.Scene != scene || got.Page != page {
			t.Fatalf("body %q decodes to scene=%q page=%q", body, got.Scene, got.Page)
		}
	})
}

func FuzzResponse(f *testing.F) {
	jpg, pngImg := testJPEG(f), testPNG(f)
	f.Add(200, "image/jpeg", jpg, int64(-1))
	f.Add(200, "image/png", pngImg, int64(len(pngImg)))
	f.Add(200, "image/png", pngImg[:len(pngImg)/2], int64(-1))
	f.Add(200, "application/json", []byte(`{"errcode":40001,"errmsg":"invalid credential rid: x"}`), int64(-1))
	f.Add(200, "image/jpeg", []byte(`{"errcode":-1,"errmsg":"system error"}`), int64(-1))
	f.Add(200, "", []byte(` {"errcode":0}`), int64(-1))
	f.Add(502, "text/html", []byte("<html>bad gateway</html>"), int64(24))
	f.Add(200, "image/jpeg", []byte{}, int64(0))
	f.Add(200, "image/jpeg", []byte("\xff\xd8\xff"), int64(1<<40))
	f.Add(-7, "IMAGE/GIF", []byte("GIF89a"), int64(3))
	f.Add(307, "application/json", []byte(`{"errcode":40001}`), int64(-1))
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte, contentLength int64) {
		resp := &http.Response{
			StatusCode:    status,
			Header:        http.Header{"Content-Type": {contentType}},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: contentLength,
		}
		img, err := parseImageResponse(resp)
		apiErr, isJSONErr := parseErrorBody(body)
		if isRedirect(status) {
			// Never followed, never read as an answer: credentials go
			// nowhere but the base URL.
			var respErr *ResponseError
			if !errors.As(err, &respErr) || respErr.StatusCode != status || img != nil {
				t.Fatalf("status %d: err = %v, want a *ResponseError with that status", status, err)
			}
			return
		}
		if contentLength > maxImageBytes || (contentLength > maxJSONBytes && !isImageContentType(contentType)) {
			var respErr *ResponseError
			if !errors.As(err, &respErr) {
				t.Fatalf("Content-Length %d over the cap: err = %v, want *ResponseError", contentLength, err)
			}
			return
		}
		if isJSONErr && contentLength < 0 && apiErr.Code != 0 {
			var got *APIError
			if !errors.As(err, &got) || got.Code != apiErr.Code {
				t.Fatalf("JSON errcode %d body: err = %v, want that *APIError", apiErr.Code, err)
			}
		}
		if err != nil {
			if img != nil {
				t.Fatal("image returned with an error")
			}
			if !strings.HasPrefix(err.Error(), "wxacode: ") {
				t.Fatalf("error %q lacks the wxacode: prefix", err)
			}
			return
		}
		// Success: only an image, as sent, under the caps.
		if isJSONErr {
			t.Fatalf("image bytes returned for a JSON errcode body %q", body)
		}
		if !isImageContentType(contentType) || status < 200 || status > 299 {
			t.Fatalf("success for status %d, Content-Type %q", status, contentType)
		}
		if !bytes.Equal(img, body[:len(img)]) || len(img) == 0 || len(img) > maxImageBytes {
			t.Fatalf("returned %d bytes, not the body as sent", len(img))
		}
	})
}
