package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-wxacode/wxacode/wxacodetest"
)

// readCode returns the scene, page and version of the code in path.
func readCode(t *testing.T, path string) wxacodetest.Code {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	code, err := wxacodetest.ReadCode(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return code
}

// TestFailuresFedBack: failures.csv keeps each row's page and filename, so
// feeding it back with the same flags mints exactly the codes the first
// run would have, under the same names.
func TestFailuresFedBack(t *testing.T) {
	srv, env := fakeEnv(t, wxacodetest.WithPublishedPages("pages/x", "pages/default"))
	in := writeFile(t, "in.csv", "scene,page,filename\na=1,pages/x,first\nb=2,,second\nc=3,pages/x,\n")
	out := filepath.Join(t.TempDir(), "codes")
	args := []string{"batch", "-base-url", srv.URL, "-page", "pages/default", "-concurrency", "1", "-out", out}
	srv.FailNext(3, 40097) // every row fails, for a reason that passes later
	first := runBinary(t, env, "", append(args, "-in", in)...)
	if first.code != exitFailed || len(listImages(t, out)) != 0 {
		t.Fatalf("first run: exit %d, images %v; want 1 and none", first.code, listImages(t, out))
	}
	data, err := os.ReadFile(filepath.Join(out, failuresFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scene,page,filename,errcode,errmsg\n", "a=1,pages/x,first,40097,", "b=2,,second,40097,", "c=3,pages/x,,40097,"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("failures.csv lacks %q:\n%s", want, data)
		}
	}

	second := runBinary(t, env, "", append(args, "-in", filepath.Join(out, failuresFile))...)
	if second.code != exitOK {
		t.Fatalf("fed back: exit %d, stderr %q", second.code, second.stderr)
	}
	want := map[string][2]string{ // file -> scene, page
		"first.jpg":  {"a=1", "pages/x"},
		"second.jpg": {"b=2", "pages/default"},
		"c%3D3.jpg":  {"c=3", "pages/x"},
	}
	if got := listImages(t, out); len(got) != len(want) {
		t.Errorf("images %v, want %d", got, len(want))
	}
	for name, sp := range want {
		if c := readCode(t, filepath.Join(out, name)); c.Scene != sp[0] || c.Page != sp[1] {
			t.Errorf("%s holds scene %q page %q, want %q %q", name, c.Scene, c.Page, sp[0], sp[1])
		}
	}
	if _, err := os.Stat(filepath.Join(out, failuresFile)); !os.IsNotExist(err) {
		t.Error("failures.csv kept after every row passed")
	}
}

// TestPresentImagesMatchTheirRequest: an image counts as done only if it
// was minted for the row's request; other flags mint it again; so does an
// image without a record (the summary says so).
func TestPresentImagesMatchTheirRequest(t *testing.T) {
	srv, env := fakeEnv(t, wxacodetest.WithPublishedPages("pages/a", "pages/b"))
	in := writeFile(t, "s.txt", "a=1\na=2\na=3\n")
	out := filepath.Join(t.TempDir(), "codes")
	run := func(step string, wantCalls int, wantStderr string, flags ...string) {
		t.Helper()
		before := len(srv.Requests())
		res := runBinary(t, env, "", append([]string{"batch", "-base-url", srv.URL, "-in", in, "-out", out}, flags...)...)
		if res.code != exitOK {
			t.Fatalf("%s: exit %d, stderr %q", step, res.code, res.stderr)
		}
		if got := len(srv.Requests()) - before; got != wantCalls {
			t.Errorf("%s: %d calls, want %d; stderr %q", step, got, wantCalls, res.stderr)
		}
		if !strings.Contains(res.stderr, wantStderr) {
			t.Errorf("%s: stderr %q, want %q", step, res.stderr, wantStderr)
		}
	}
	run("first", 3, "3 minted, 0 already present")
	run("same flags", 0, "0 minted, 3 already present")
	for _, flags := range [][]string{{"-page", "pages/a"}, {"-page", "pages/b"}, {"-page", "pages/b", "-width", "600"}, {"-page", "pages/b", "-width", "600", "-env", "trial"}, {"-page", "pages/b", "-width", "600", "-env", "trial", "-color", "07C160"}} {
		run(strings.Join(flags, " "), 3, "3 minted, 0 already present", flags...)
		run(strings.Join(flags, " ")+" again", 0, "3 already present", flags...)
	}
	if c := readCode(t, filepath.Join(out, "a%3D2.jpg")); c.Page != "pages/b" || c.EnvVersion != "trial" {
		t.Errorf("the image holds %+v, want the last flags' code", c)
	}
	if _, width, _ := decodeFile(t, filepath.Join(out, "a%3D2.jpg")); width != 600 {
		t.Errorf("the image is %d pixels wide, want the last flags' 600", width)
	}
	// -transparent answers PNG: the JPEG of the older request goes.
	run("-transparent", 3, "3 minted", "-transparent")
	if got := listImages(t, out); !slices.Equal(got, []string{"a%3D1.png", "a%3D2.png", "a%3D3.png"}) {
		t.Errorf("images %v, want only the PNGs", got)
	}
	// Images without a record (an older version's, or copied in) are not
	// trusted: minted again.
	if err := os.Remove(filepath.Join(out, manifestFile)); err != nil {
		t.Fatal(err)
	}
	run("no manifest", 3, "3 minted, 0 already present (3 images without a record of their request, not trusted)", "-page", "pages/a")
	run("no manifest, again", 0, "3 already present", "-page", "pages/a")
}

// TestSameCodeUnderTwoNames: two rows of one scene and page with two
// filenames are one call, written under both names; a name added later is
// copied from the first, without a call.
func TestSameCodeUnderTwoNames(t *testing.T) {
	srv, env := fakeEnv(t)
	out := filepath.Join(t.TempDir(), "codes")
	in := writeFile(t, "in.csv", "scene,filename\na=1,one\na=1,two\na=1,one\n")
	res := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", in, "-out", out)
	if res.code != exitOK || len(srv.Requests()) != 1 || !strings.Contains(res.stderr, "1 minted, 1 copied") || !strings.Contains(res.stderr, "1 duplicates") || !strings.Contains(res.stderr, "1 call,") {
		t.Fatalf("exit %d, %d calls, stderr %q; want one call written twice, one duplicate", res.code, len(srv.Requests()), res.stderr)
	}
	one, _ := os.ReadFile(filepath.Join(out, "one.jpg"))
	two, _ := os.ReadFile(filepath.Join(out, "two.jpg"))
	if len(one) == 0 || !bytes.Equal(one, two) {
		t.Errorf("one.jpg (%d bytes) and two.jpg (%d bytes) differ", len(one), len(two))
	}
	more := writeFile(t, "more.csv", "scene,filename\na=1,one\na=1,three\n")
	res = runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", more, "-out", out)
	if res.code != exitOK || len(srv.Requests()) != 1 {
		t.Errorf("a third name: exit %d, %d calls, stderr %q; want a copy, no call", res.code, len(srv.Requests()), res.stderr)
	}
	if three, _ := os.ReadFile(filepath.Join(out, "three.jpg")); !bytes.Equal(three, one) {
		t.Error("three.jpg is not the code")
	}
}

// TestTabsWithEmptyFields: tab-separated input keeps its empty fields.
func TestTabsWithEmptyFields(t *testing.T) {
	srv, env := fakeEnv(t)
	out := filepath.Join(t.TempDir(), "codes")
	in := writeFile(t, "in.tsv", "scene\tpage\tfilename\nid=1\t\tfoo\nid=2\t\t\n")
	res := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", in, "-out", out)
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	if got := listImages(t, out); !slices.Equal(got, []string{"foo.jpg", "id%3D2.jpg"}) {
		t.Errorf("images %v, want foo.jpg and id%%3D2.jpg", got)
	}
}

// TestPresentMeansItsOwnType: a complete image of another type under a
// code's name (a GIF called .jpg, a JPEG called .png) is not a code of
// ours: it is minted again, not trusted.
func TestPresentMeansItsOwnType(t *testing.T) {
	srv, env := fakeEnv(t)
	out := filepath.Join(t.TempDir(), "codes")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	jpg := "\xff\xd8\xff\xe0 a complete JPEG \xff\xd9"
	for name, content := range map[string]string{"a%3D1.jpg": "GIF89a not ours", "a%3D2.png": jpg} {
		if err := os.WriteFile(filepath.Join(out, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := runBinary(t, env, "", "batch", "-base-url", srv.URL, "-in", writeFile(t, "s.txt", "a=1\na=2\n"), "-out", out)
	if res.code != exitOK || len(srv.Requests()) != 2 || !strings.Contains(res.stderr, "2 minted, 0 already present") {
		t.Errorf("exit %d, %d calls, stderr %q; want both minted", res.code, len(srv.Requests()), res.stderr)
	}
	if c := readCode(t, filepath.Join(out, "a%3D1.jpg")); c.Scene != "a=1" {
		t.Errorf("a%%3D1.jpg holds %+v", c)
	}
}
