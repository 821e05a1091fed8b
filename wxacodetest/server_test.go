package wxacodetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// newServer starts a Server and registers its Close.
func newServer(t *testing.T, opts ...ServerOption) *Server {
	t.Helper()
	s := NewServer(opts...)
	t.Cleanup(s.Close)
	return s
}

// answer is a decoded reply of the fake.
type answer struct {
	status      int
	contentType string
	body        []byte
	errcode     int
	errmsg      string
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: body}
	var e struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if json.Unmarshal(body, &e) == nil {
		a.errcode, a.errmsg = e.ErrCode, e.ErrMsg
	}
	return a
}

// mint posts body to getwxacodeunlimit with token.
func mint(t *testing.T, s *Server, token, body string) answer {
	t.Helper()
	u := s.URL + "/wxa/getwxacodeunlimit"
	if token != "" {
		u += "?access_token=" + url.QueryEscape(token)
	}
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// stableToken asks POST /cgi-bin/stable_token.
func stableToken(t *testing.T, s *Server, appID, secret string, force bool) (token string, expiresIn int64, a answer) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": appID, "secret": secret, "force_refresh": force})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/cgi-bin/stable_token", bytes.NewReader(body))
	a = do(t, req)
	var ok tokenAnswer
	_ = json.Unmarshal(a.body, &ok)
	return ok.AccessToken, ok.ExpiresIn, a
}

// plainToken asks GET /cgi-bin/token.
func plainToken(t *testing.T, s *Server, grant, appID, secret string) (string, answer) {
	t.Helper()
	q := url.Values{"grant_type": {grant}, "appid": {appID}, "secret": {secret}}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/cgi-bin/token?"+q.Encode(), nil)
	a := do(t, req)
	var ok tokenAnswer
	_ = json.Unmarshal(a.body, &ok)
	return ok.AccessToken, a
}

func wantCode(t *testing.T, a answer, code int) {
	t.Helper()
	if a.errcode != code {
		t.Fatalf("errcode = %d (%s), want %d", a.errcode, a.body, code)
	}
	if code == 0 {
		return
	}
	if a.status != 200 {
		t.Errorf("status = %d, want 200 for an API error", a.status)
	}
	if want := errMessage(code) + " rid: "; !strings.HasPrefix(a.errmsg, want) || len(a.errmsg) <= len(want) {
		t.Errorf("errmsg = %q, want %q followed by a request id", a.errmsg, want)
	}
}

func TestTokenEndpoint(t *testing.T) {
	s := newServer(t, WithCredentials("wxapp", "s3cret"))
	tests := []struct {
		name                 string
		grant, appID, secret string
		wantCode             int
	}{
		{"ok", "client_credential", "wxapp", "s3cret", 0},
		{"bad grant", "password", "wxapp", "s3cret", 40002},
		{"unknown appid", "client_credential", "wxother", "s3cret", 40013},
		{"missing appid", "client_credential", "", "s3cret", 41002},
		{"bad secret", "client_credential", "wxapp", "nope", 40125},
		{"missing secret", "client_credential", "wxapp", "", 41004},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, a := plainToken(t, s, tc.grant, tc.appID, tc.secret)
			wantCode(t, a, tc.wantCode)
			if tc.wantCode == 0 && tok == "" {
				t.Error("no access_token")
			}
		})
	}
	if got := s.TokenRequests(); got != len(tests) {
		t.Errorf("TokenRequests = %d, want %d", got, len(tests))
	}
}

func TestTokenEndpointOldTokenGrace(t *testing.T) {
	s := newServer(t)
	first, _ := plainToken(t, s, "client_credential", s.AppID(), s.AppSecret())
	second, _ := plainToken(t, s, "client_credential", s.AppID(), s.AppSecret())
	if first == second {
		t.Fatal("getAccessToken returned the same token twice")
	}
	s.Advance(4 * time.Minute)
	wantCode(t, mint(t, s, first, `{"scene":"a"}`), 0)
	s.Advance(2 * time.Minute)
	wantCode(t, mint(t, s, first, `{"scene":"a"}`), 42001)
	wantCode(t, mint(t, s, second, `{"scene":"a"}`), 0)
}

