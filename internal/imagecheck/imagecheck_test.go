package imagecheck

import "testing"

func TestCheck(t *testing.T) {
	iend := "\x00\x00\x00\x00IEND\xaeB`\x82"
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"jpeg", "\xff\xd8\xff\xe0 data \xff\xd9", true},
		{"jpeg with padding", "\xff\xd8\xff\xe0 data \xff\xd9\x00\r\n ", true},
		{"jpeg cut short", "\xff\xd8\xff\xe0 data", false},
		{"png", "\x89PNG\r\n\x1a\n data " + iend, true},
		{"png with bytes after IEND", "\x89PNG\r\n\x1a\n data " + iend + "more", true},
		{"png cut short", "\x89PNG\r\n\x1a\n data " + iend[:5], false},
		{"gif", "GIF89a rest", true},
		{"html", "<html>hi</html>", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		if got := Check([]byte(tc.body)); (got == "") != tc.ok {
			t.Errorf("%s: Check = %q, want ok %v", tc.name, got, tc.ok)
		}
	}
}
