package wxacodetest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Code is what an image made by the fake says about the request that made
// it.
type Code struct {
	Scene      string `json:"scene"`
	Page       string `json:"page"`
	EnvVersion string `json:"env_version"`
}

// metaKey names the metadata: the PNG tEXt keyword and the JPEG comment
// prefix.
const metaKey = "wxacodetest"

// autoColor is the colour drawn for auto_color: WeChat green.
func autoColor() Color { return Color{R: 0x07, G: 0xC1, B: 0x60} }

// ErrNoCode is returned by ReadScene and ReadCode for an image that carries
// no wxacodetest metadata.
var ErrNoCode = errors.New("wxacodetest: no code metadata in image (not made by wxacodetest?)")

// ReadScene returns the scene stored in an image made by a Server.
func ReadScene(img []byte) (string, error) {
	c, err := ReadCode(img)
	return c.Scene, err
}

// ReadCode returns the scene, page and env_version stored in an image made
// by a Server: in a JPEG COM segment or a PNG tEXt chunk.
func ReadCode(img []byte) (Code, error) {
	var meta []byte
	switch {
	case bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")):
		meta = pngText(img)
	case bytes.HasPrefix(img, []byte{0xff, 0xd8}):
		meta = jpegComment(img)
	default:
		return Code{}, errors.New("wxacodetest: not a PNG or JPEG image")
	}
	if meta == nil {
		return Code{}, ErrNoCode
	}
	var c Code
	if err := json.Unmarshal(meta, &c); err != nil {
		return Code{}, errors.New("wxacodetest: bad code metadata: " + err.Error())
	}
	return c, nil
}

// pngText finds our tEXt chunk and returns its text.
func pngText(img []byte) []byte {
	for p := 8; p+12 <= len(img); {
		n := int(binary.BigEndian.Uint32(img[p:]))
		if n < 0 || p+12+n > len(img) {
			return nil
		}
		typ, data := string(img[p+4:p+8]), img[p+8:p+8+n]
		if typ == "tEXt" && bytes.HasPrefix(data, []byte(metaKey+"\x00")) {
			return data[len(metaKey)+1:]
		}
		if typ == "IEND" {
			return nil
		}
		p += 12 + n
	}
	return nil
}

// jpegComment finds our COM segments and returns their text, joined: the
// first holds metaKey+":", any further one metaKey+"+" (a segment holds at
// most 65533 bytes, and a long page needs more).
func jpegComment(img []byte) []byte {
	var meta []byte
	for p := 2; p+4 <= len(img); {
		if img[p] != 0xff {
			break
		}
		marker := img[p+1]
		if marker == 0xda || marker == 0xd9 { // start of scan, end of image
			break
		}
		n := int(binary.BigEndian.Uint16(img[p+2:]))
		if n < 2 || p+2+n > len(img) {
			break
		}
		data := img[p+4 : p+2+n]
		switch {
		case marker != 0xfe:
		case bytes.HasPrefix(data, []byte(metaKey+":")):
			meta = append([]byte{}, data[len(metaKey)+1:]...)
		case meta != nil && bytes.HasPrefix(data, []byte(metaKey+"+")):
			meta = append(meta, data[len(metaKey)+1:]...)
		}
		p += 2 + n
	}
	return meta
}

// look is what decides the pixels of an image; scene, page and
// env_version only go into its metadata.
type look struct {
	width   int
	color   Color
	hyaline bool
}

// imageCache keeps encoded images by look, so that a load test does not pay
// for encoding one per call. Each Server has its own.
type imageCache struct {
	mu sync.Mutex
	m  map[look][]byte
}

const maxCachedLooks = 64

func newImageCache() *imageCache { return &imageCache{m: make(map[look][]byte)} }

// render returns the image for rec and its Content-Type: PNG when
// is_hyaline, JPEG otherwise, with rec's code in the metadata.
func (c *imageCache) render(rec *Request) ([]byte, string) {
	l := look{width: rec.Width, color: rec.LineColor, hyaline: rec.IsHyaline}
	if rec.AutoColor {
		l.color = autoColor()
	}
	c.mu.Lock()
	base, ok := c.m[l]
	c.mu.Unlock()
	if !ok {
		base = encode(l)
		c.mu.Lock()
		if len(c.m) >= maxCachedLooks {
			clear(c.m)
		}
		c.m[l] = base
		c.mu.Unlock()
	}
	meta := codeJSON(Code{Scene: rec.Scene, Page: rec.Page, EnvVersion: rec.EnvVersion})
	if l.hyaline {
		return withPNGText(base, meta), "image/png"
	}
	return withJPEGComment(base, meta), "image/jpeg"
}