func TestStableToken(t *testing.T) {
	s := newServer(t, WithExpiresIn(7200*time.Second))
	id, secret := s.AppID(), s.AppSecret()

	tok, exp, a := stableToken(t, s, id, secret, false)
	wantCode(t, a, 0)
	if exp != 7200 {
		t.Errorf("expires_in = %d, want 7200", exp)
	}
	s.Advance(1000 * time.Second)
	again, exp, _ := stableToken(t, s, id, secret, false)
	if again != tok || exp != 6200 {
		t.Errorf("second call = %q, %d; want the same token with 6200 s left", again, exp)
	}

	// In the last 5 minutes a new token comes; the old one works until it expires.
	s.Advance(6000 * time.Second)
	rotated, exp, _ := stableToken(t, s, id, secret, false)
	if rotated == tok || exp != 7200 {
		t.Errorf("in the last 5 minutes: %q, %d; want a new token with 7200 s", rotated, exp)
	}
	wantCode(t, mint(t, s, tok, `{"scene":"a"}`), 0)
	s.Advance(201 * time.Second)
	wantCode(t, mint(t, s, tok, `{"scene":"a"}`), 42001)

	// force_refresh replaces the token at once; another within 30 s is ignored.
	forced, _, _ := stableToken(t, s, id, secret, true)
	if forced == rotated {
		t.Fatal("force_refresh returned the same token")
	}
	wantCode(t, mint(t, s, rotated, `{"scene":"a"}`), 42001)
	s.Advance(10 * time.Second)
	if ignored, _, _ := stableToken(t, s, id, secret, true); ignored != forced {
		t.Errorf("force_refresh 10 s later gave %q, want the same %q", ignored, forced)
	}

	// Wrong secret.
	_, _, a = stableToken(t, s, id, "wrong", false)
	wantCode(t, a, 40125)
}

func TestStableTokenForcedDailyLimit(t *testing.T) {
	s := newServer(t)
	for range maxForcedPerDay {
		_, _, a := stableToken(t, s, s.AppID(), s.AppSecret(), true)
		wantCode(t, a, 0)
		s.Advance(31 * time.Second)
	}
	_, _, a := stableToken(t, s, s.AppID(), s.AppSecret(), true)
	wantCode(t, a, 45009)
	s.Advance(24 * time.Hour)
	_, _, a = stableToken(t, s, s.AppID(), s.AppSecret(), true)
	wantCode(t, a, 0)
}

func TestStableTokenBadBody(t *testing.T) {
	s := newServer(t)
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/cgi-bin/stable_token", strings.NewReader("grant_type=client_credential"))
	wantCode(t, do(t, req), 47001)
}

func TestExpiry(t *testing.T) {
	s := newServer(t, WithExpiresIn(10*time.Minute))
	tok := s.Token()
	wantCode(t, mint(t, s, tok, `{"scene":"a"}`), 0)
	s.Advance(10 * time.Minute)
	wantCode(t, mint(t, s, tok, `{"scene":"a"}`), 42001)
	if fresh := s.Token(); fresh == tok {
		t.Error("Token() returned the expired token")
	}
}

func TestExpireTokens(t *testing.T) {
	s := newServer(t)
	tok := s.Token()
	plain, _ := plainToken(t, s, "client_credential", s.AppID(), s.AppSecret())
	s.ExpireTokens()
	wantCode(t, mint(t, s, tok, `{"scene":"a"}`), 42001)
	wantCode(t, mint(t, s, plain, `{"scene":"a"}`), 42001)
	fresh, _, _ := stableToken(t, s, s.AppID(), s.AppSecret(), false)
	if fresh == tok {
		t.Fatal("stable_token returned the expired token")
	}
	wantCode(t, mint(t, s, fresh, `{"scene":"a"}`), 0)
}

