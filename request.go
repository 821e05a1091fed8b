package wxacode

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Request holds the parameters of one getUnlimitedQRCode call. Its zero
// values mean the API's documented defaults, so Request{Scene: "a=1"} asks
// for the home page, with check_path true, width 430, the release version
// and black lines.
type Request struct {
	// Scene is passed to the mini program as the query parameter "scene".
	// Required: at most 32 characters from 0-9, A-Z, a-z and
	// !#$&'()*+,/:;=?@-._~ (no "%", space or Chinese: encode other data
	// yourself, for example as base62 or an id you look up).
	Scene string
	// Page is the page to open, such as "pages/index/index": no leading
	// "/", no parameters (put them in Scene), not the reserved
	// scancode_time. "" opens the home page.
	Page string
	// SkipPathCheck sends check_path=false, which allows a page that is not
	// (yet) in the published release. The zero value keeps the API's
	// default, check_path=true.
	SkipPathCheck bool
	// EnvVersion is the version of the mini program to open. "" means
	// EnvRelease.
	EnvVersion EnvVersion
	// Width is the code's width in pixels, 280 to 1280. 0 means the API's
	// default, 430.
	Width int
	// AutoColor lets WeChat pick the line colour. LineColor is then ignored
	// and not sent.
	AutoColor bool
	// LineColor is the colour of the lines when AutoColor is false. The zero
	// value is black, the API's default.
	LineColor Color
	// IsHyaline asks for a transparent background. WeChat then answers a PNG
	// instead of the default JPEG.
	IsHyaline bool
}

// Color is an RGB colour, sent as {"r":R,"g":G,"b":B} with JSON numbers.
type Color struct{ R, G, B uint8 }

// EnvVersion names the version of the mini program a code opens.
type EnvVersion string

// The versions a code can open.
const (
	EnvRelease EnvVersion = "release" // the published version (default)
	EnvTrial   EnvVersion = "trial"   // the trial (体验版) version
	EnvDevelop EnvVersion = "develop" // the development version
)

// Limits documented for getUnlimitedQRCode.
const (
	maxSceneLength = 32   // scene: at most 32 visible characters
	minWidth       = 280  // width: at least 280 px
	maxWidth       = 1280 // width: at most 1280 px
	defaultWidth   = 430  // width when none is given
)

// reservedPageParam is the parameter WeChat reserves for itself (85096).
const reservedPageParam = "scancode_time"

// Validate checks r against the rules documented for getUnlimitedQRCode and
// returns a *ValidationError naming the first field that breaks one:
//   - scene: required, at most 32 characters, only 0-9 A-Z a-z and
//     !#$&'()*+,/:;=?@-._~ (the service answers 40129 or 40169 otherwise);
//   - page: no leading "/", no "?" or parameters, not the reserved
//     scancode_time (41030, 85096), and printable UTF-8 (it must be a path);
//   - width: 0 or 280 to 1280;
//   - env_version: "", release, trial or develop (40097).
//
// Validate does not allocate for a valid request.
func (r Request) Validate() error {
	if err := validateScene(r.Scene); err != nil {
		return err
	}
	if err := validatePage(r.Page); err != nil {
		return err
	}
	if r.Width != 0 && (r.Width < minWidth || r.Width > maxWidth) {
		return &ValidationError{Field: "width", Reason: "must be 0 (default 430) or from 280 to 1280, got " + strconv.Itoa(r.Width)}
	}
	switch r.EnvVersion {
	case "", EnvRelease, EnvTrial, EnvDevelop:
	default:
		return &ValidationError{Field: "env_version", Reason: strconv.Quote(string(r.EnvVersion)) + " is not release, trial or develop"}
	}
	return nil
}

func validateScene(s string) error {
	if s == "" {
		return &ValidationError{Field: "scene", Reason: "is required"}
	}
	for i := 0; i < len(s); i++ {
		if !isSceneByte(s[i]) {
			r, _ := utf8.DecodeRuneInString(s[i:])
			return &ValidationError{Field: "scene", Reason: "character " + strconv.QuoteRune(r) + " at byte " + strconv.Itoa(i) +
				" is not allowed (only 0-9 A-Z a-z !#$&'()*+,/:;=?@-._~)"}
		}
	}
	// Every allowed character is one byte, so the byte length is the
	// character count.
	if len(s) > maxSceneLength {
		return &ValidationError{Field: "scene", Reason: "has " + strconv.Itoa(len(s)) + " characters, at most 32 are allowed"}
	}
	return nil
}

// isSceneByte reports whether c is in the documented scene alphabet.
func isSceneByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '&', '\'', '(', ')', '*', '+', ',', '/', ':', ';', '=', '?', '@', '-', '.', '_', '~':
		return true
	}
	return false
}

func validatePage(p string) error {
	if p == "" {
		return nil
	}
	if p[0] == '/' {
		return &ValidationError{Field: "page", Reason: `must not start with "/" (write pages/index/index)`}
	}
	if strings.IndexByte(p, '?') >= 0 {
		return &ValidationError{Field: "page", Reason: `must not carry parameters ("?"): put them in scene`}
	}
	if strings.Contains(p, reservedPageParam) {
		return &ValidationError{Field: "page", Reason: "must not contain scancode_time, a parameter reserved by WeChat"}
	}
	if !utf8.ValidString(p) {
		return &ValidationError{Field: "page", Reason: "is not valid UTF-8"}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return &ValidationError{Field: "page", Reason: "contains control character " + strconv.QuoteRune(r)}
		}
	}
	return nil
}

// wireRequest is the JSON body of getUnlimitedQRCode. A field is left out
// when it holds the API's default, so the service applies its own.
type wireRequest struct {
	Scene      string     `json:"scene"`
	Page       string     `json:"page,omitempty"`
	CheckPath  *bool      `json:"check_path,omitempty"` // sent only as false
	EnvVersion string     `json:"env_version,omitempty"`
	Width      int        `json:"width,omitempty"`
	AutoColor  bool       `json:"auto_color,omitempty"`
	LineColor  *wireColor `json:"line_color,omitempty"`
	IsHyaline  bool       `json:"is_hyaline,omitempty"`
}

// wireColor is line_color, with JSON numbers.
type wireColor struct {
	R uint8 `json:"r"`
	G uint8 `json:"g"`
	B uint8 `json:"b"`
}

// wire returns the body r sends: each field only when it differs from the
// API's default (check_path true, release, width 430, black lines, which
// are sent only when AutoColor is false).
func (r *Request) wire() wireRequest {
	w := wireRequest{Scene: r.Scene, Page: r.Page, AutoColor: r.AutoColor, IsHyaline: r.IsHyaline}
	if r.SkipPathCheck {
		w.CheckPath = new(bool)
	}
	if r.EnvVersion != EnvRelease {
		w.EnvVersion = string(r.EnvVersion)
	}
	if r.Width != defaultWidth {
		w.Width = r.Width
	}
	if !r.AutoColor && r.LineColor != (Color{}) {
		w.LineColor = &wireColor{R: r.LineColor.R, G: r.LineColor.G, B: r.LineColor.B}
	}
	return w
}

// body returns the JSON body of r. HTML characters stay as they are
// ("&" in a scene is sent as "&", not "\u0026").
func (r *Request) body() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r.wire()); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
