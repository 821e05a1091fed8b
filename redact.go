package wxacode

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// redactedValue stands where a credential was.
const redactedValue = "REDACTED"

// minFreeTextCredential is the shortest credential replaced wherever it
// appears in a text. A shorter one (a test token such as "a") would turn
// "invalid page" into "inv" + REDACTED + "lid p" + …; it is redacted only
// where it stands as a parameter value.
const minFreeTextCredential = 8

// redactor removes credentials from texts and errors: the values of
// credential parameters (access_token=…, "secret":"…"), whoever they belong
// to, and each known credential wherever it appears, raw or URL-escaped.
type redactor struct {
	params []string // parameter names whose values are credentials
	values []string // credentials and their escaped forms, longest first
}

// newRedactor returns a redactor for the credential parameters plus extra
// (the name a token source gives with TokenParamName), and the
// credentials creds.
func newRedactor(extraParam string, creds ...string) redactor {
	r := redactor{params: []string{"access_token", "cloudbase_access_token", "secret", "appsecret", "app_secret"}}
	if extraParam != "" {
		r.params = append(r.params, extraParam)
	}
	for _, c := range creds {
		if len(c) < minFreeTextCredential {
			continue
		}
		for _, form := range []string{c, url.QueryEscape(c), url.PathEscape(c)} {
			r.values = append(r.values, form, lowerHexEscapes(form))
		}
		// As a JSON string echoes it: encoding/json's escapes, and "/"
		// written as "\/" (PHP's json_encode).
		quoted, _ := json.Marshal(c)
		inJSON := string(quoted[1 : len(quoted)-1])
		r.values = append(r.values, inJSON, strings.ReplaceAll(inJSON, "/", `\/`))
	}
	// Longest first, so that a credential inside another does not leave
	// the rest of the longer one behind.
	slices.SortFunc(r.values, func(a, b string) int { return len(b) - len(a) })
	return r
}

// lowerHexEscapes writes the %XX escapes of s in lower case, as some
// servers echo them.
func lowerHexEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = lowerASCII(b[i+1])
			b[i+2] = lowerASCII(b[i+2])
		}
	}
	return string(b)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// text returns s with every credential replaced by REDACTED.
func (r redactor) text(s string) string {
	for _, v := range r.values {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, redactedValue)
		}
	}
	for _, p := range r.params {
		s = redactParam(s, p)
	}
	return s
}

// body returns b with every credential replaced, and also a credential's
// beginning where b ends: b is the first bytes of a longer body, and may be
// cut inside a credential.
func (r redactor) body(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	s := r.text(string(b))
	for _, v := range r.values {
		for k := min(len(v)-1, len(s)); k >= minCutCredential; k-- {
			if strings.HasSuffix(s, v[:k]) {
				s = s[:len(s)-k] + redactedValue
				break
			}
		}
	}
	if s == string(b) {
		return b
	}
	return []byte(s)
}

// minCutCredential is the shortest beginning of a credential that body
// replaces at the end of a cut text: fewer bytes give nothing away.
const minCutCredential = 4

// redactParam replaces the value of parameter name wherever it stands as a
// query parameter (name=value) or a JSON member ("name":"value").
func redactParam(s, name string) string {
	if !strings.Contains(s, name) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, name)
		if i < 0 {
			break
		}
		start := i + len(name)
		valueAt, inJSON := -1, false
		if i == 0 || !isNameByte(s[i-1]) {
			switch rest := s[start:]; {
			case strings.HasPrefix(rest, "="):
				valueAt = start + 1
			case i > 0 && s[i-1] == '"' && strings.HasPrefix(rest, `":"`):
				valueAt, inJSON = start+len(`":"`), true
			case i > 0 && s[i-1] == '"' && strings.HasPrefix(rest, `": "`):
				valueAt, inJSON = start+len(`": "`), true
			}
		}
		if valueAt < 0 {
			b.WriteString(s[:start])
			s = s[start:]
			continue
		}
		end := valueAt
		for end < len(s) && !isValueEnd(s[end]) {
			end++
		}
		if inJSON { // a JSON string ends at its unescaped quote: "\/" is part of it
			for end = valueAt; end < len(s) && s[end] != '"'; end++ {
				if s[end] == '\\' {
					end++
				}
			}
			end = min(end, len(s))
		}
		b.WriteString(s[:valueAt])
		if end > valueAt {
			b.WriteString(redactedValue)
		}
		s = s[end:]
	}
	b.WriteString(s)
	return b.String()
}

// isNameByte reports whether c can be part of a parameter name, so that
// "my_secret=" is not taken for "secret=".
func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// isValueEnd reports whether c ends a parameter value in a URL, a JSON
// string or a sentence.
func isValueEnd(c byte) bool {
	switch c {
	case '&', '"', '\'', ' ', '\t', '\r', '\n', ',', ';', ')', '<', '>', '#', '\\':
		return true
	}
	return false
}

// error returns err with every credential removed, from its message and
// from the errors it wraps: typed errors of this package and *url.Error are
// copied with clean fields (so errors.As still finds them and %#v shows no
// secret); any other error whose message holds a credential is replaced by
// one with the clean message that wraps the clean form of what it wrapped.
// An error whose message holds no credential is returned as it is.
func (r redactor) error(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*ResponseError); ok {
		// Its Body is not in its message: look at both.
		c := *e
		c.ContentType, c.Reason, c.Body = r.text(e.ContentType), r.text(e.Reason), r.body(e.Body)
		if c.ContentType == e.ContentType && c.Reason == e.Reason && bytes.Equal(c.Body, e.Body) {
			return err
		}
		return &c
	}
	msg := err.Error()
	clean := r.text(msg)
	if clean == msg {
		return err
	}
	switch e := err.(type) {
	case *APIError:
		c := *e
		c.Message = r.text(e.Message)
		return &c
	case *TokenError:
		return &TokenError{Err: r.error(e.Err)}
	case *LimiterError:
		return &LimiterError{Err: r.error(e.Err)}
	case *ValidationError:
		c := *e
		c.Field, c.Reason = r.text(e.Field), r.text(e.Reason)
		return &c
	case *url.Error:
		return &url.Error{Op: e.Op, URL: r.text(e.URL), Err: r.error(e.Err)}
	}
	red := &redacted{msg: clean}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			red.errs = []error{r.error(inner)}
		}
	case interface{ Unwrap() []error }:
		for _, inner := range u.Unwrap() {
			red.errs = append(red.errs, r.error(inner))
		}
	}
	return red
}

// redacted is an error of unknown type whose message held a credential:
// its clean message, and the clean forms of the errors it wrapped, so that
// errors.Is and errors.As still find sentinels and typed errors.
type redacted struct {
	msg  string
	errs []error
}

func (e *redacted) Error() string   { return e.msg }
func (e *redacted) Unwrap() []error { return e.errs }