func TestUnlimitedRules(t *testing.T) {
	s := newServer(t, WithPublishedPages("pages/index/index", "pages/item/index"))
	good := s.Token()
	tests := []struct {
		name  string
		token string
		body  string
		want  int
	}{
		{"ok", good, `{"scene":"a=1"}`, 0},
		{"every field", good, `{"scene":"id=42","page":"pages/item/index","check_path":true,"env_version":"trial","width":1280,"auto_color":false,"line_color":{"r":1,"g":2,"b":3},"is_hyaline":true}`, 0},
		{"missing token", "", `{"scene":"a=1"}`, 41001},
		{"unknown token", "not-a-token", `{"scene":"a=1"}`, 40001},
		{"bad scene", good, `{"scene":"a%3D1"}`, 40129},
		{"chinese scene", good, `{"scene":"中文"}`, 40129},
		{"scene too long", good, `{"scene":"` + strings.Repeat("a", 33) + `"}`, 40169},
		{"scene 32 long", good, `{"scene":"` + strings.Repeat("a", 32) + `"}`, 0},
		{"no scene", good, `{"page":"pages/index/index"}`, 40169},
		{"scene not a string", good, `{"scene":42}`, 40169},
		{"body not json", good, `scene=a`, 47001},
		{"body empty", good, ``, 44002},
		{"is_hyaline as a number", good, `{"scene":"a","is_hyaline":1}`, 47001},
		{"check_path as a number", good, `{"scene":"a","check_path":0}`, 47001},
		{"leading slash", good, `{"scene":"a","page":"/pages/index/index"}`, 41030},
		{"page parameters", good, `{"scene":"a","page":"pages/index/index?id=1"}`, 41030},
		{"unpublished page", good, `{"scene":"a","page":"pages/new/index"}`, 41030},
		{"unpublished, check_path false", good, `{"scene":"a","page":"pages/new/index","check_path":false}`, 0},
		{"scancode_time", good, `{"scene":"a","page":"pages/index/index?scancode_time=1"}`, 85096},
		{"bad env_version", good, `{"scene":"a","env_version":"release_error"}`, 40097},
		{"width too small", good, `{"scene":"a","width":279}`, 40097},
		{"width too large", good, `{"scene":"a","width":1281}`, 40097},
		{"width fractional", good, `{"scene":"a","width":300.5}`, 40097},
		{"width as string", good, `{"scene":"a","width":"300"}`, 40097},
		{"line_color as strings", good, `{"scene":"a","line_color":{"r":"255","g":"0","b":"12"}}`, 0},
		{"line_color out of range", good, `{"scene":"a","line_color":{"r":256,"g":0,"b":0}}`, 40097},
		{"line_color not numeric", good, `{"scene":"a","line_color":{"r":"red","g":0,"b":0}}`, 40097},
		{"check_path as string", good, `{"scene":"a","check_path":"false"}`, 40097},
		{"unknown field ignored", good, `{"scene":"a","color":"blue"}`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := mint(t, s, tc.token, tc.body)
			wantCode(t, a, tc.want)
			if tc.want != 0 {
				if a.contentType != jsonContentType {
					t.Errorf("Content-Type = %q, want %q", a.contentType, jsonContentType)
				}
				return
			}
			if !strings.HasPrefix(a.contentType, "image/") {
				t.Errorf("Content-Type = %q, want an image", a.contentType)
			}
		})
	}
	reqs := s.Requests()
	if len(reqs) != len(tests) {
		t.Fatalf("recorded %d requests, want %d", len(reqs), len(tests))
	}
	for i, tc := range tests {
		if reqs[i].ErrCode != tc.want {
			t.Errorf("request %d (%s) recorded errcode %d, want %d", i, tc.name, reqs[i].ErrCode, tc.want)
		}
	}
}

