package baseurl

import "testing"

func TestCheck(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://api.weixin.qq.com": true,
		"http://127.0.0.1:8080":     true,
		"http://127.0.0.1:8080/":    true,
		"127.0.0.1:8080":            false,
		"ftp://example.com":         false,
		"https://":                  false,
		"https://x?access_token=1":  false,
		"https://x#frag":            false,
		"http://exa mple.com":       false,
	} {
		if err := Check(raw); (err == nil) != ok {
			t.Errorf("Check(%q) = %v, want ok %v", raw, err, ok)
		}
	}
}
