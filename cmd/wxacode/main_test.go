package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

// result is what one in-process run of the command printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command in-process with env as its environment.
func runCLI(ctx context.Context, t *testing.T, env map[string]string, hook func(a *app), args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{
		stdin:  strings.NewReader(""),
		stdout: &stdout,
		stderr: &stderr,
		getenv: func(k string) string { return env[k] },
	}
	if hook != nil {
		hook(a)
	}
	code := a.run(ctx, args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// fakeEnv starts a fake and returns it with the environment that points
// the command's credentials at it.
func fakeEnv(t *testing.T, opts ...wxacodetest.ServerOption) (*wxacodetest.Server, map[string]string) {
	t.Helper()
	srv := wxacodetest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv, map[string]string{"WECHAT_APPID": srv.AppID(), "WECHAT_SECRET": srv.AppSecret()}
}

// decodeFile decodes an image file and returns its format, width and scene.
func decodeFile(t *testing.T, path string) (string, int, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s does not decode: %v", path, err)
	}
	scene, err := wxacodetest.ReadScene(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return format, img.Bounds().Dx(), scene
}

func TestGetFake(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "code.jpg")
	res := runCLI(context.Background(), t, nil, nil, "get", "-fake", "-scene", "id=42", "-o", out)
	if res.code != exitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	format, width, scene := decodeFile(t, out)
	if format != "jpeg" || width != 430 || scene != "id=42" {
		t.Errorf("got %s %dpx scene %q, want jpeg 430px id=42", format, width, scene)
	}
	if !strings.Contains(res.stderr, "wrote "+out) {
		t.Errorf("stderr = %q", res.stderr)
	}
}

func TestGetToStdout(t *testing.T) {
	res := runCLI(context.Background(), t, nil, nil, "get", "-fake", "-scene", "id=7", "-transparent", "-o", "-")
	if res.code != exitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if scene, err := wxacodetest.ReadScene([]byte(res.stdout)); err != nil || scene != "id=7" {
		t.Errorf("stdout image scene = %q, %v", scene, err)
	}
	if !strings.HasPrefix(res.stdout, "\x89PNG") {
		t.Error("a transparent code is not PNG")
	}
}

func TestGetSendsEveryFlag(t *testing.T) {
	srv, env := fakeEnv(t, wxacodetest.WithPublishedPages("pages/item/index"))
	out := filepath.Join(t.TempDir(), "c.png")
	res := runCLI(context.Background(), t, env, nil, "get", "-base-url", srv.URL, "-scene", "id=9", "-page", "pages/item/index",
		"-width", "600", "-env", "trial", "-color", "#FF8000", "-transparent", "-o", out)
	if res.code != exitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("requests = %d", len(reqs))
	}
	r := reqs[0]
	if r.Scene != "id=9" || r.Page != "pages/item/index" || r.Width != 600 || r.EnvVersion != "trial" || !r.IsHyaline ||
		r.LineColor != (wxacodetest.Color{R: 0xff, G: 0x80}) || !r.CheckPath {
		t.Errorf("sent %+v", r)
	}
	if format, width, _ := decodeFile(t, out); format != "png" || width != 600 {
		t.Errorf("file is %s %dpx, want png 600px", format, width)
	}
}

func TestGetWithAccessToken(t *testing.T) {
	srv, _ := fakeEnv(t)
	env := map[string]string{"WECHAT_ACCESS_TOKEN": srv.Token()}
	res := runCLI(context.Background(), t, env, nil, "get", "-base-url", srv.URL, "-scene", "a=1", "-skip-path-check", "-auto-color", "-o", filepath.Join(t.TempDir(), "a.jpg"))
	if res.code != exitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if r := srv.Requests()[0]; r.Token != srv.Token() || r.CheckPath || !r.AutoColor {
		t.Errorf("sent %+v", r)
	}
	if srv.TokenRequests() != 0 {
		t.Error("fetched a token despite WECHAT_ACCESS_TOKEN")
	}
}

