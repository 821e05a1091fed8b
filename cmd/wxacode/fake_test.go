package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

// fakeProc is a "wxacode fake" process started by a test.
type fakeProc struct {
	cmd    *exec.Cmd
	url    string
	appID  string
	secret string
	lines  chan string // stderr after the first line
}

var listening = regexp.MustCompile(`^wxacode fake: listening on (http://127\.0\.0\.1:\d+) \(appid (\S+), secret (\S+)\)$`)

// startFake runs the built command with args (-addr :0 added), reads the
// port from its first line, and stops it with SIGTERM when the test ends,
// checking that it exits 0.
func startFake(t *testing.T, args ...string) *fakeProc {
	t.Helper()
	cmd := command(t, nil, "", append([]string{"fake", "-addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &fakeProc{cmd: cmd, lines: make(chan string, 1000)}
	sc := bufio.NewScanner(stderr)
	first := make(chan string, 1)
	go func() {
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	select {
	case line := <-first:
		m := listening.FindStringSubmatch(line)
		if m == nil {
			_ = cmd.Process.Kill()
			t.Fatalf("first line %q, want %q", line, listening)
		}
		p.url, p.appID, p.secret = m[1], m[2], m[3]
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("no first line within 20 s")
	}
	t.Cleanup(func() {
		if cmd.ProcessState != nil {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("wxacode fake after SIGTERM: %v, want exit 0", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("wxacode fake did not stop within 10 s of SIGTERM")
		}
	})
	return p
}

// do sends a request to the fake and returns the status and body.
func (p *fakeProc) do(t *testing.T, method, path, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// token gets a valid token from the control endpoint.
func (p *fakeProc) token(t *testing.T) string {
	t.Helper()
	status, body := p.do(t, "GET", "/wxacodetest/token", "", nil)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if status != 200 || json.Unmarshal(body, &out) != nil || out.AccessToken == "" {
		t.Fatalf("GET /wxacodetest/token: %d %s", status, body)
	}
	return out.AccessToken
}

// mint calls getwxacodeunlimit with token in param and body.
func (p *fakeProc) mint(t *testing.T, param, token, body string) (int, []byte) {
	t.Helper()
	q := ""
	if param != "" {
		q = "?" + param + "=" + url.QueryEscape(token)
	}
	return p.do(t, "POST", "/wxa/getwxacodeunlimit"+q, "application/json", []byte(body))
}

// errcode returns the errcode of a JSON answer, 0 for an image.
func errcode(t *testing.T, body []byte) int {
	t.Helper()
	if !bytes.HasPrefix(body, []byte("{")) {
		return 0
	}
	var e struct {
		ErrCode int `json:"errcode"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	return e.ErrCode
}

// TestFakeControlEndpoints: every control endpoint through the built
// command, as a test in another language would drive it.
func TestFakeControlEndpoints(t *testing.T) {
	p := startFake(t)
	tok := p.token(t)

	// A code, and what /read says of it.
	status, img := p.mint(t, "access_token", tok, `{"scene":"id=42","page":"pages/a","env_version":"trial","check_path":false}`)
	if status != 200 || errcode(t, img) != 0 {
		t.Fatalf("mint: %d %s", status, img[:min(len(img), 200)])
	}
	status, body := p.do(t, "POST", "/wxacodetest/read", "image/jpeg", img)
	if status != 200 || string(bytes.TrimSpace(body)) != `{"scene":"id=42","page":"pages/a","env_version":"trial"}` {
		t.Errorf("read: %d %s", status, body)
	}

	// fail-next: the next two calls answer 45009, then images again.
	if status, body := p.do(t, "POST", "/wxacodetest/fail-next", "application/json", []byte(`{"n": 2, "errcode": 45009}`)); status != 200 {
		t.Fatalf("fail-next: %d %s", status, body)
	}
	for i, want := range []int{45009, 45009, 0} {
		if _, b := p.mint(t, "access_token", tok, `{"scene":"f=`+string(rune('0'+i))+`"}`); errcode(t, b) != want {
			t.Errorf("call %d after fail-next: errcode %d, want %d", i, errcode(t, b), want)
		}
	}

	// requests: every call, oldest first, in snake case.
	status, body = p.do(t, "GET", "/wxacodetest/requests", "", nil)
	var reqs []map[string]any
	if status != 200 || json.Unmarshal(body, &reqs) != nil || len(reqs) != 4 {
		t.Fatalf("requests: %d %s", status, body)
	}
	first := reqs[0]
	for k, want := range map[string]any{"scene": "id=42", "page": "pages/a", "check_path": false, "env_version": "trial", "width": float64(430), "auto_color": false, "is_hyaline": false, "errcode": float64(0)} {
		if first[k] != want {
			t.Errorf("requests[0][%q] = %v, want %v", k, first[k], want)
		}
	}
	if lc, ok := first["line_color"].(map[string]any); !ok || lc["r"] != float64(0) {
		t.Errorf("requests[0].line_color = %v", first["line_color"])
	}
	if ts, ok := first["time"].(string); !ok || func() bool { _, err := time.Parse(time.RFC3339, ts); return err != nil }() {
		t.Errorf("requests[0].time = %v, want RFC 3339", first["time"])
	}
	if reqs[1]["errcode"] != float64(45009) || reqs[3]["errcode"] != float64(0) {
		t.Errorf("errcodes recorded: %v %v", reqs[1]["errcode"], reqs[3]["errcode"])
	}
	if status, _ := p.do(t, "DELETE", "/wxacodetest/requests", "", nil); status != 200 {
		t.Errorf("DELETE requests: %d", status)
	}
	if _, body := p.do(t, "GET", "/wxacodetest/requests", "", nil); string(bytes.TrimSpace(body)) != "[]" {
		t.Errorf("after DELETE: %s, want []", body)
	}

	// expire-tokens: the token answers 42001.
	if status, _ := p.do(t, "POST", "/wxacodetest/expire-tokens", "", nil); status != 200 {
		t.Errorf("expire-tokens: %d", status)
	}
	if _, b := p.mint(t, "access_token", tok, `{"scene":"a=1"}`); errcode(t, b) != 42001 {
		t.Errorf("after expire-tokens: errcode %d, want 42001", errcode(t, b))
	}

	// advance: a fresh token expires when the clock passes its life.
	fresh := p.token(t)
	if status, body := p.do(t, "POST", "/wxacodetest/advance", "application/json", []byte(`{"seconds": 7200}`)); status != 200 {
		t.Fatalf("advance: %d %s", status, body)
	}
	if _, b := p.mint(t, "access_token", fresh, `{"scene":"a=1"}`); errcode(t, b) != 42001 {
		t.Errorf("after advance 7200: errcode %d, want 42001", errcode(t, b))
	}
	if _, b := p.mint(t, "access_token", p.token(t), `{"scene":"a=1"}`); errcode(t, b) != 0 {
		t.Errorf("a token issued after advance: errcode %d", errcode(t, b))
	}

	// The token endpoints take the printed credentials.
	status, body = p.do(t, "POST", "/cgi-bin/stable_token", "application/json", []byte(`{"grant_type":"client_credential","appid":"`+p.appID+`","secret":"`+p.secret+`"}`))
	if status != 200 || !strings.Contains(string(body), "access_token") {
		t.Errorf("stable_token with the printed credentials: %d %s", status, body)
	}
}

// TestFakeControlRefusesBadInput: a malformed control request answers 400
// (405, 404) with a JSON error naming what was wrong; the API keeps working.
func TestFakeControlRefusesBadInput(t *testing.T) {
	p := startFake(t)
	tests := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/wxacodetest/fail-next", ``, 400, "empty"},
		{"POST", "/wxacodetest/fail-next", `{"n": 2}`, 400, "errcode"},
		{"POST", "/wxacodetest/fail-next", `{"errcode": 45009}`, 400, `\"n\"`},
		{"POST", "/wxacodetest/fail-next", `{"n": -1, "errcode": 45009}`, 400, `\"n\"`},
		{"POST", "/wxacodetest/fail-next", `{"n": 1.5, "errcode": 45009}`, 400, "JSON"},
		{"POST", "/wxacodetest/fail-next", `{"n": "2", "errcode": 45009}`, 400, "JSON"},
		{"POST", "/wxacodetest/fail-next", `{"n": 1, "errcode": 0}`, 400, "errcode"},
		{"POST", "/wxacodetest/fail-next", `{"n": 1, "errcode": 45009, "x": 1}`, 400, "unknown field"},
		{"POST", "/wxacodetest/fail-next", `{"n": 1, "errcode": 45009} {}`, 400, "more than one"},
		{"POST", "/wxacodetest/fail-next", `[1, 2]`, 400, "JSON"},
		{"POST", "/wxacodetest/advance", `{"seconds": -5}`, 400, "seconds"},
		{"POST", "/wxacodetest/advance", `{"minutes": 5}`, 400, "unknown field"},
		{"POST", "/wxacodetest/advance", `not json`, 400, "JSON"},
		{"POST", "/wxacodetest/read", `<html>not an image</html>`, 400, "not an image the fake made"},
		{"POST", "/wxacodetest/read", "\xff\xd8\xff\xe0 a JPEG of someone else's \xff\xd9", 400, "not an image the fake made"},
		{"GET", "/wxacodetest/fail-next", ``, 405, "POST"},
		{"PUT", "/wxacodetest/requests", ``, 405, "GET, DELETE"},
		{"GET", "/wxacodetest/nope", ``, 404, "no control endpoint"},
		// Near misses answer JSON too, never the API's text or a redirect.
		{"GET", "/WXACODETEST/requests", ``, 404, "did you mean /wxacodetest/requests"},
		{"GET", "//wxacodetest/requests", ``, 404, "did you mean /wxacodetest/requests"},
		{"GET", "/wxacodetest//requests", ``, 404, "did you mean /wxacodetest/requests"},
		{"GET", "/wxacodetest/requests/", ``, 404, "did you mean /wxacodetest/requests"},
		{"POST", "/wxacodetest/Fail-Next", `{"n": 1, "errcode": 45009}`, 404, "did you mean /wxacodetest/fail-next"},
		{"GET", "/wxacodetest", ``, 404, "no control endpoint"},
		{"GET", "/WxacodeTest/Nope", ``, 404, "no control endpoint"},
	}
	for _, tc := range tests {
		status, body := p.do(t, tc.method, tc.path, "application/json", []byte(tc.body))
		var out struct {
			Error string `json:"error"`
		}
		if status != tc.status || json.Unmarshal(body, &out) != nil || !strings.Contains(string(body), tc.want) || out.Error == "" {
			t.Errorf("%s %s %q: %d %s; want %d and a JSON error about %s", tc.method, tc.path, tc.body, status, body, tc.status, tc.want)
		}
	}
	// Nothing was queued, and the API answers as before.
	if _, b := p.mint(t, "access_token", p.token(t), `{"scene":"a=1"}`); errcode(t, b) != 0 {
		t.Errorf("after bad control requests: errcode %d", errcode(t, b))
	}
}

// TestFakeFlags: each flag maps to the wxacodetest option of its meaning.
func TestFakeFlags(t *testing.T) {
	t.Run("-appid -secret", func(t *testing.T) {
		p := startFake(t, "-appid", "wxmine", "-secret", "s3cret-of-the-test")
		if p.appID != "wxmine" || p.secret != "s3cret-of-the-test" {
			t.Errorf("printed appid %q secret %q", p.appID, p.secret)
		}
		_, body := p.do(t, "POST", "/cgi-bin/stable_token", "application/json", []byte(`{"grant_type":"client_credential","appid":"wxmine","secret":"wrong"}`))
		if errcode(t, body) != 40125 {
			t.Errorf("a wrong secret: %s", body)
		}
	})
	t.Run("-quota", func(t *testing.T) {
		p := startFake(t, "-quota", "2")
		tok := p.token(t)
		var got []int
		for range 3 {
			_, b := p.mint(t, "access_token", tok, `{"scene":"a=1"}`)
			got = append(got, errcode(t, b))
		}
		if got[0] != 0 || got[1] != 0 || got[2] != 45009 {
			t.Errorf("-quota 2: errcodes %v, want 0 0 45009", got)
		}
		free := startFake(t, "-quota", "0")
		ftok := free.token(t)
		for i := range 20 {
			if _, b := free.mint(t, "access_token", ftok, `{"scene":"a=1"}`); errcode(t, b) != 0 {
				t.Fatalf("-quota 0: call %d answered %d", i, errcode(t, b))
			}
		}
	})
	t.Run("-latency", func(t *testing.T) {
		p := startFake(t, "-latency", "300ms")
		tok := p.token(t)
		start := time.Now()
		p.mint(t, "access_token", tok, `{"scene":"a=1"}`)
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("a call took %v under -latency 300ms", d)
		}
	})
	t.Run("-pages", func(t *testing.T) {
		p := startFake(t, "-pages", "pages/a,pages/b")
		tok := p.token(t)
		for page, want := range map[string]int{"pages/a": 0, "pages/b": 0, "pages/c": 41030} {
			if _, b := p.mint(t, "access_token", tok, `{"scene":"a=1","page":"`+page+`"}`); errcode(t, b) != want {
				t.Errorf("page %s: errcode %d, want %d", page, errcode(t, b), want)
			}
		}
	})
	t.Run("-text-plain-errors", func(t *testing.T) {
		p := startFake(t, "-text-plain-errors")
		resp, err := http.Post(p.url+"/wxa/getwxacodeunlimit", "application/json", strings.NewReader(`{"scene":"a=1"}`))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type of an error = %q, want text/plain", ct)
		}
	})
	t.Run("-open-api", func(t *testing.T) {
		p := startFake(t, "-open-api")
		if _, b := p.mint(t, "", "", `{"scene":"a=1"}`); errcode(t, b) != 0 {
			t.Errorf("a call without a token: errcode %d, want an image", errcode(t, b))
		}
	})
	t.Run("-cloudbase-tokens", func(t *testing.T) {
		p := startFake(t, "-cloudbase-tokens")
		if _, b := p.mint(t, "cloudbase_access_token", p.token(t), `{"scene":"a=1"}`); errcode(t, b) != 0 {
			t.Errorf("cloudbase_access_token: errcode %d, want an image", errcode(t, b))
		}
	})
	t.Run("-v", func(t *testing.T) {
		quiet := startFake(t)
		quiet.mint(t, "access_token", quiet.token(t), `{"scene":"q=1"}`)
		loud := startFake(t, "-v")
		loud.mint(t, "access_token", loud.token(t), `{"scene":"id=7"}`)
		loud.mint(t, "access_token", "not-a-token", `{"scene":"id=8"}`)
		for _, want := range []string{`/wxa/getwxacodeunlimit scene="id=7" errcode=0`, `/wxa/getwxacodeunlimit scene="id=8" errcode=40001`} {
			select {
			case line := <-loud.lines:
				if !strings.HasSuffix(line, want) || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT`).MatchString(line) {
					t.Errorf("-v line %q, want the time and %q", line, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no -v line for %s", want)
			}
		}
		// Without -v nothing follows the first line.
		_ = quiet.cmd.Process.Signal(syscall.SIGTERM)
		_ = quiet.cmd.Wait()
		for line := range quiet.lines {
			t.Errorf("without -v, stderr has %q", line)
		}
	})
}

// TestFakeServesTheLibrary: the command is a fake worth pointing a real
// client at: the CLI's own batch mints against it.
func TestFakeServesTheLibrary(t *testing.T) {
	p := startFake(t)
	in := writeFile(t, "s.txt", "a=1\nb=2\n")
	out := t.TempDir()
	env := map[string]string{"WECHAT_APPID": p.appID, "WECHAT_SECRET": p.secret}
	if res := runBinary(t, env, "", "batch", "-base-url", p.url, "-in", in, "-out", out); res.code != exitOK {
		t.Fatalf("batch against wxacode fake: exit %d, %s", res.code, res.stderr)
	}
	data := readAll(t, out+"/a%3D1.jpg")
	if scene, _ := wxacodetest.ReadScene([]byte(data)); scene != "a=1" {
		t.Errorf("the image holds scene %q", scene)
	}
}

// TestFakeBadFlags: bad flags and an address in use exit 2 with one line.
func TestFakeBadFlags(t *testing.T) {
	p := startFake(t)
	busy := strings.TrimPrefix(p.url, "http://")
	for _, args := range [][]string{{"fake", "-quota", "-1"}, {"fake", "-addr", busy}, {"fake", "-addr", "nonsense"}, {"fake", "extra"}} {
		res := runBinary(t, nil, "", args...)
		if res.code != exitUsage || strings.Count(res.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, res.code, res.stderr)
		}
	}
}

// TestFakeStopsOnSIGINT: -addr :0 (every interface, a free port) prints the
// loopback URL; SIGINT ends the fake with exit 0, as SIGTERM does.
func TestFakeStopsOnSIGINT(t *testing.T) {
	cmd := command(t, nil, "", "fake", "-addr", ":0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil || !listening.MatchString(strings.TrimSuffix(line, "\n")) {
		t.Fatalf("first line %q (%v)", line, err)
	}
	m := listening.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
	resp, err := http.Get(m[1] + "/wxacodetest/token")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGINT: %v, want exit 0", err)
	}
}

// TestFakeClockAndFailureQueue: advance moves the clock at most 100 years
// in all (repeated calls never wrap it around), and DELETE fail-next
// empties the queue of failures.
func TestFakeClockAndFailureQueue(t *testing.T) {
	p := startFake(t)
	var last time.Time
	for i := range 10 {
		status, body := p.do(t, "POST", "/wxacodetest/advance", "application/json", []byte(`{"seconds": 315360000}`))
		var out struct {
			Now time.Time `json:"now"`
		}
		if status != 200 || json.Unmarshal(body, &out) != nil || !out.Now.After(last) {
			t.Fatalf("advance %d: %d %s; want a clock further on than %v", i, status, body, last)
		}
		last = out.Now
	}
	if status, body := p.do(t, "POST", "/wxacodetest/advance", "application/json", []byte(`{"seconds": 315360000}`)); status != 400 || !strings.Contains(string(body), "100 years") {
		t.Errorf("advance past 100 years: %d %s, want 400", status, body)
	}
	if last.Year() < time.Now().Year()+99 || last.Year() > time.Now().Year()+101 {
		t.Errorf("the clock says %v after 100 years", last)
	}

	p = startFake(t)
	if status, body := p.do(t, "POST", "/wxacodetest/fail-next", "application/json", []byte(`{"n": 3, "errcode": 45009}`)); status != 200 {
		t.Fatalf("fail-next: %d %s", status, body)
	}
	if _, b := p.mint(t, "access_token", p.token(t), `{"scene":"a=1"}`); errcode(t, b) != 45009 {
		t.Fatalf("first call after fail-next: errcode %d, want 45009", errcode(t, b))
	}
	if status, body := p.do(t, "DELETE", "/wxacodetest/fail-next", "", nil); status != 200 || !strings.Contains(string(body), "ok") {
		t.Fatalf("DELETE fail-next: %d %s", status, body)
	}
	if _, b := p.mint(t, "access_token", p.token(t), `{"scene":"a=1"}`); errcode(t, b) != 0 {
		t.Errorf("after DELETE fail-next: errcode %d, want an image", errcode(t, b))
	}
}
