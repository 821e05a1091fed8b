package wxacode

import "testing"

func TestImageExt(t *testing.T) {
	tests := []struct {
		name string
		img  []byte
		want string
	}{
		{"jpeg", testJPEG(t), ".jpg"},
		{"png", testPNG(t), ".png"},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), ".gif"},
		{"json", []byte(`{"errcode":1}`), ".bin"},
		{"empty", nil, ".bin"},
	}
	for _, tc := range tests {
		if got := ImageExt(tc.img); got != tc.want {
			t.Errorf("ImageExt(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