func TestRecordedRequest(t *testing.T) {
	s := newServer(t)
	tok := s.Token()
	mint(t, s, tok, `{"scene":"id=7","page":"pages/a/b","check_path":false,"env_version":"develop","width":640,"line_color":{"r":"9","g":8,"b":7},"is_hyaline":true}`)
	mint(t, s, tok, `{"scene":"x"}`)
	got := s.Requests()
	if len(got) != 2 {
		t.Fatalf("Requests() has %d entries, want 2", len(got))
	}
	r := got[0]
	if r.Scene != "id=7" || r.Page != "pages/a/b" || r.CheckPath || r.EnvVersion != "develop" || r.Width != 640 ||
		r.LineColor != (Color{9, 8, 7}) || !r.IsHyaline || r.AutoColor || r.Token != tok || r.ErrCode != 0 {
		t.Errorf("recorded %+v", r)
	}
	if want := "scene,page,check_path,env_version,width,line_color,is_hyaline"; strings.Join(r.Fields, ",") != want {
		t.Errorf("Fields = %v, want %s", r.Fields, want)
	}
	d := got[1]
	if d.Scene != "x" || !d.CheckPath || d.EnvVersion != "release" || d.Width != 430 || len(d.Fields) != 1 {
		t.Errorf("defaults recorded as %+v, want check_path true, release, 430", d)
	}
	if got[1].Time.Before(got[0].Time) {
		t.Error("request times go backwards")
	}
}

func TestTextPlainErrors(t *testing.T) {
	s := newServer(t, WithTextPlainErrors())
	a := mint(t, s, "", `{"scene":"a"}`)
	wantCode(t, a, 41001)
	if a.contentType != "text/plain" {
		t.Errorf("Content-Type = %q, want text/plain", a.contentType)
	}
}

func TestRateLimit(t *testing.T) {
	s := newServer(t, WithMinuteQuota(3))
	tok := s.Token()
	for range 3 {
		wantCode(t, mint(t, s, tok, `{"scene":"a"}`), 0)
	}
	wantCode(t, mint(t, s, tok, `{"scene":"a"}`), 45009)
	s.Advance(time.Minute)
	wantCode(t, mint(t, s, tok, `{"scene":"a"}`), 0)
}

func TestFailNext(t *testing.T) {
	s := newServer(t)
	tok := s.Token()
	s.FailNext(2, -1)
	s.FailNext(1, 45011)
	for _, want := range []int{-1, -1, 45011, 0} {
		wantCode(t, mint(t, s, tok, `{"scene":"a"}`), want)
	}
	s.FailNext(1, 99999)
	if a := mint(t, s, tok, `{"scene":"a"}`); a.errcode != 99999 || !strings.HasPrefix(a.errmsg, "injected error rid: ") {
		t.Errorf("unknown code answered %s", a.body)
	}
}

func TestImages(t *testing.T) {
	s := newServer(t)
	tok := s.Token()
	tests := []struct {
		name       string
		body       string
		wantType   string
		wantFormat string
		wantWidth  int
		wantInk    Color // colour of the ring
		clearBG    bool
	}{
		{"default jpeg", `{"scene":"a=1"}`, "image/jpeg", "jpeg", 430, Color{0, 0, 0}, false},
		{"width and colour", `{"scene":"a=2","width":280,"line_color":{"r":200,"g":30,"b":40}}`, "image/jpeg", "jpeg", 280, Color{200, 30, 40}, false},
		{"auto colour", `{"scene":"a=3","auto_color":true,"line_color":{"r":200,"g":0,"b":0}}`, "image/jpeg", "jpeg", 430, autoColor(), false},
		// the service sends its PNG under image/jpeg: the format is in the bytes
		{"transparent png", `{"scene":"a=4","is_hyaline":true,"width":1280,"line_color":{"r":0,"g":0,"b":255}}`, "image/jpeg", "png", 1280, Color{0, 0, 255}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := mint(t, s, tok, tc.body)
			if a.contentType != tc.wantType {
				t.Fatalf("Content-Type = %q, want %q (%s)", a.contentType, tc.wantType, a.body[:min(len(a.body), 100)])
			}
			img, format, err := image.Decode(bytes.NewReader(a.body))
			if err != nil {
				t.Fatalf("image does not decode: %v", err)
			}
			if format != tc.wantFormat {
				t.Errorf("format = %s, want %s", format, tc.wantFormat)
			}
			if b := img.Bounds(); b.Dx() != tc.wantWidth || b.Dy() != tc.wantWidth {
				t.Errorf("size = %v, want %d×%d", b.Size(), tc.wantWidth, tc.wantWidth)
			}
			// A point on the ring (radius 0.39 of the disc, right of centre).
			c := float64(tc.wantWidth) / 2
			r, g, b, _ := img.At(int(c+0.39*c*0.96), int(c)).RGBA()
			if !near(uint8(r>>8), tc.wantInk.R) || !near(uint8(g>>8), tc.wantInk.G) || !near(uint8(b>>8), tc.wantInk.B) {
				t.Errorf("ring colour = %d,%d,%d, want about %v", r>>8, g>>8, b>>8, tc.wantInk)
			}
			_, _, _, alpha := img.At(0, 0).RGBA()
			if tc.clearBG && alpha != 0 {
				t.Errorf("corner alpha = %d, want transparent", alpha)
			}
			if !tc.clearBG {
				if r, g, b, _ := img.At(0, 0).RGBA(); r>>8 < 240 || g>>8 < 240 || b>>8 < 240 {
					t.Errorf("corner = %d,%d,%d, want white", r>>8, g>>8, b>>8)
				}
			}
		})
	}
}