func TestGetAPIError(t *testing.T) {
	srv, env := fakeEnv(t, wxacodetest.WithPublishedPages("pages/index/index"))
	out := filepath.Join(t.TempDir(), "x.jpg")
	res := runCLI(context.Background(), t, env, nil, "get", "-base-url", srv.URL, "-scene", "a=1", "-page", "pages/draft/index", "-o", out)
	if res.code != exitFailed || !strings.Contains(res.stderr, "errcode 41030") {
		t.Errorf("exit %d, stderr %q; want 1 and errcode 41030", res.code, res.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a file was written for a failed code")
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"get", "-h"}, {"batch", "-h"}} {
		res := runCLI(context.Background(), t, nil, nil, args...)
		if res.code != exitOK || !strings.Contains(res.stdout, "Usage") || !strings.Contains(res.stdout, "wxacode get -fake -scene") && args[0] != "batch" {
			t.Errorf("%v: exit %d, stdout %q", args, res.code, res.stdout)
		}
		// Every exit code, the signals' too, and what -fake's quota is.
		for _, want := range []string{"Exit codes", "0 ", "1 ", "2 ", "130", "143", "129", "5000 calls a minute"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("%v: help lacks %q", args, want)
			}
		}
	}
	// "wxacode help batch" is "wxacode batch -h".
	for _, cmd := range []string{"get", "batch", "fake"} {
		help := runBinary(t, nil, "", "help", cmd)
		direct := runBinary(t, nil, "", cmd, "-h")
		if help.code != exitOK || help.stdout != direct.stdout || help.stdout == "" {
			t.Errorf("help %s: exit %d, and its text differs from %s -h", cmd, help.code, cmd)
		}
	}
	// Errors about a flag name the flag, not the API's field.
	for flag, value := range map[string]string{"-env": "prod", "-width": "100"} {
		res := runBinary(t, nil, "", "get", "-fake", "-scene", "a=1", "-o", filepath.Join(t.TempDir(), "a.jpg"), flag, value)
		if res.code != exitUsage || !strings.Contains(res.stderr, flag+" ") || strings.Contains(res.stderr, "env_version") || strings.Contains(res.stderr, "must be 0") {
			t.Errorf("%s %s: exit %d, stderr %q; want 2 and a line naming %s", flag, value, res.code, res.stderr, flag)
		}
	}
	// The version: the module's, or (devel) from a checkout without one.
	v := runBinary(t, nil, "", "-version")
	if !regexp.MustCompile(`^wxacode (\(devel\)|v\S+)\n$`).MatchString(v.stdout) || v.code != exitOK {
		t.Errorf("-version: exit %d, stdout %q", v.code, v.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	scenes := write("scenes.txt", "a=1\n")
	empty := write("empty.txt", "\n  \n")
	badCSV := write("bad.csv", "scene,page\na=1,pages/a\nb=2\n")
	notDir := write("file", "x")
	out := filepath.Join(dir, "out")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no command", nil, nil, ""},
		{"unknown command", nil, []string{"mint"}, "unknown command"},
		{"get without scene", nil, []string{"get", "-fake", "-o", "x"}, "-scene is required"},
		{"get without output", nil, []string{"get", "-fake", "-scene", "a"}, "-o is required"},
		{"unknown flag", nil, []string{"get", "-fake", "-bogus"}, "not defined: -bogus"},
		{"stray argument", nil, []string{"get", "-fake", "-scene", "a", "-o", "x", "extra"}, "unexpected argument"},
		{"bad colour", nil, []string{"get", "-fake", "-scene", "a", "-o", "x", "-color", "red"}, "RRGGBB"},
		{"colour and auto colour", nil, []string{"get", "-fake", "-scene", "a", "-o", "x", "-color", "000000", "-auto-color"}, "exclude"},
		{"width", nil, []string{"get", "-fake", "-scene", "a", "-o", "x", "-width", "100"}, "-width 100 must be from 280 to 1280"},
		{"env", nil, []string{"get", "-fake", "-scene", "a", "-o", "x", "-env", "beta"}, `-env "beta" must be release, trial or develop`},
		{"batch env", nil, []string{"batch", "-fake", "-in", "x", "-out", "y", "-env", "prod"}, `-env "prod"`},
		{"batch width", nil, []string{"batch", "-fake", "-in", "x", "-out", "y", "-width", "100"}, "-width 100"},
		{"page", nil, []string{"get", "-fake", "-scene", "a", "-o", "x", "-page", "/pages/a"}, `-page "/pages/a" must not start`},
		{"invalid scene", nil, []string{"get", "-fake", "-scene", "a b", "-o", "x"}, `-scene "a b" character`},
		{"fake and base url", nil, []string{"get", "-fake", "-base-url", "http://x", "-scene", "a", "-o", "x"}, "exclude"},
		{"no credentials", map[string]string{"WECHAT_APPID": "wx1"}, []string{"get", "-scene", "a", "-o", "x"}, "WECHAT_SECRET"},
		{"get into a missing directory", nil, []string{"get", "-fake", "-scene", "a", "-o", filepath.Join(dir, "no", "such", "x.jpg")}, "not writable"},
		{"batch without in", nil, []string{"batch", "-fake", "-out", out}, "-in is required"},
		{"batch without out", nil, []string{"batch", "-fake", "-in", scenes}, "-out is required"},
		{"missing input", nil, []string{"batch", "-fake", "-in", filepath.Join(dir, "nope.txt"), "-out", out}, "no such file"},
		{"empty input", nil, []string{"batch", "-fake", "-in", empty, "-out", out}, "no scenes"},
		{"bad csv", nil, []string{"batch", "-fake", "-in", badCSV, "-out", out}, "wrong number of fields"},
		{"unwritable dir", nil, []string{"batch", "-fake", "-in", scenes, "-out", filepath.Join(notDir, "sub")}, "output directory"},
		{"concurrency", nil, []string{"batch", "-fake", "-in", scenes, "-out", out, "-concurrency", "0"}, "-concurrency"},
		{"rate", nil, []string{"batch", "-fake", "-in", scenes, "-out", out, "-rate", "fast"}, "-rate"},
		{"rate unit", nil, []string{"batch", "-fake", "-in", scenes, "-out", out, "-rate", "10/day"}, "unit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(context.Background(), t, tc.env, nil, tc.args...)
			if res.code != exitUsage {
				t.Errorf("exit %d, want 2; stderr %q", res.code, res.stderr)
			}
			if tc.want == "" {
				return
			}
			if lines := strings.Count(res.stderr, "\n"); lines != 1 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("stderr = %q, want one line mentioning %q", res.stderr, tc.want)
			}
		})
	}
}

