package wxacode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-wxacode/wxacode/internal/imagecheck"
)

// Size caps on what is read from the service. Real codes are well under
// 1 MiB; JSON answers are a few hundred bytes.
const (
	maxImageBytes = 4 << 20  // an image body larger than this is refused
	maxJSONBytes  = 64 << 10 // a non-image body larger than this is refused
	// maxPrealloc bounds the buffer allocated from a declared
	// Content-Length before any byte arrives: a server declaring 4 MiB and
	// then stalling costs this much, not 4 MiB; past it the buffer grows
	// as bytes arrive.
	maxPrealloc = 128 << 10
	// maxDrain is how much of a refused body is read so that the
	// connection can be reused; a larger rest is cut off with the
	// connection.
	maxDrain = 256 << 10
	// drainWait is the longest a refused body is waited for: a short one
	// that has arrived drains at once, and a peer that stops talking
	// costs this, never the whole timeout.
	drainWait = 50 * time.Millisecond
)

// readBody reads resp.Body up to limit bytes, and closes it. A declared
// Content-Length over the limit is refused at once, unread. A declared
// length is read into one buffer of that size (bounded by maxPrealloc
// until the bytes arrive), so a 10 KB image costs one allocation;
// otherwise memory follows the bytes that arrive. A body over the limit is
// refused without reading it whole: a *ResponseError saying so.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n > limit {
		discard(resp.Body)
		return nil, tooLarge(resp, n, limit)
	}
	r := io.LimitReader(resp.Body, limit+1)
	var buf []byte
	var err error
	if n := resp.ContentLength; n >= 0 {
		buf, err = readSized(r, int(min(n+1, maxPrealloc)), int(min(n+1, limit+1))) // +1: room to see the end without growing
	} else {
		buf, err = io.ReadAll(r)
	}
	if err != nil {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("wxacode: read response body: %w", err)
	}
	if int64(len(buf)) > limit {
		discard(resp.Body)
		return nil, tooLarge(resp, -1, limit)
	}
	_ = resp.Body.Close()
	return buf, nil
}