func near(a, b uint8) bool { return int(a)-int(b) < 40 && int(b)-int(a) < 40 }

func TestImagesCarryTheirCode(t *testing.T) {
	s := newServer(t)
	tok := s.Token()
	jpg := mint(t, s, tok, `{"scene":"id=1","page":"pages/详情/index","env_version":"trial"}`).body
	pngImg := mint(t, s, tok, `{"scene":"id=2","is_hyaline":true}`).body
	tests := []struct {
		img  []byte
		want Code
	}{
		{jpg, Code{Scene: "id=1", Page: "pages/详情/index", EnvVersion: "trial"}},
		{pngImg, Code{Scene: "id=2", EnvVersion: "release"}},
	}
	for _, tc := range tests {
		got, err := ReadCode(tc.img)
		if err != nil || got != tc.want {
			t.Errorf("ReadCode = %+v, %v; want %+v", got, err, tc.want)
		}
		scene, err := ReadScene(tc.img)
		if err != nil || scene != tc.want.Scene {
			t.Errorf("ReadScene = %q, %v; want %q", scene, err, tc.want.Scene)
		}
	}
	// The metadata leaves the images decodable.
	if _, err := jpeg.Decode(bytes.NewReader(jpg)); err != nil {
		t.Errorf("JPEG with comment does not decode: %v", err)
	}
	if _, err := png.Decode(bytes.NewReader(pngImg)); err != nil {
		t.Errorf("PNG with tEXt does not decode (bad CRC?): %v", err)
	}
	// Foreign images and non-images.
	var plain bytes.Buffer
	_ = png.Encode(&plain, image.NewGray(image.Rect(0, 0, 2, 2)))
	if _, err := ReadScene(plain.Bytes()); err != ErrNoCode {
		t.Errorf("ReadScene(foreign PNG) error = %v, want ErrNoCode", err)
	}
	if _, err := ReadScene([]byte("hello")); err == nil {
		t.Error("ReadScene(text) succeeded")
	}
	if _, err := ReadScene(jpg[:10]); err == nil {
		t.Error("ReadScene(truncated JPEG) succeeded")
	}
}

func TestImagesAreDeterministic(t *testing.T) {
	a, b := newServer(t), newServer(t)
	body := `{"scene":"same","width":300,"line_color":{"r":1,"g":2,"b":3}}`
	first := mint(t, a, a.Token(), body).body
	second := mint(t, a, a.Token(), body).body
	other := mint(t, b, b.Token(), body).body
	if !bytes.Equal(first, second) || !bytes.Equal(first, other) {
		t.Error("the same request gave different bytes")
	}
	if bytes.Equal(first, mint(t, a, a.Token(), `{"scene":"different","width":300,"line_color":{"r":1,"g":2,"b":3}}`).body) {
		t.Error("different scenes gave the same bytes")
	}
}

