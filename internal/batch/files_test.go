package batch

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileBase(t *testing.T) {
	tests := []struct{ scene, want string }{
		{"id=42", "id%3D42"},
		{"a/b", "a%2Fb"},
		{"..", "%2E."},
		{".hidden", "%2Ehidden"},
		{"a.b_c-d", "a.b_c-d"},
		{"x%y", "x%25y"},
		{"!#$&'()*+,/:;=?@~", "%21%23%24%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%7E"},
	}
	for _, tc := range tests {
		if got := FileBase(tc.scene); got != tc.want {
			t.Errorf("FileBase(%q) = %q, want %q", tc.scene, got, tc.want)
		}
	}
	// One to one over a set of scenes that differ in one character.
	seen := map[string]string{}
	for c := 0x21; c < 0x7f; c++ {
		scene := "a" + string(rune(c))
		base := FileBase(scene)
		if other, dup := seen[base]; dup {
			t.Errorf("%q and %q both map to %q", scene, other, base)
		}
		seen[base] = scene
		if strings.ContainsAny(base, `/\`) {
			t.Errorf("FileBase(%q) = %q holds a separator", scene, base)
		}
	}
}

func TestCheckFilename(t *testing.T) {
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"poster-1", "poster-1", true},
		{"poster-1.jpg", "poster-1", true},
		{"poster-1.PNG", "poster-1", true},
		{"../etc/passwd", "", false},
		{"a/b", "", false},
		{`a\b`, "", false},
		{".hidden", "", false},
		{".jpg", "", false},
		{"", "", false},
		{"a\nb", "", false},
		{"a\tb", "", false},
		{"esc\x1b", "", false},
		{"del\x7f", "", false},
		{strings.Repeat("x", 201), "", false},
	}
	for _, tc := range tests {
		got, err := checkFilename(tc.name)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("checkFilename(%q) = %q, %v; want %q, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

func TestCompleteFile(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte{0x55}, 3*tailWindow)
	cat := func(parts ...string) []byte {
		var b []byte
		for i, p := range parts {
			if i == 1 {
				b = append(b, big...)
			}
			b = append(b, p...)
		}
		return b
	}
	iend := "\x00\x00\x00\x00IEND\xaeB`\x82"
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"large jpeg", cat("\xff\xd8\xff\xe0", "\xff\xd9"), true},
		{"large jpeg with padding", cat("\xff\xd8\xff\xe0", "\xff\xd9\x00\x00\n"), true},
		{"large jpeg cut short", cat("\xff\xd8\xff\xe0", "\xff"), false},
		{"large png", cat("\x89PNG\r\n\x1a\n", iend), true},
		{"large png with bytes after IEND", cat("\x89PNG\r\n\x1a\n", iend+"trailing"), true},
		{"large png cut short", cat("\x89PNG\r\n\x1a\n", iend[:6]), false},
		{"small jpeg", []byte("\xff\xd8\xff\xe0\xff\xd9"), true},
		{"html", []byte("<html>\xff\xd9"), false},
		{"empty", nil, false},
	}
	for _, tc := range tests {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		if err := os.WriteFile(p, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if got := completeFile(p); got != tc.want {
			t.Errorf("%s: completeFile = %v, want %v", tc.name, got, tc.want)
		}
	}
	if completeFile(dir) {
		t.Error("a directory counts as a complete image")
	}
}