// encode draws and encodes an image of look l.
func encode(l look) []byte {
	img := draw(l)
	var buf bytes.Buffer
	if l.hyaline {
		_ = png.Encode(&buf, img)
	} else {
		_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80})
	}
	return buf.Bytes()
}

// draw paints something that looks like a mini program code: a disc of
// rays around a ring, with three round "eyes", in the line colour, on white
// or (hyaline) transparent.
func draw(l look) *image.NRGBA {
	w := l.width
	img := image.NewNRGBA(image.Rect(0, 0, w, w))
	fg := color.NRGBA{R: l.color.R, G: l.color.G, B: l.color.B, A: 0xff}
	bg := color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
	if l.hyaline {
		bg = color.NRGBA{}
	}
	c := float64(w) / 2
	radius := c * 0.96
	eyes := [3][2]float64{{-0.62, -0.62}, {0.62, -0.62}, {-0.62, 0.62}}
	const rays = 72
	for y := 0; y < w; y++ {
		for x := 0; x < w; x++ {
			dx, dy := (float64(x)+0.5-c)/radius, (float64(y)+0.5-c)/radius
			r := math.Hypot(dx, dy)
			on := false
			switch {
			case r >= 0.36 && r < 0.42: // the ring around the logo
				on = true
			case r >= 0.5 && r < 1:
				a := math.Atan2(dy, dx)
				i := int(math.Floor((a + math.Pi) / (2 * math.Pi) * rays))
				frac := (a+math.Pi)/(2*math.Pi)*rays - float64(i)
				length := 0.55 + 0.4*float64((i*37)%11)/10
				on = frac > 0.25 && frac < 0.75 && r < length
			}
			for _, e := range eyes {
				if d := math.Hypot(dx-e[0], dy-e[1]); d < 0.16 && (d < 0.08 || d >= 0.12) {
					on = true
				}
			}
			if on {
				img.SetNRGBA(x, y, fg)
			} else {
				img.SetNRGBA(x, y, bg)
			}
		}
	}
	return img
}

// codeJSON encodes c as JSON in ASCII only (non-ASCII as \u escapes), so it
// fits a PNG tEXt chunk, which holds Latin-1.
func codeJSON(c Code) []byte {
	raw, _ := json.Marshal(c)
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		i += size
		if r < utf8.RuneSelf {
			out = append(out, byte(r))
			continue
		}
		if r > 0xffff {
			r -= 0x10000
			out = appendU(out, 0xd800+(r>>10))
			out = appendU(out, 0xdc00+(r&0x3ff))
			continue
		}
		out = appendU(out, r)
	}
	return out
}

func appendU(b []byte, r rune) []byte {
	s := strconv.FormatInt(int64(r), 16)
	b = append(b, `\u`...)
	for range 4 - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// withJPEGComment inserts COM segments holding meta right after SOI: one
// marked metaKey+":", then as many marked metaKey+"+" as the rest needs.
func withJPEGComment(base, meta []byte) []byte {
	const room = 65533 - len(metaKey) - 1 // a segment's data, less the mark
	out := make([]byte, 0, len(base)+len(meta)+(len(meta)/room+1)*(4+len(metaKey)+1))
	out = append(out, base[:2]...)
	mark := byte(':')
	for first := true; first || len(meta) > 0; first = false {
		part := meta[:min(len(meta), room)]
		meta = meta[len(part):]
		out = append(out, 0xff, 0xfe)
		out = binary.BigEndian.AppendUint16(out, uint16(2+len(metaKey)+1+len(part)))
		out = append(out, metaKey...)
		out = append(out, mark)
		out = append(out, part...)
		mark = '+'
	}
	return append(out, base[2:]...)
}

// withPNGText inserts a tEXt chunk holding meta right after IHDR.
func withPNGText(base, meta []byte) []byte {
	const afterIHDR = 8 + 4 + 4 + 13 + 4
	data := append([]byte(metaKey+"\x00"), meta...)
	out := make([]byte, 0, len(base)+12+len(data))
	out = append(out, base[:afterIHDR]...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	chunk := append([]byte("tEXt"), data...)
	out = append(out, chunk...)
	out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
	return append(out, base[afterIHDR:]...)
}