func TestServersShareNothing(t *testing.T) {
	a, b := newServer(t), newServer(t)
	if a.AppSecret() == b.AppSecret() {
		t.Error("two servers have the same secret")
	}
	wantCode(t, mint(t, b, a.Token(), `{"scene":"a"}`), 40001)
	a.FailNext(1, -1)
	wantCode(t, mint(t, b, b.Token(), `{"scene":"a"}`), 0)
	a.Advance(3 * time.Hour)
	if b.Now().After(a.Now()) || a.Now().Sub(b.Now()) < 3*time.Hour-time.Minute {
		t.Error("Advance on one server moved the other's clock")
	}
	if len(b.Requests()) != 2 || len(a.Requests()) != 0 {
		t.Errorf("requests: a=%d b=%d, want 0 and 2", len(a.Requests()), len(b.Requests()))
	}
}

func TestLatency(t *testing.T) {
	s := newServer(t, WithLatency(200*time.Millisecond))
	hc := &http.Client{Timeout: 20 * time.Millisecond}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/wxa/getwxacodeunlimit", strings.NewReader(`{"scene":"a"}`))
	if _, err := hc.Do(req); err == nil {
		t.Error("a 20 ms client got an answer from a server 200 ms slow")
	}
}

func TestConcurrentUse(t *testing.T) {
	s := newServer(t)
	tok := s.Token()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			body := `{"scene":"n=` + string(rune('a'+i%26)) + `"}`
			if a := mint(t, s, tok, body); a.errcode != 0 {
				t.Errorf("errcode %d", a.errcode)
			}
			if i%10 == 0 {
				s.Advance(time.Second)
				_ = s.Requests()
			}
		})
	}
	wg.Wait()
	if got := len(s.Requests()); got != 40 {
		t.Errorf("recorded %d requests, want 40", got)
	}
}

func TestFailEvery(t *testing.T) {
	s := newServer(t, WithFailEvery(3, -1))
	tok := s.Token()
	var got []int
	for range 7 {
		got = append(got, mint(t, s, tok, `{"scene":"a"}`).errcode)
	}
	if want := []int{0, 0, -1, 0, 0, -1, 0}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("errcodes = %v, want %v", got, want)
	}
}

func TestConns(t *testing.T) {
	s := newServer(t)
	tok := s.Token()
	for range 5 {
		mint(t, s, tok, `{"scene":"a"}`) // http.DefaultTransport keeps the connection
	}
	if got := s.Conns(); got != 1 {
		t.Errorf("Conns = %d after 5 sequential calls on one transport, want 1", got)
	}
}

// TestTheFakeTellsTheTruth: the service's messages, refused calls recorded
// with what they carried, unknown fields kept, and metadata of any length.
func TestTheFakeTellsTheTruth(t *testing.T) {
	s := newServer(t)
	tok := s.Token()
	t.Run("messages", func(t *testing.T) {
		for code, want := range map[int]string{
			40001: "invalid credential, access_token is invalid or not latest, could get access_token by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r rid: ",
			48001: "api unauthorized rid: ",
			40164: "not in whitelist rid: ",
		} {
			s.FailNext(1, code)
			if a := mint(t, s, tok, `{"scene":"a"}`); a.errcode != code || !strings.Contains(a.errmsg, want) {
				t.Errorf("errcode %d answered %s, want a message with %q", code, a.body, want)
			}
		}
	})
	t.Run("refused calls are recorded", func(t *testing.T) {
		before := len(s.Requests())
		s.FailNext(1, 45009)
		wantCode(t, mint(t, s, tok, `{"scene":"q=1","width":600,"mystery":true}`), 45009)
		wantCode(t, mint(t, s, "wrong-token", `{"scene":"q=2","page":"pages/a"}`), 40001)
		reqs := s.Requests()[before:]
		if len(reqs) != 2 {
			t.Fatalf("%d requests recorded, want 2", len(reqs))
		}
		if r := reqs[0]; r.Scene != "q=1" || r.Width != 600 || !slices.Equal(r.Fields, []string{"scene", "width", "mystery"}) || r.ErrCode != 45009 {
			t.Errorf("recorded %+v", r)
		}
		if r := reqs[1]; r.Scene != "q=2" || r.Page != "pages/a" || r.ErrCode != 40001 {
			t.Errorf("recorded %+v", r)
		}
	})
	t.Run("a 70 KB page", func(t *testing.T) {
		page := "pages/" + strings.Repeat("p", 70<<10)
		for _, hyaline := range []bool{false, true} {
			a := mint(t, s, tok, fmt.Sprintf(`{"scene":"long","page":%q,"is_hyaline":%v}`, page, hyaline))
			wantCode(t, a, 0)
			code, err := ReadCode(a.body)
			if err != nil || code.Page != page || code.Scene != "long" {
				t.Errorf("hyaline=%v: ReadCode = %.40v, %v", hyaline, code, err)
			}
			if _, _, err := image.Decode(bytes.NewReader(a.body)); err != nil {
				t.Errorf("hyaline=%v: the image does not decode: %v", hyaline, err)
			}
		}
	})
}

