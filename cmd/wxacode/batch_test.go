package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

// TestBatchInputFormats: through the built command, every header form
// mints its data rows and never the header itself; one scene per line
// otherwise; "-in -" reads standard input.
func TestBatchInputFormats(t *testing.T) {
	tests := []struct {
		name, input string
		want        map[string]string // file -> page of the code in it
		warn        string            // a line stderr must hold
	}{
		{"page,scene", "page,scene\npages/a,s=1\n,s=2\n", map[string]string{"s%3D1.jpg": "pages/a", "s%3D2.jpg": ""}, ""},
		{"scene alone", "scene\ns=1\n", map[string]string{"s%3D1.jpg": ""}, ""},
		{"semicolons and BOM", "\xef\xbb\xbfScene;Page\ns=1;pages/b\n", map[string]string{"s%3D1.jpg": "pages/b"}, ""},
		{"tabs, quoted", "\"filename\"\t\"scene\"\nposter\ts=1\n", map[string]string{"poster.jpg": ""}, ""},
		{"failures.csv fed back", "scene,errcode,errmsg\ns=1,41030,\"invalid page, rid: 1\"\n", map[string]string{"s%3D1.jpg": ""}, "ignoring the input's unknown columns: errcode, errmsg"},
		{"one scene per line", "s=1\r\nscene=2\n\n", map[string]string{"s%3D1.jpg": "", "scene%3D2.jpg": ""}, ""},
	}
	for _, tc := range tests {
		for _, stdin := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stdin=%v", tc.name, stdin), func(t *testing.T) {
				srv, env := fakeEnv(t)
				out := filepath.Join(t.TempDir(), "codes")
				in, input := writeFile(t, "in.csv", tc.input), ""
				if stdin {
					in, input = "-", tc.input
				}
				res := runBinary(t, env, input, "batch", "-base-url", srv.URL, "-in", in, "-out", out)
				if res.code != exitOK {
					t.Fatalf("exit %d: %s", res.code, res.stderr)
				}
				if got := len(srv.Requests()); got != len(tc.want) {
					t.Errorf("%d calls, want %d", got, len(tc.want))
				}
				for name, page := range tc.want {
					data, err := os.ReadFile(filepath.Join(out, name))
					if err != nil {
						t.Fatalf("%s: %v (dir holds %v)", name, err, dirNames(t, out))
					}
					if code, err := wxacodetest.ReadCode(data); err != nil || code.Page != page {
						t.Errorf("%s: page %q, %v; want %q", name, code.Page, err, page)
					}
				}
				if tc.warn != "" && strings.Count(res.stderr, tc.warn) != 1 {
					t.Errorf("stderr = %q, want one line %q", res.stderr, tc.warn)
				}
			})
		}
	}
}

// TestBatchTimeoutExcludesTheQueue: 8 scenes at 120 a minute take about
// 3 s, longer than -timeout 2s: waiting for the rate limiter must not count.
func TestBatchTimeoutExcludesTheQueue(t *testing.T) {
	srv, env := fakeEnv(t)
	in := writeFile(t, "s.txt", "a=1\na=2\na=3\na=4\na=5\na=6\na=7\na=8\n")
	out := filepath.Join(t.TempDir(), "codes")
	res := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", in, "-out", out, "-rate", "120/min", "-concurrency", "8", "-timeout", "2s")
	if res.code != exitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if got := len(listImages(t, out)); got != 8 {
		t.Errorf("%d images, want 8", got)
	}
}

// TestBadFlagsFailBeforeWork: unusable flags exit 2 with one line, before
// any call and before the output directory is made.
func TestBadFlagsFailBeforeWork(t *testing.T) {
	srv, env := fakeEnv(t)
	dir := t.TempDir()
	in := writeFile(t, "s.txt", "a=1\n")
	out := filepath.Join(dir, "codes")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"get, base URL without scheme", env, []string{"get", "-base-url", "127.0.0.1:1", "-scene", "a=1", "-o", filepath.Join(dir, "a.jpg")}, "-base-url"},
		{"batch, base URL without scheme", env, []string{"batch", "-base-url", "127.0.0.1:1", "-in", in, "-out", out}, "-base-url"},
		{"batch, ftp base URL", env, []string{"batch", "-base-url", "ftp://example.com", "-in", in, "-out", out}, "-base-url"},
		{"get, base URL with a query", env, []string{"get", "-base-url", srv.URL + "?x=1", "-scene", "a=1", "-o", filepath.Join(dir, "a.jpg")}, "-base-url"},
		{"get -o DIR", env, []string{"get", "-base-url", srv.URL, "-scene", "a=1", "-o", dir}, "directory"},
		{"get -o DIR/", env, []string{"get", "-base-url", srv.URL, "-scene", "a=1", "-o", dir + "/"}, "directory"},
		{"batch without credentials", nil, []string{"batch", "-base-url", srv.URL, "-in", in, "-out", out}, "no credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runBinary(t, tc.env, "", tc.args...)
			if res.code != exitUsage || strings.Count(res.stderr, "\n") != 1 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and one line about %q", res.code, res.stderr, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("the output directory was made")
			}
			if n := len(srv.Requests()); n != 0 {
				t.Errorf("%d calls made", n)
			}
			if names := dirNames(t, dir); slices.ContainsFunc(names, func(n string) bool { return n != "s.txt" && n != "codes" }) {
				t.Errorf("files left in the directory: %v", names)
			}
		})
	}
}