// readSized reads r to its end into a buffer of first bytes. Past it (a
// declared length over maxPrealloc whose bytes arrive, or a body longer
// than declared) the buffer grows to want (the declared length) at once
// when want is within 8 times, else fourfold toward it as the bytes come,
// then doubles: about 1.3 to 1.7 times an honest body in all, where
// io.ReadAll takes 2 to 2.4, and for a body longer than it declared about
// what io.ReadAll takes (measured: 2.7 and 2.2 times a 3 MiB body that
// declared 10 bytes), never the small steps that each copy the whole.
func readSized(r io.Reader, first, want int) ([]byte, error) {
	buf := make([]byte, 0, first)
	for {
		if len(buf) == cap(buf) {
			size := max(2*cap(buf), 512) // past the declared length: doubling
			switch {
			case want > cap(buf) && want <= 8*cap(buf):
				size = want // the declared length, once a good part came
			case want > cap(buf):
				size = 4 * cap(buf) // toward it, as the bytes come
			}
			grown := make([]byte, len(buf), size)
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func tooLarge(resp *http.Response, n, limit int64) error {
	size := "more than " + strconv.FormatInt(limit, 10)
	if n >= 0 {
		size = strconv.FormatInt(n, 10)
	}
	return &ResponseError{
		StatusCode:  resp.StatusCode,
		ContentType: resp.Header.Get("Content-Type"),
		Reason:      "body of " + size + " bytes is over the " + strconv.FormatInt(limit, 10) + "-byte limit",
	}
}

// discard closes a refused body, first reading what is left of it (up to
// maxDrain, for at most drainWait) so that a short rest that has already
// arrived gives the connection back to the pool. It never waits longer on
// a peer that stopped talking: then the request's context is cancelled,
// which ends the read (every transport honours it) and drops the
// connection.
func discard(body io.ReadCloser) {
	if rb, ok := body.(*requestBody); ok {
		t := time.AfterFunc(drainWait, rb.cancel)
		_, _ = io.CopyN(io.Discard, body, maxDrain)
		t.Stop()
	}
	_ = body.Close()
}

// errorBody is the JSON error answer of the service, read leniently:
// errcode may come as a number or as a string of digits, errmsg as any JSON
// value (kept as its JSON text when it is not a string).
type errorBody struct {
	ErrCode json.RawMessage `json:"errcode"`
	ErrMsg  json.RawMessage `json:"errmsg"`
}

// apiError returns the error the body holds, or false when it has no
// integer errcode.
func (b *errorBody) apiError() (*APIError, bool) {
	raw := bytes.TrimSpace(b.ErrCode)
	if len(raw) == 0 {
		return nil, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		raw = []byte(strings.TrimSpace(s))
	}
	code, err := strconv.Atoi(string(raw))
	if err != nil {
		return nil, false
	}
	msg := ""
	if m := bytes.TrimSpace(b.ErrMsg); len(m) > 0 && string(m) != "null" {
		if json.Unmarshal(m, &msg) != nil {
			msg = plainJSON(m)
		}
	}
	return &APIError{Code: code, Message: msg}, true
}

// plainJSON returns the JSON value raw written again without escapes that
// hide characters ("\/" as PHP writes a slash, "\u002b" for "+"), so
// that redaction finds a credential inside it: its strings then read as
// they were meant. raw is returned as it is if it does not decode.
func plainJSON(raw []byte) string {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return string(raw)
	}
	var out bytes.Buffer
	e := json.NewEncoder(&out)
	e.SetEscapeHTML(false)
	if e.Encode(v) != nil {
		return string(raw)
	}
	return strings.TrimSuffix(out.String(), "\n")
}

// trimJSON strips white space and a UTF-8 byte order mark before a JSON
// body.
func trimJSON(body []byte) []byte {
	body = bytes.TrimLeft(body, " \t\r\n")
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	return bytes.TrimLeft(body, " \t\r\n")
}

// isRedirect reports whether status is a 3xx. Redirects are never
// followed: the next hop would see the token in the Referer, and a 307
// would re-send the AppSecret.
func isRedirect(status int) bool { return status >= 300 && status <= 399 }

// redirectError is the error for a 3xx answer. It does not name the
// Location: a redirect may echo the query, token included.
func redirectError(resp *http.Response) error {
	return &ResponseError{StatusCode: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Reason: "redirect not followed (credentials are only sent to the configured base URL)"}
}

// parseImageResponse decides what resp is: the image (returned as sent), an
// *APIError for a JSON errcode body whatever its Content-Type, or a
// *ResponseError that names status and Content-Type for anything else. It
// closes resp.Body.
func parseImageResponse(resp *http.Response) ([]byte, error) {
	ct := resp.Header.Get("Content-Type")
	if isRedirect(resp.StatusCode) {
		discard(resp.Body)
		return nil, redirectError(resp)
	}
	isImage := isImageContentType(ct)
	limit := int64(maxJSONBytes)
	if isImage {
		limit = maxImageBytes
	}
	body, err := readBody(resp, limit)
	if err != nil {
		return nil, err
	}
	if apiErr, ok := parseErrorBody(body); ok {
		if apiErr.Code == 0 {
			return nil, &ResponseError{StatusCode: resp.StatusCode, ContentType: ct, Reason: "errcode 0 without an image", Body: errorSnippet(body)}
		}
		return nil, apiErr
	}
	reason := ""
	switch {
	case len(body) == 0:
		reason = "empty body"
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		reason = strconv.Itoa(len(body)) + "-byte body with an error status"
	case !isImage:
		reason = strconv.Itoa(len(body)) + "-byte body is neither an image nor a JSON error"
	default:
		reason = imagecheck.Check(body)
	}
	if reason != "" {
		return nil, &ResponseError{StatusCode: resp.StatusCode, ContentType: ct, Reason: reason, Body: errorSnippet(body)}
	}
	return body, nil
}

// isImageContentType reports whether the media type of ct is image/*.
func isImageContentType(ct string) bool {
	return len(ct) >= len("image/") && strings.EqualFold(ct[:len("image/")], "image/")
}

// parseErrorBody recognises {"errcode":…,"errmsg":…}, with white space
// and a byte order mark allowed before it.
func parseErrorBody(body []byte) (*APIError, bool) {
	trimmed := trimJSON(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false
	}
	var e errorBody
	if json.Unmarshal(trimmed, &e) != nil {
		return nil, false
	}
	return e.apiError()
}

// ImageExt returns the file name extension for an image returned by
// GetUnlimited: ".jpg" (the service's default), ".png" (transparent codes),
// or ".gif", ".webp", ".bmp" for other types; ".bin" for anything else.
func ImageExt(img []byte) string {
	switch http.DetectContentType(img) {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	case "image/bmp":
		return ".bmp"
	}
	return ".bin"
}
