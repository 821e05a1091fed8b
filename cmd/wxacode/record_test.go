package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

// The tests here hold the batch to its one promise about resuming: the
// image kept under a name is the one its own row asked for, under this
// account, this API and these flags, whatever happened to the manifest in
// between. Each runs the built command as a user does.

// wantCode fails t unless the image at dir/name holds scene (and, when
// width is not 0, is width pixels wide).
func wantCode(t *testing.T, dir, name, scene string, width int) {
	t.Helper()
	if c := readCode(t, filepath.Join(dir, name)); c.Scene != scene {
		t.Errorf("%s holds scene %q, want %q", name, c.Scene, scene)
	}
	if width != 0 {
		if _, w, _ := decodeFile(t, filepath.Join(dir, name)); w != width {
			t.Errorf("%s is %d pixels wide, want %d", name, w, width)
		}
	}
}

// batchIn runs "wxacode batch -in in -out out" with flags and env.
func batchIn(t *testing.T, env map[string]string, in, out string, flags ...string) result {
	t.Helper()
	return runBinary(t, env, "", append([]string{"batch", "-in", in, "-out", out}, flags...)...)
}

// TestFakeCodesAreNotKeptForARealAccount: codes the -fake run made (the
// help's first example) are not codes of the account, or of another API,
// that a later run into the same directory mints for.
func TestFakeCodesAreNotKeptForARealAccount(t *testing.T) {
	in := writeFile(t, "s.txt", "a=1\na=2\na=3\n")
	srv, env := fakeEnv(t)
	other := wxacodetest.NewServer()
	t.Cleanup(other.Close)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		srv  *wxacodetest.Server
	}{
		{"the account", env, []string{"-base-url", srv.URL}, srv},
		{"a static token", map[string]string{"WECHAT_ACCESS_TOKEN": other.Token()}, []string{"-base-url", other.URL}, other},
		{"another API", map[string]string{"WECHAT_APPID": other.AppID(), "WECHAT_SECRET": other.AppSecret()}, []string{"-base-url", other.URL}, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "codes")
			if r := batchIn(t, nil, in, out, "-fake"); r.code != exitOK {
				t.Fatalf("-fake: exit %d, %s", r.code, r.stderr)
			}
			tt.srv.ForgetRequests()
			r := batchIn(t, tt.env, in, out, tt.args...)
			if r.code != exitOK || len(tt.srv.Requests()) != 3 {
				t.Fatalf("after -fake: exit %d, %d calls, stderr %q; want every code minted for the account", r.code, len(tt.srv.Requests()), r.stderr)
			}
			for _, s := range []string{"a=1", "a=2", "a=3"} {
				wantCode(t, out, fileBase(s)+".jpg", s, 0)
			}
			// And now they are the account's: kept.
			r = batchIn(t, tt.env, in, out, tt.args...)
			if r.code != exitOK || len(tt.srv.Requests()) != 3 || !strings.Contains(r.stderr, "3 already present") {
				t.Errorf("again: exit %d, %d calls, stderr %q; want all present", r.code, len(tt.srv.Requests()), r.stderr)
			}
			// And back to -fake: the account's are not the fake's either.
			r = batchIn(t, nil, in, out, "-fake")
			if r.code != exitOK || !strings.Contains(r.stderr, "3 minted") {
				t.Errorf("-fake after the account: exit %d, stderr %q; want 3 minted", r.code, r.stderr)
			}
		})
	}
}