// batchInput writes n scenes as CSV. Every 100th (i%100 == 50) asks for an
// unpublished page, every 250th has a space (invalid locally), and the
// first five rows come again at the end (duplicates).
func batchInput(t *testing.T, n int) (path string, wantFail map[string]string, wantImages map[string]string) {
	t.Helper()
	wantFail = map[string]string{}   // scene -> errcode
	wantImages = map[string]string{} // file -> scene
	var b strings.Builder
	b.WriteString("scene,page\n")
	var rows []string
	for i := range n {
		scene, page := fmt.Sprintf("id=%d&k=/x", i), ""
		switch {
		case i%250 == 0:
			scene = fmt.Sprintf("bad scene %d", i)
			wantFail[scene] = ""
		case i%100 == 50:
			page = "pages/missing/index"
			wantFail[scene] = "41030"
		default:
			wantImages[fileBase(scene)+".jpg"] = scene
		}
		rows = append(rows, fmt.Sprintf("%q,%s\n", scene, page))
	}
	for _, r := range rows {
		b.WriteString(r)
	}
	for _, r := range rows[:5] {
		b.WriteString(r)
	}
	path = filepath.Join(t.TempDir(), "scenes.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, wantFail, wantImages
}

// TestBatchInterruptedAndResumed: 400 scenes with injected failures, a run
// cancelled midway, and a second run that finishes: every image present
// once and decodable, the failures file exact, the rate limit held.
func TestBatchInterruptedAndResumed(t *testing.T) {
	// 400 scenes keep every kind of row (unpublished pages, invalid
	// scenes, duplicates) while the suite stays fast under -race.
	const n, rate, cancelAt = 400, 500, 120 // rate: a second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen atomic.Int64 // the run is cancelled after cancelAt calls reach the API
	cancelAfter := wxacodetest.WithMiddleware(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			if strings.HasSuffix(r.URL.Path, "/getwxacodeunlimit") && seen.Add(1) == cancelAt {
				cancel()
			}
		})
	})
	srv, env := fakeEnv(t, wxacodetest.WithPublishedPages("pages/item/index"), cancelAfter)
	in, wantFail, wantImages := batchInput(t, n)
	out := filepath.Join(t.TempDir(), "codes")
	args := []string{"batch", "-base-url", srv.URL, "-in", in, "-out", out, "-page", "pages/item/index",
		"-concurrency", "8", "-rate", fmt.Sprintf("%d/s", rate)}
	srv.FailNext(3, -1) // transient: the client retries

	first := runCLI(ctx, t, env, nil, args...)
	if first.code != exitInterrupted || !strings.Contains(first.stderr, "interrupted") {
		t.Fatalf("first run: exit %d, stderr %q; want 130 and interrupted", first.code, first.stderr)
	}
	checkNoTemps(t, out)
	partial := listImages(t, out)
	if len(partial) < cancelAt-50 || len(partial) >= len(wantImages) {
		t.Fatalf("after the interrupted run %d images, want a part of %d", len(partial), len(wantImages))
	}
	firstCalls := len(srv.Requests())
	srv.FailNext(2, 45011) // quota: the command pauses and tries again

	second := runCLI(context.Background(), t, env, nil, args...)
	if second.code != exitFailed {
		t.Fatalf("second run: exit %d, want 1 (some scenes fail); stderr %q", second.code, second.stderr)
	}
	if want := fmt.Sprintf("%d already present", len(partial)); !strings.Contains(second.stderr, want) || !strings.Contains(second.stderr, "5 duplicates") {
		t.Errorf("summary %q, want %q and 5 duplicates", second.stderr, want)
	}
	checkNoTemps(t, out)

	// Every image exactly once, decodable, made for its scene.
	got := listImages(t, out)
	if len(got) != len(wantImages) {
		t.Errorf("%d images, want %d", len(got), len(wantImages))
	}
	for name, scene := range wantImages {
		if _, _, s := decodeFile(t, filepath.Join(out, name)); s != scene {
			t.Errorf("%s holds scene %q, want %q", name, s, scene)
		}
	}

	// The failures file, exactly.
	fails := readFailures(t, filepath.Join(out, "failures.csv"))
	if len(fails) != len(wantFail) {
		t.Errorf("failures.csv has %d rows, want %d", len(fails), len(wantFail))
	}
	for scene, code := range wantFail {
		f, ok := fails[scene]
		if !ok {
			t.Errorf("failures.csv lacks %q", scene)
			continue
		}
		wantMsg := "invalid scene: character ' ' at byte 3 is not allowed (only 0-9 A-Z a-z !#$&'()*+,/:;=?@-._~)"
		if code == "41030" {
			wantMsg = "invalid page"
		}
		if f[0] != code || f[1] != wantMsg {
			t.Errorf("failure of %q = errcode %q errmsg %q, want %q %q", scene, f[0], f[1], code, wantMsg)
		}
	}

	// The rate held: k calls at `rate` a second, burst b, take at least
	// (k-b)/rate seconds from first to last (delays only stretch that).
	calls := srv.Requests()[firstCalls:]
	span := calls[len(calls)-1].Time.Sub(calls[0].Time)
	burst := (rate + 59) / 60 // wxacode.WithRateLimit's burst: a sixtieth of n
	minSpan := time.Duration(float64(len(calls)-burst) / rate * float64(time.Second) * 0.8)
	if span < minSpan {
		t.Errorf("%d calls in %v, faster than %d/s allows (at least %v)", len(calls), span, rate, minSpan)
	}
}