// TestBatchOwnsItsDirectory: a second run into a directory a live run
// holds exits 2; a run killed with SIGKILL does not block the next one.
func TestBatchOwnsItsDirectory(t *testing.T) {
	slow := wxacodetest.NewServer(wxacodetest.WithLatency(time.Minute))
	t.Cleanup(slow.Close)
	slowEnv := map[string]string{"WECHAT_APPID": slow.AppID(), "WECHAT_SECRET": slow.AppSecret()}
	in := writeFile(t, "s.txt", "a=1\n")
	out := filepath.Join(t.TempDir(), "codes")

	first := command(t, slowEnv, "", "batch", "-base-url", slow.URL, "-in", in, "-out", out)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Process.Kill(); _ = first.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for slow.Conns() == 0 { // it reached the network: it holds the lock
		if time.Now().After(deadline) {
			t.Fatal("the first run never called the API")
		}
		time.Sleep(10 * time.Millisecond)
	}

	srv, env := fakeEnv(t)
	second := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", in, "-out", out)
	if second.code != exitUsage || strings.Count(second.stderr, "\n") != 1 || !strings.Contains(second.stderr, "in use by another wxacode batch") {
		t.Errorf("second run: exit %d, stderr %q; want 2 and one line saying the directory is in use", second.code, second.stderr)
	}
	if len(srv.Requests()) != 0 {
		t.Error("the second run made calls")
	}

	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	third := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", in, "-out", out)
	if third.code != exitOK {
		t.Errorf("after the holder was killed: exit %d, stderr %q; want 0", third.code, third.stderr)
	}
}