// TestFeedingFailuresBackNeverTakesAnotherRowsName: a row that failed
// because its name was another row's, fed back through failures.csv,
// fails again; the image under that name stays the first row's.
func TestFeedingFailuresBackNeverTakesAnotherRowsName(t *testing.T) {
	srv, env := fakeEnv(t)
	tests := []struct {
		name, input string
		file, scene string // the name both rows want, and the row that had it first
		loser       string // the scene of the row that must fail
	}{
		{"one filename", "scene,page,filename\nid=1,,alpha\nid=2,,beta\nid=3,,alpha\n", "alpha.jpg", "id=1", "id=3"},
		{"with and without extension", "scene,page,filename\nid=1,,x\nid=3,,x.jpg\n", "x.jpg", "id=1", "id=3"},
		{"an odd extension", "scene,page,filename\nid=1,,y.gif\nid=3,,y.gif.jpg\n", "y.gif.jpg", "id=1", "id=3"},
		{"a derived name", "scene,page,filename\nid=22,,\nid=3,,id%3D22\n", "id%3D22.jpg", "id=22", "id=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "codes")
			in := writeFile(t, "in.csv", tt.input)
			first := batchIn(t, env, in, out, "-base-url", srv.URL)
			if first.code != exitFailed {
				t.Fatalf("first run: exit %d, want 1 (a name clash); stderr %q", first.code, first.stderr)
			}
			fails := filepath.Join(out, failuresFile)
			if _, ok := readFailures(t, fails)[tt.loser]; !ok {
				t.Fatalf("failures.csv lacks %s", tt.loser)
			}
			fed := filepath.Join(t.TempDir(), "failures.csv")
			data, err := os.ReadFile(fails)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(fed, data, 0o644); err != nil {
				t.Fatal(err)
			}
			before := len(srv.Requests())
			second := batchIn(t, env, fed, out, "-base-url", srv.URL)
			if second.code != exitFailed || len(srv.Requests()) != before {
				t.Errorf("fed back: exit %d, %d calls, stderr %q; want 1 and no call", second.code, len(srv.Requests())-before, second.stderr)
			}
			wantCode(t, out, tt.file, tt.scene, 0)
			if got := readFailures(t, fails)[tt.loser]; !strings.Contains(got[1], "another") {
				t.Errorf("failures.csv says %q for %s, want a name held by another scene", got, tt.loser)
			}
			// -force is the way to give the name to the other row.
			forced := batchIn(t, env, fed, out, "-base-url", srv.URL, "-force")
			if forced.code != exitOK {
				t.Fatalf("-force: exit %d, stderr %q", forced.code, forced.stderr)
			}
			wantCode(t, out, tt.file, tt.loser, 0)
		})
	}
}

// TestTornManifestLine: a manifest whose last line was cut short (a crash,
// a full disk) neither swallows the next run's first record nor leaves a
// record that no longer says what the image is.
func TestTornManifestLine(t *testing.T) {
	srv, env := fakeEnv(t)
	out := filepath.Join(t.TempDir(), "codes")
	both := writeFile(t, "both.txt", "a=1\na=2\n")
	one := writeFile(t, "one.txt", "a=1\n")
	if r := batchIn(t, env, both, out, "-base-url", srv.URL, "-concurrency", "1"); r.code != exitOK {
		t.Fatalf("first: exit %d, %s", r.code, r.stderr)
	}
	man := filepath.Join(out, manifestFile)
	data, err := os.ReadFile(man)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(man, data[:len(data)-7], 0o644); err != nil { // the last line torn
		t.Fatal(err)
	}
	// 600 pixels for a=1: its record goes after the torn line.
	if r := batchIn(t, env, one, out, "-base-url", srv.URL, "-width", "600"); r.code != exitOK || !strings.Contains(r.stderr, "1 minted") {
		t.Fatalf("-width 600: exit %d, stderr %q", r.code, r.stderr)
	}
	wantCode(t, out, "a%3D1.jpg", "a=1", 600)
	// Back at 430: a=1 holds a 600-pixel image and must be minted again;
	// a=2, whose record was torn, too.
	r := batchIn(t, env, both, out, "-base-url", srv.URL)
	if r.code != exitOK || !strings.Contains(r.stderr, "2 minted") {
		t.Errorf("back at 430: exit %d, stderr %q; want both minted", r.code, r.stderr)
	}
	wantCode(t, out, "a%3D1.jpg", "a=1", 430)
	wantCode(t, out, "a%3D2.jpg", "a=2", 430)
}