func checkNoTemps(t *testing.T, dir string) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(dir, ".wxacode-*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func listImages(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, name := range dirNames(t, dir) {
		if strings.HasSuffix(name, ".jpg") || strings.HasSuffix(name, ".png") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// readFailures returns scene -> [errcode, errmsg without the rid] from a
// failures.csv, checking its header.
func readFailures(t *testing.T, path string) map[string][2]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "scene,page,filename,errcode,errmsg" {
		t.Fatalf("header = %v", recs)
	}
	out := map[string][2]string{}
	for _, r := range recs[1:] {
		msg, _, _ := strings.Cut(r[4], " rid: ")
		out[r[0]] = [2]string{r[3], msg}
	}
	return out
}

// TestBatchRerunIsANoOp: after a complete run, running again mints nothing
// and removes a failures file that no longer applies.
func TestBatchRerunIsANoOp(t *testing.T) {
	srv, env := fakeEnv(t)
	in := filepath.Join(t.TempDir(), "s.txt")
	if err := os.WriteFile(in, []byte("a=1\nb=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "codes")
	srv.FailNext(1, 41030)
	if res := runCLI(context.Background(), t, env, nil, "batch", "-base-url", srv.URL, "-in", in, "-out", out); res.code != exitFailed {
		t.Fatalf("first run exit %d, want 1", res.code)
	}
	res := runCLI(context.Background(), t, env, func(a *app) { a.terminal = true }, "batch", "-base-url", srv.URL, "-in", in, "-out", out)
	if res.code != exitOK {
		t.Fatalf("second run exit %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "1/1 done") || !strings.Contains(res.stderr, "ETA") {
		t.Errorf("no progress line on a terminal: %q", res.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "failures.csv")); !os.IsNotExist(err) {
		t.Error("failures.csv kept after everything succeeded")
	}
	calls := len(srv.Requests())
	third := runCLI(context.Background(), t, env, nil, "batch", "-base-url", srv.URL, "-in", in, "-out", out)
	if third.code != exitOK || len(srv.Requests()) != calls || !strings.Contains(third.stderr, "2 already present") {
		t.Errorf("third run: exit %d, %d new calls, stderr %q; want a no-op", third.code, len(srv.Requests())-calls, third.stderr)
	}
}
