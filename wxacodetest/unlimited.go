package wxacodetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Messages the real service sends with each errcode.
func errMessage(code int) string {
	switch code {
	case -1:
		return "system error"
	case 40001:
		return "invalid credential, access_token is invalid or not latest, could get access_token by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r"
	case 40002:
		return "invalid grant_type"
	case 40013:
		return "invalid appid"
	case 40014:
		return "invalid access_token"
	case 40097:
		return "invalid args"
	case 40125:
		return "invalid appsecret"
	case 40129:
		return "invalid scene"
	case 40164:
		return "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist"
	case 40169:
		return "invalid length for scene, or the data is not json string"
	case 41001:
		return "access_token missing"
	case 41002:
		return "appid missing"
	case 41004:
		return "appsecret missing"
	case 41030:
		return "invalid page"
	case 42001:
		return "access_token expired"
	case 45009:
		return "reach max api daily quota limit"
	case 45011:
		return "api minute-quota reach limit  mustslower  retry next minute"
	case 44002:
		return "empty post data"
	case 47001:
		return "data format error"
	case 48001:
		return "api unauthorized"
	case 85096:
		return "not allow include scancode_time field"
	case 85107:
		return "url not in whitelist"
	case 85112:
		return "link error"
	case 85113:
		return "cloud token not ready, retry later"
	}
	return "injected error"
}

// writeError answers {"errcode":code,"errmsg":"… rid: …"} with HTTP 200.
func (s *Server) writeError(w http.ResponseWriter, code int, rid string) {
	w.Header().Set("Content-Type", s.cfg.errContentType)
	body, _ := json.Marshal(struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}{code, errMessage(code) + " rid: " + rid})
	_, _ = w.Write(body)
}

// nextRIDLocked returns a request id like the service's.
func (s *Server) nextRIDLocked() string {
	s.ridSeq++
	return fmt.Sprintf("%08x-%08x-%08x", uint32(s.nowLocked().Unix()), uint32(s.ridSeq), uint32(s.ridSeq*2654435761))
}

// handleUnlimited serves POST /wxa/getwxacodeunlimit.
func (s *Server) handleUnlimited(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	q := r.URL.Query()
	token := q.Get(s.tokenParam())

	rec := Request{Token: token, FromAppID: q.Get("from_appid"), Query: r.URL.RawQuery,
		CheckPath: true, EnvVersion: "release", Width: 430}
	// Decoded before the other checks so that a refused call is recorded
	// with what it carried.
	bodyCode := decodeBody(body, &rec)

	s.mu.Lock()
	rec.Time = s.nowLocked()
	code := s.admitLocked(token)
	if code == 0 {
		code = bodyCode
	}
	if code == 0 {
		code = s.validate(&rec)
	}
	rec.ErrCode = code
	s.requests = append(s.requests, rec)
	rid := s.nextRIDLocked()
	s.mu.Unlock()

	if code != 0 {
		s.writeError(w, code, rid)
		return
	}
	img, contentType := s.images.render(&rec)
	if !s.cfg.tidyPNG {
		contentType = "image/jpeg" // what the service sends, PNG or not
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(img)))
	_, _ = w.Write(img)
}

// tokenParam is the query parameter that carries the token.
func (s *Server) tokenParam() string {
	if s.cfg.cloudbaseTokens {
		return "cloudbase_access_token"
	}
	return "access_token"
}

// admitLocked applies, in order, injected failures (WithFailEvery, then
// FailNext), the token check and the rate limit. It returns the errcode, or 0.
func (s *Server) admitLocked(token string) int {
	s.calls++
	if s.cfg.failEvery > 0 && s.calls%s.cfg.failEvery == 0 {
		return s.cfg.failEveryCode
	}
	if len(s.failures) > 0 {
		code := s.failures[0]
		s.failures = s.failures[1:]
		return code
	}
	if !(s.cfg.acceptNoToken && token == "") {
		if code := s.tokenStatusLocked(token); code != 0 {
			return code
		}
	}
	if s.cfg.ratePerMinute > 0 {
		now := s.nowLocked()
		i := 0
		for i < len(s.window) && now.Sub(s.window[i]) >= time.Minute {
			i++
		}
		s.window = s.window[i:]
		if len(s.window) >= s.cfg.ratePerMinute {
			return 45009
		}
		s.window = append(s.window, now)
	}
	return 0
}