// TestImagesWithoutARecordAreMintedAgain: an image the manifest does not
// vouch for (the manifest deleted, or the image put there by something
// else) is minted again at the run's flags; a manifest that cannot be read
// stops the run before any call, rather than trusting every image.
func TestImagesWithoutARecordAreMintedAgain(t *testing.T) {
	srv, env := fakeEnv(t)
	in := writeFile(t, "s.txt", "a=1\na=2\n")
	setup := func(t *testing.T) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "codes")
		if r := batchIn(t, env, in, out, "-base-url", srv.URL); r.code != exitOK {
			t.Fatalf("first: exit %d, %s", r.code, r.stderr)
		}
		return out
	}
	t.Run("no manifest", func(t *testing.T) {
		out := setup(t)
		if err := os.Remove(filepath.Join(out, manifestFile)); err != nil {
			t.Fatal(err)
		}
		r := batchIn(t, env, in, out, "-base-url", srv.URL, "-width", "600")
		if r.code != exitOK || !strings.Contains(r.stderr, "2 minted") {
			t.Errorf("exit %d, stderr %q; want both minted again", r.code, r.stderr)
		}
		wantCode(t, out, "a%3D1.jpg", "a=1", 600)
		wantCode(t, out, "a%3D2.jpg", "a=2", 600)
	})
	t.Run("an image put in by hand", func(t *testing.T) {
		out := setup(t)
		data, err := os.ReadFile(filepath.Join(out, "a%3D1.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "b%3D3.jpg"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		r := batchIn(t, env, writeFile(t, "b.txt", "b=3\n"), out, "-base-url", srv.URL)
		if r.code != exitOK || !strings.Contains(r.stderr, "1 minted") {
			t.Errorf("exit %d, stderr %q; want it minted", r.code, r.stderr)
		}
		wantCode(t, out, "b%3D3.jpg", "b=3", 0)
	})
	unreadable := []struct {
		name    string
		replace func(t *testing.T, path string)
	}{
		{"an over-long line", func(t *testing.T, path string) {
			data, _ := os.ReadFile(path)
			data = append(data, strings.Repeat("f", 5000)+"\n"...)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"a directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"a link to /dev/zero", func(t *testing.T, path string) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}},
		{"a FIFO", func(t *testing.T, path string) {
			if err := mkfifo(path); err != nil {
				t.Skip("no FIFOs here:", err)
			}
		}},
	}
	for _, tt := range unreadable {
		t.Run(tt.name, func(t *testing.T) {
			out := setup(t)
			man := filepath.Join(out, manifestFile)
			if tt.name != "an over-long line" {
				if err := os.Remove(man); err != nil {
					t.Fatal(err)
				}
			}
			tt.replace(t, man)
			before := len(srv.Requests())
			cmd := command(t, env, "", "batch", "-in", in, "-out", out, "-base-url", srv.URL, "-width", "600")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatal("the run hung on the manifest")
			}
			if code := cmd.ProcessState.ExitCode(); code != exitUsage || len(srv.Requests()) != before {
				t.Errorf("exit %d (%v), %d calls, stderr %q; want 2 and no call", code, err, len(srv.Requests())-before, stderr.String())
			}
			if !strings.Contains(stderr.String(), manifestFile) {
				t.Errorf("stderr %q does not name the manifest", stderr.String())
			}
			wantCode(t, out, "a%3D1.jpg", "a=1", 430) // untouched
		})
	}
}

// TestBadStaticTokenStops: a WECHAT_ACCESS_TOKEN the API refuses (40001,
// 40014) or that expired (42001) fails every scene the same way: the run
// stops at once, with a hint that names the variable.
func TestBadStaticTokenStops(t *testing.T) {
	srv, _ := fakeEnv(t)
	var scenes strings.Builder
	for i := range 40 {
		scenes.WriteString("s=" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "\n")
	}
	in := writeFile(t, "s.txt", scenes.String())
	expired := srv.Token()
	srv.ExpireTokens()
	tests := []struct{ name, token string }{
		{"refused", "not-a-token-at-all"},
		{"expired", expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ForgetRequests()
			out := filepath.Join(t.TempDir(), "codes")
			r := batchIn(t, map[string]string{"WECHAT_ACCESS_TOKEN": tt.token}, in, out, "-base-url", srv.URL, "-concurrency", "2")
			if r.code != exitFailed {
				t.Errorf("exit %d, want 1", r.code)
			}
			if n := len(srv.Requests()); n > 4 {
				t.Errorf("%d calls with a token that cannot work, want the run stopped at once", n)
			}
			if !strings.Contains(r.stderr, "stopped") || !strings.Contains(r.stderr, "WECHAT_ACCESS_TOKEN") {
				t.Errorf("stderr %q, want a stop that names WECHAT_ACCESS_TOKEN", r.stderr)
			}
			if _, err := os.Stat(filepath.Join(out, failuresFile)); err == nil {
				t.Errorf("failures.csv written: the scenes did not fail, the token did")
			}
		})
	}
}

// TestQuotedFieldsInTheInput: RFC 4180 input, as a spreadsheet exports
// it: quoted fields holding the delimiter, quotes and line breaks. The
// rows whose filename holds a line break, a tab, an escape or a DEL fail
// on their own (exit 1) and are listed in failures.csv, which reads back
// as input; the others are minted.
func TestQuotedFieldsInTheInput(t *testing.T) {
	srv, env := fakeEnv(t)
	input := "scene,filename,note\n" +
		"a=1,\"one, with a comma\",\"a note\nover two lines\"\n" +
		"a=2,\"two \"\"quoted\"\"\",\n" +
		"a=3,\"new\nline\",\n" +
		"a=4,\"tab\there\",\n" +
		"a=5,\"esc\x1bhere\",\n" +
		"a=6,\"del\x7fhere\",\n" +
		"a=7,seven,\n"
	out := filepath.Join(t.TempDir(), "codes")
	r := batchIn(t, env, writeFile(t, "in.csv", input), out, "-base-url", srv.URL)
	if r.code != exitFailed {
		t.Fatalf("exit %d, stderr %q; want 1", r.code, r.stderr)
	}
	for name, scene := range map[string]string{"one, with a comma.jpg": "a=1", "two \"quoted\".jpg": "a=2", "seven.jpg": "a=7"} {
		wantCode(t, out, name, scene, 0)
	}
	if got := listImages(t, out); len(got) != 3 {
		t.Errorf("images %q, want 3", got)
	}
	fails := readFailures(t, filepath.Join(out, failuresFile))
	for _, s := range []string{"a=3", "a=4", "a=5", "a=6"} {
		if !strings.Contains(fails[s][1], "control character") {
			t.Errorf("failures.csv says %q for %s, want a control character", fails[s], s)
		}
	}
	if len(fails) != 4 {
		t.Errorf("failures.csv has %d rows, want 4: %v", len(fails), fails)
	}
	// failures.csv reads back: the same four rows fail the same way, and
	// nothing is minted again.
	before := len(srv.Requests())
	fed := filepath.Join(t.TempDir(), "failures.csv")
	data, err := os.ReadFile(filepath.Join(out, failuresFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fed, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r = batchIn(t, env, fed, out, "-base-url", srv.URL)
	if r.code != exitFailed || len(srv.Requests()) != before || !strings.Contains(r.stderr, "4 scenes: 0 minted, 0 already present, 4 failed") {
		t.Errorf("fed back: exit %d, %d calls, stderr %q", r.code, len(srv.Requests())-before, r.stderr)
	}
}