// TestStaleTempsOnlyInTheDirectory: a directory whose name is a glob
// pattern cleans only itself; holding the lock, a run removes every
// temporary file of ours there whatever its age (none can be a live
// run's), so a resume right after a SIGKILL leaves none behind.
func TestStaleTempsOnlyInTheDirectory(t *testing.T) {
	srv, env := fakeEnv(t)
	root := t.TempDir()
	out, sibling := filepath.Join(root, "codes[1]"), filepath.Join(root, "codes1")
	old := time.Now().Add(-time.Hour)
	for _, d := range []string{out, sibling} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(d, ".wxacode-123.tmp")
		if err := os.WriteFile(p, []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	fresh := filepath.Join(out, ".wxacode-456.tmp")
	if err := os.WriteFile(fresh, []byte("being written"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := writeFile(t, "s.txt", "a=1\n")
	if res := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", in, "-out", out); res.code != exitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, ".wxacode-123.tmp")); !os.IsNotExist(err) {
		t.Error("the stale temporary file in the output directory was kept")
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Error("a fresh temporary file of a killed run was kept")
	}
	if _, err := os.Stat(filepath.Join(sibling, ".wxacode-123.tmp")); err != nil {
		t.Error("a temporary file in another directory was removed")
	}
}

// TestOnlyCompleteImagesCount: a file cut short or not an image under a
// scene's name is minted again; -force mints everything again.
func TestOnlyCompleteImagesCount(t *testing.T) {
	srv, env := fakeEnv(t)
	in := writeFile(t, "s.txt", "a=1\na=2\na=3\na=4\n")
	out := filepath.Join(t.TempDir(), "codes")
	args := []string{"batch", "-base-url", srv.URL, "-in", in, "-out", out}
	if res := runBinary(t, env, "", args...); res.code != exitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	whole, err := os.ReadFile(filepath.Join(out, "a%3D2.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"a%3D2.jpg": whole[:len(whole)/2],
		"a%3D3.jpg": []byte("<html>not an image</html>"),
		"a%3D4.jpg": {},
	} {
		if err := os.WriteFile(filepath.Join(out, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	calls := len(srv.Requests())
	res := runBinary(t, env, "", args...)
	if res.code != exitOK || len(srv.Requests())-calls != 3 || !strings.Contains(res.stderr, "3 minted, 1 already present") {
		t.Errorf("exit %d, %d calls, stderr %q; want the 3 broken files minted again", res.code, len(srv.Requests())-calls, res.stderr)
	}
	for _, name := range []string{"a%3D2.jpg", "a%3D3.jpg", "a%3D4.jpg"} {
		if _, _, scene := decodeFile(t, filepath.Join(out, name)); scene != strings.Replace(strings.TrimSuffix(name, ".jpg"), "%3D", "=", 1) {
			t.Errorf("%s holds %q", name, scene)
		}
	}
	calls = len(srv.Requests())
	if res := runBinary(t, env, "", append(args, "-force")...); res.code != exitOK || len(srv.Requests())-calls != 4 {
		t.Errorf("-force: exit %d, %d calls; want 4", res.code, len(srv.Requests())-calls)
	}
}

// TestPlanningRejectsWithoutSideEffects: a rejected row does not make a
// later valid row of its scene a duplicate; control characters in file
// names are rejected; a 1 MiB line fails alone.
func TestPlanningRejectsWithoutSideEffects(t *testing.T) {
	srv, env := fakeEnv(t)
	long := strings.Repeat("x", 1<<20)
	csvIn := writeFile(t, "in.csv", "scene,filename\ns=1,\"a\x01b\"\ns=2,\"del\x7f\"\ns=1,\ns=2,poster\n")
	linesIn := writeFile(t, "in.txt", "a=1\n"+long+"\nb=2\n")
	for _, tc := range []struct {
		name, in  string
		wantFiles []string
		wantFail  []string
	}{
		{"csv", csvIn, []string{"poster.jpg", "s%3D1.jpg"}, []string{"s=1", "s=2"}},
		// Skipped as read: the row keeps the line's first 64 bytes.
		{"over-long line", linesIn, []string{"a%3D1.jpg", "b%3D2.jpg"}, []string{long[:64]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "codes")
			res := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", tc.in, "-out", out)
			if res.code != exitFailed {
				t.Fatalf("exit %d, want 1: %s", res.code, res.stderr[:min(len(res.stderr), 500)])
			}
			if got := listImages(t, out); !slices.Equal(got, tc.wantFiles) {
				t.Errorf("images %v, want %v", got, tc.wantFiles)
			}
			fails := readFailures(t, filepath.Join(out, failuresFile))
			for _, scene := range tc.wantFail {
				if _, ok := fails[scene]; !ok {
					t.Errorf("failures.csv lacks the row of %.20q", scene)
				}
			}
			if len(fails) != len(tc.wantFail) {
				t.Errorf("failures.csv has %d rows, want %d", len(fails), len(tc.wantFail))
			}
		})
	}
}

// TestNoCredentialInOutput: a service that echoes the token and the
// AppSecret gets neither into failures.csv or stderr.
func TestNoCredentialInOutput(t *testing.T) {
	const secret, token = "SECRET-cli-0123456789abcdef", "TOKEN+cli/0123456789="
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cgi-bin/stable_token", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":7200}`, token)
	})
	mux.HandleFunc("POST /wxa/getwxacodeunlimit", func(w http.ResponseWriter, r *http.Request) {
		msg, _ := json.Marshal("echo " + r.URL.RawQuery + " " + token + " " + url.QueryEscape(token) + " " + secret)
		fmt.Fprintf(w, `{"errcode":40097,"errmsg":%s}`, msg)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	env := map[string]string{"WECHAT_APPID": "wx1234", "WECHAT_SECRET": secret}
	out := filepath.Join(t.TempDir(), "codes")
	in := writeFile(t, "s.txt", "a=1\n")
	batch := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", in, "-out", out)
	get := runBinary(t, env, "", "get", "-base-url", srv.URL, "-scene", "a=1", "-o", filepath.Join(out, "x.jpg"))
	failures, err := os.ReadFile(filepath.Join(out, failuresFile))
	if err != nil || batch.code != exitFailed || get.code != exitFailed {
		t.Fatalf("batch exit %d, get exit %d, failures.csv: %v", batch.code, get.code, err)
	}
	for _, text := range []string{batch.stderr, get.stderr, string(failures)} {
		for _, c := range []string{secret, token, url.QueryEscape(token)} {
			if strings.Contains(text, c) {
				t.Errorf("%q shows in %q", c, text)
			}
		}
	}
}

// TestHintsNameTheFlag: an API error comes with how to fix it, and for
// 41030 the command names its own flag.
func TestHintsNameTheFlag(t *testing.T) {
	srv, env := fakeEnv(t, wxacodetest.WithPublishedPages("pages/index/index"))
	get := runBinary(t, env, "", "get", "-base-url", srv.URL, "-scene", "a=1", "-page", "pages/draft/index", "-o", filepath.Join(t.TempDir(), "a.jpg"))
	if get.code != exitFailed || !strings.Contains(get.stderr, "errcode 41030") || !strings.Contains(get.stderr, "hint: ") || !strings.Contains(get.stderr, "-skip-path-check") {
		t.Errorf("get: exit %d, stderr %q; want 41030 with a hint naming -skip-path-check", get.code, get.stderr)
	}
	// -env is no fix: with check_path true the page must be released.
	if strings.Contains(get.stderr, "-env") {
		t.Errorf("get: stderr %q offers -env as a fix for 41030", get.stderr)
	}
	in := writeFile(t, "in.csv", "scene,page\na=1,pages/draft/index\nb=2,pages/draft/index\n")
	out := filepath.Join(t.TempDir(), "codes")
	batch := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", in, "-out", out)
	if batch.code != exitFailed || strings.Count(batch.stderr, "hint for errcode 41030: ") != 1 || !strings.Contains(batch.stderr, "-skip-path-check") {
		t.Errorf("batch: exit %d, stderr %q; want one hint line naming -skip-path-check", batch.code, batch.stderr)
	}
}

// TestQuotaPausesAreShown: a pause for quota is one line in a log (on a
// terminal it is the live line: internal/batch tests that).
func TestQuotaPausesAreShown(t *testing.T) {
	t.Run("log", func(t *testing.T) {
		srv, env := fakeEnv(t)
		srv.FailNext(1, 45009)
		res := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", writeFile(t, "s.txt", "a=1\n"), "-out", filepath.Join(t.TempDir(), "codes"))
		if res.code != exitOK || strings.Count(res.stderr, "wxacode batch: paused for quota (45009): resuming in 1s\n") != 1 {
			t.Errorf("exit %d, stderr %q; want one pause line", res.code, res.stderr)
		}
	})
}

// TestRateAboveTheAPIsWarns: -rate over 5000 a minute runs, with one
// warning; at or under it, none.
func TestRateAboveTheAPIsWarns(t *testing.T) {
	for _, tc := range []struct {
		rate string
		warn bool
	}{{"5000/s", true}, {"5001/min", true}, {"84/s", true}, {"5000/min", false}, {"4500/min", false}, {"83/s", false}} {
		srv, env := fakeEnv(t)
		res := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-rate", tc.rate, "-in", writeFile(t, "s.txt", "a=1\n"), "-out", filepath.Join(t.TempDir(), "codes"))
		n := strings.Count(res.stderr, "above the API's 5000")
		if res.code != exitOK || (n == 1) != tc.warn || n > 1 {
			t.Errorf("-rate %s: exit %d, stderr %q; want a warning: %v", tc.rate, res.code, res.stderr, tc.warn)
		}
		if tc.warn && !strings.Contains(res.stderr, "45009") {
			t.Errorf("-rate %s: the warning does not say the API answers 45009: %q", tc.rate, res.stderr)
		}
	}
}

// TestSummaryCounts: the summary counts every call sent, failed ones too;
// a copy is not a mint; one scene is "1 scene".
func TestSummaryCounts(t *testing.T) {
	srv, env := fakeEnv(t)
	out := filepath.Join(t.TempDir(), "codes")
	srv.FailNext(3, 40097)
	res := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", writeFile(t, "s.txt", "a=1\nb=2\nc=3\n"), "-out", out)
	if res.code != exitFailed || !strings.Contains(res.stderr, "3 scenes: 0 minted, 0 already present, 3 failed") || !strings.Contains(res.stderr, ", 3 calls,") {
		t.Errorf("exit %d, stderr %q; want 3 failed in 3 calls", res.code, res.stderr)
	}
	res = runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", writeFile(t, "one.csv", "scene,filename\nd=4,x\nd=4,y\n"), "-out", out)
	if res.code != exitOK || !strings.Contains(res.stderr, ": 2 scenes: 1 minted, 1 copied,") || !strings.Contains(res.stderr, ", 1 call,") {
		t.Errorf("exit %d, stderr %q; want 1 minted, 1 copied in 1 call", res.code, res.stderr)
	}
	res = runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", writeFile(t, "one.txt", "e=5\n"), "-out", out)
	if res.code != exitOK || !strings.Contains(res.stderr, ": 1 scene: 1 minted") {
		t.Errorf("exit %d, stderr %q; want \"1 scene: 1 minted\"", res.code, res.stderr)
	}
}