// decodeBody reads the JSON body into rec, keeping the order of the fields
// (unknown ones included). A body that is not a JSON object answers 47001
// "data format error", as the service does, and so does a boolean field
// sent as a number ("is_hyaline": 1); another field of the wrong type
// answers 40097. It returns the first errcode, having recorded every field
// it could read.
func decodeBody(body []byte, rec *Request) int {
	if len(bytes.TrimSpace(body)) == 0 {
		return 44002 // empty post data
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 47001
	}
	code := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 47001
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 47001
		}
		rec.Fields = append(rec.Fields, key)
		if c := decodeField(key, raw, rec); code == 0 {
			code = c
		}
	}
	if _, err := dec.Token(); err != nil {
		return 47001
	}
	return code
}

// decodeField stores one field. Unknown fields are ignored, as the service
// does.
func decodeField(key string, raw json.RawMessage, rec *Request) int {
	var err error
	switch key {
	case "scene":
		if json.Unmarshal(raw, &rec.Scene) != nil {
			return 40169 // "the data is not json string"
		}
	case "page":
		err = json.Unmarshal(raw, &rec.Page)
	case "check_path":
		return decodeBool(raw, &rec.CheckPath)
	case "env_version":
		err = json.Unmarshal(raw, &rec.EnvVersion)
	case "width":
		var f float64
		err = json.Unmarshal(raw, &f)
		if err == nil && (f != math.Trunc(f) || math.Abs(f) > 1e9) {
			return 40097
		}
		rec.Width = int(f)
	case "auto_color":
		return decodeBool(raw, &rec.AutoColor)
	case "is_hyaline":
		return decodeBool(raw, &rec.IsHyaline)
	case "line_color":
		rec.LineColor, err = decodeColor(raw)
	}
	if err != nil {
		return 40097
	}
	return 0
}

// decodeBool reads a boolean field: a number there answers 47001, as users
// of the real service report, any other type 40097.
func decodeBool(raw json.RawMessage, dst *bool) int {
	if json.Unmarshal(raw, dst) == nil {
		return 0
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return 47001
	}
	return 40097
}

// decodeColor reads {"r":…,"g":…,"b":…} whose values are numbers or numeric
// strings (both are used in the wild), each 0 to 255.
func decodeColor(raw json.RawMessage) (Color, error) {
	var parts map[string]json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return Color{}, err
	}
	var c Color
	for _, ch := range []struct {
		key string
		dst *uint8
	}{{"r", &c.R}, {"g", &c.G}, {"b", &c.B}} {
		v, ok := parts[ch.key]
		if !ok {
			continue
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return Color{}, err
			}
			n = json.Number(strings.TrimSpace(s))
		}
		i, err := strconv.ParseUint(string(n), 10, 8)
		if err != nil {
			return Color{}, err
		}
		*ch.dst = uint8(i)
	}
	return c, nil
}

// validate applies the documented rules, in the order the service reports
// them. It returns the errcode, or 0.
func (s *Server) validate(rec *Request) int {
	if n := len([]rune(rec.Scene)); n == 0 || n > 32 {
		return 40169
	}
	for i := 0; i < len(rec.Scene); i++ {
		if !isSceneByte(rec.Scene[i]) {
			return 40129
		}
	}
	if strings.Contains(rec.Page, "scancode_time") {
		return 85096
	}
	if strings.HasPrefix(rec.Page, "/") || strings.ContainsAny(rec.Page, "?") {
		return 41030
	}
	if rec.Page != "" && rec.CheckPath && s.cfg.published != nil && !s.cfg.published[rec.Page] {
		return 41030
	}
	switch rec.EnvVersion {
	case "release", "trial", "develop":
	default:
		return 40097
	}
	if rec.Width < 280 || rec.Width > 1280 {
		return 40097
	}
	return 0
}

// isSceneByte reports whether c is in the documented scene alphabet:
// 0-9 A-Z a-z !#$&'()*+,/:;=?@-._~
func isSceneByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&'()*+,/:;=?@-._~", c) >= 0
}
