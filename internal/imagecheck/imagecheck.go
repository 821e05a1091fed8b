// Package imagecheck tells whether bytes are a complete image, for the
// library (answers and cached codes) and the command (files already
// minted) alike.
package imagecheck

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
)

// Signatures and trailers of the image formats whose end can be checked
// cheaply. The service sends JPEG, and PNG for transparent codes.
const (
	pngSignature = "\x89PNG\r\n\x1a\n"
	pngTrailer   = "\x00\x00\x00\x00IEND\xaeB`\x82" // the IEND chunk: length, type, CRC
	jpegStart    = "\xff\xd8\xff"
	jpegEnd      = "\xff\xd9" // EOI marker
)

// Check returns "" when body is a complete image, or why not. A PNG must
// hold its IEND chunk (bytes after it are allowed, as decoders ignore them)
// and a JPEG must end with its end marker (trailing padding allowed), which
// catches a body cut short; other formats recognised by
// http.DetectContentType (GIF, WebP, BMP, …) are accepted as they are.
//
// body may be a file's first bytes followed by its last few KiB: the
// markers checked are at the two ends.
func Check(body []byte) string {
	switch {
	case bytes.HasPrefix(body, []byte(pngSignature)):
		if !bytes.Contains(body[len(pngSignature):], []byte(pngTrailer)) {
			return "truncated PNG: no IEND chunk"
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