// TestServeOnAChosenListener: WithListener serves the fake where it is
// told; an unspecified host gets a loopback URL; Close closes the listener.
func TestServeOnAChosenListener(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", ":0"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		srv := NewServer(WithListener(l))
		if want := "http://127.0.0.1:" + strconv.Itoa(port); srv.URL != want {
			t.Errorf("%s: URL = %q, want %q", addr, srv.URL, want)
		}
		resp, err := http.Get(srv.URL + "/cgi-bin/token?grant_type=client_credential&appid=" + srv.AppID() + "&secret=" + srv.AppSecret())
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || srv.TokenRequests() != 1 {
			t.Errorf("%s: status %d, %d token requests", addr, resp.StatusCode, srv.TokenRequests())
		}
		srv.Close()
		if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			_ = c.Close()
			t.Errorf("%s: still accepting after Close", addr)
		}
	}
}

// TestMiddlewareAndForgetRequests: WithMiddleware sees every request and
// may answer paths of its own; ForgetRequests empties Requests.
func TestMiddlewareAndForgetRequests(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	srv := NewServer(WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.URL.Path)
			mu.Unlock()
			if r.URL.Path == "/own" {
				_, _ = w.Write([]byte("mine"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/own")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "mine" {
		t.Errorf("/own answered %q", body)
	}
	resp, err = http.Post(srv.URL+"/wxa/getwxacodeunlimit?access_token="+srv.Token(), "application/json", strings.NewReader(`{"scene":"a=1"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	mu.Lock()
	got := strings.Join(seen, " ")
	mu.Unlock()
	if got != "/own /wxa/getwxacodeunlimit" {
		t.Errorf("the middleware saw %q", got)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("%d requests recorded, want 1", n)
	}
	srv.ForgetRequests()
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests after ForgetRequests, want 0", n)
	}
}

// TestAdvanceSaturates: the clock's lead stops at the largest Duration
// instead of wrapping into the past, however often Advance is called.
func TestAdvanceSaturates(t *testing.T) {
	s := newServer(t)
	start := s.Now()
	for range 40 {
		s.Advance(10 * 365 * 24 * time.Hour)
	}
	if got := s.Now(); !got.After(start.Add(290 * 365 * 24 * time.Hour)) {
		t.Errorf("after 400 years of Advance the clock says %v", got)
	}
	s.Advance(-1 << 62)
	s.Advance(-1 << 62)
	s.Advance(-1 << 62)
	if got := s.Now(); !got.Before(start) {
		t.Errorf("after moving back, the clock says %v, want before %v", got, start)
	}
}

// TestForgetFailures: the queued failures go; later calls answer images.
func TestForgetFailures(t *testing.T) {
	s := newServer(t)
	s.FailNext(3, 45009)
	wantCode(t, mint(t, s, s.Token(), `{"scene":"a"}`), 45009)
	s.ForgetFailures()
	wantCode(t, mint(t, s, s.Token(), `{"scene":"a"}`), 0)
}
