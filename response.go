package wxacode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Size caps on what is read from the service. Real codes are well under
// 1 MiB; JSON answers are a few hundred bytes.
const (
	MaxImageBytes = 4 << 20  // an image body larger than this is refused
	MaxJSONBytes  = 64 << 10 // a non-image body larger than this is refused
	// maxDrain is how much of an unread body (one refused for its size)
	// is drained so that the connection can be reused; a larger rest is
	// cut off with the connection.
	maxDrain = 256 << 10
)

// readBody reads resp.Body up to limit bytes, sizing the buffer from
// Content-Length when it is known. A body over the limit is refused without
// reading it whole: a *ResponseError saying so.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	n := resp.ContentLength
	if n > limit {
		drain(resp.Body)
		return nil, tooLarge(resp, n, limit)
	}
	if n >= 0 {
		buf := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			return nil, fmt.Errorf("wxacode: read response body: %w", err)
		}
		return buf, nil
	}
	buf, err := readChunks(resp.Body, limit)
	if err == errOverLimit {
		drain(resp.Body)
		return nil, tooLarge(resp, -1, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("wxacode: read response body: %w", err)
	}
	return buf, nil
}

// errOverLimit is readChunks' word for a body over its limit.
var errOverLimit = errors.New("over limit")

// readChunks reads r to its end, or to just past limit (errOverLimit), into
// chunks that double from 16 KiB up to 1 MiB, then joins them. Unlike
// io.ReadAll's growing slice it never copies while reading, so a body cut
// off at the cap costs about the cap in memory, not twice that.
func readChunks(r io.Reader, limit int64) ([]byte, error) {
	r = io.LimitReader(r, limit+1)
	var chunks [][]byte
	total := 0
	for size := 16 << 10; ; size = min(size*2, 1<<20) {
		buf := make([]byte, size)
		n, err := io.ReadFull(r, buf)
		total += n
		chunks = append(chunks, buf[:n])
		if int64(total) > limit {
			return nil, errOverLimit
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	out := make([]byte, 0, total)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out, nil
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

// drain reads a little of what is left of a refused body, so that when the
// rest is short the connection goes back to the pool. Bodies read to their
// end need no draining.
func drain(body io.Reader) {
	_, _ = io.CopyN(io.Discard, body, maxDrain)
}

// errorBody is the JSON error answer of the service.
type errorBody struct {
	ErrCode *int   `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// parseImageResponse decides what resp is: the image (returned as sent), an
// *APIError for a JSON errcode body whatever its Content-Type, or a
// *ResponseError that names status and Content-Type for anything else.
func parseImageResponse(resp *http.Response) ([]byte, error) {
	ct := resp.Header.Get("Content-Type")
	isImage := isImageContentType(ct)
	limit := int64(MaxJSONBytes)
	if isImage {
		limit = MaxImageBytes
	}
	body, err := readBody(resp, limit)
	if err != nil {
		return nil, err
	}
	if apiErr, ok := parseErrorBody(body); ok {
		if apiErr.Code == 0 {
			return nil, &ResponseError{StatusCode: resp.StatusCode, ContentType: ct, Reason: "errcode 0 without an image"}
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
		reason = checkImage(body)
	}
	if reason != "" {
		return nil, &ResponseError{StatusCode: resp.StatusCode, ContentType: ct, Reason: reason}
	}
	return body, nil
}

// isImageContentType reports whether the media type of ct is image/*.
func isImageContentType(ct string) bool {
	return len(ct) >= len("image/") && strings.EqualFold(ct[:len("image/")], "image/")
}

// parseErrorBody recognises {"errcode":…,"errmsg":…} with leading white
// space allowed.
func parseErrorBody(body []byte) (*APIError, bool) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false
	}
	var e errorBody
	if json.Unmarshal(trimmed, &e) != nil || e.ErrCode == nil {
		return nil, false
	}
	return &APIError{Code: *e.ErrCode, Message: e.ErrMsg}, true
}

// Signatures and trailers of the image formats whose end can be checked
// cheaply. The service sends JPEG, and PNG for transparent codes.
const (
	pngSignature = "\x89PNG\r\n\x1a\n"
	pngTrailer   = "IEND\xaeB`\x82" // the IEND chunk's type and CRC
	jpegStart    = "\xff\xd8\xff"
	jpegEnd      = "\xff\xd9" // EOI marker
)

// checkImage returns "" when body is a complete image, or why not. PNG and
// JPEG must end with their end marker, which catches a body cut short;
// other formats recognised by http.DetectContentType (GIF, WebP, BMP, …)
// are accepted as they are.
func checkImage(body []byte) string {
	switch {
	case bytes.HasPrefix(body, []byte(pngSignature)):
		if !bytes.HasSuffix(body, []byte(pngTrailer)) {
			return "truncated PNG: no IEND chunk at the end"
		}
		return ""
	case bytes.HasPrefix(body, []byte(jpegStart)):
		if !bytes.HasSuffix(bytes.TrimRight(body, "\x00\r\n "), []byte(jpegEnd)) {
			return "truncated JPEG: no end-of-image marker"
		}
		return ""
	}
	if sniffed := http.DetectContentType(body); !strings.HasPrefix(sniffed, "image/") {
		return strconv.Itoa(len(body)) + "-byte body is not an image (looks like " + sniffed + ")"
	}
	return ""
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
