package wxacode

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Error codes documented for getUnlimitedQRCode and for the access_token it
// needs. APIError.Code holds one of these (or another code the service sends).
const (
	// CodeSystemBusy (-1, "system error"): the service is busy; the client
	// retries it with backoff.
	CodeSystemBusy = -1
	// CodeInvalidCredential (40001): the AppSecret is wrong or the
	// access_token is invalid or not the latest. The client refreshes the
	// token and retries once.
	CodeInvalidCredential = 40001
	// CodeInvalidAccessToken (40014): the access_token is malformed. The
	// client refreshes the token and retries once.
	CodeInvalidAccessToken = 40014
	// CodeAccessTokenMissing (41001): no access_token was sent.
	CodeAccessTokenMissing = 41001
	// CodeAccessTokenExpired (42001): the access_token has expired. The
	// client refreshes the token and retries once.
	CodeAccessTokenExpired = 42001
	// CodeInvalidArgs (40097, "invalid args"): a parameter is wrong, for
	// example env_version.
	CodeInvalidArgs = 40097
	// CodeInvalidScene (40129, "invalid scene"): scene has characters
	// outside the documented alphabet.
	CodeInvalidScene = 40129
	// CodeInvalidSceneLength (40169): scene is too long, or the body is not
	// a JSON string.
	CodeInvalidSceneLength = 40169
	// CodeInvalidPage (41030, "invalid page"): page starts with "/", carries
	// parameters, or is not a page of the published release while
	// check_path is true.
	CodeInvalidPage = 41030
	// CodeScancodeTimeReserved (85096): page sets the reserved
	// scancode_time parameter.
	CodeScancodeTimeReserved = 85096
	// CodeDailyQuotaExceeded (45009): the API's call quota is used up.
	CodeDailyQuotaExceeded = 45009
	// CodeMinuteQuotaExceeded (45011): too many calls this minute
	// (the API allows 5000 a minute); slow down and retry next minute.
	CodeMinuteQuotaExceeded = 45011
	// CodeInvalidAppSecret (40125): the token endpoint rejected the
	// AppSecret.
	CodeInvalidAppSecret = 40125
	// CodeIPNotWhitelisted (40164): the calling server's IP is not in the
	// mini program's API IP whitelist.
	CodeIPNotWhitelisted = 40164
	// CodeUnauthorized (48001, "api unauthorized"): the account, or the
	// third-party platform's permission sets, lack this API.
	CodeUnauthorized = 48001
	// CodeNotInWhitelist (85107): on Cloud Run's open-API service, the
	// path is not in the service's whitelist.
	CodeNotInWhitelist = 85107
	// CodeCloudLinkError (85112): on Cloud Run's open-API service, a link
	// error inside the platform.
	CodeCloudLinkError = 85112
	// CodeCloudTokenNotReady (85113): on Cloud Run's open-API service, the
	// platform's token is not ready yet. The client retries it.
	CodeCloudTokenNotReady = 85113
)

// APIError is an error answered by the WeChat service as a JSON body
// {"errcode":…,"errmsg":…}. Message is errmsg as sent, including the
// trailing "rid: …" request id that WeChat support asks for.
//
// Match a code with errors.As, or with errors.Is against an *APIError
// carrying only the code:
//
//	errors.Is(err, &wxacode.APIError{Code: wxacode.CodeInvalidPage})
type APIError struct {
	Code    int
	Message string
}

// Error returns "wxacode: errcode CODE: MESSAGE", followed by " (HINT)"
// when Hint has advice for the code.
func (e *APIError) Error() string {
	msg := "wxacode: errcode " + strconv.Itoa(e.Code) + ": " + e.Message
	if h := e.Hint(); h != "" {
		msg += " (" + h + ")"
	}
	return msg
}

// Hint says how to fix the error, for the codes whose cause is known (the
// ones users of every SDK of this API keep asking about), or "".
func (e *APIError) Hint() string {
	switch e.Code {
	case CodeInvalidCredential:
		return "the token was replaced: another process or tool fetched a new one; share one StableTokenSource (or one token service) per AppID, and do not mix /cgi-bin/token with stable_token"
	case CodeInvalidAppSecret:
		return "the AppSecret is wrong: copy it again from the mini program's admin console (开发管理 > 开发设置), or reset it there"
	case CodeIPNotWhitelisted:
		return "this server's IP is not in the mini program's API IP whitelist (开发管理 > 开发设置 > IP白名单): add it"
	case CodeAccessTokenMissing:
		return "no access_token was sent; on Cloud Run: enable the open-API service (开放接口服务) for this service and redeploy a new version"
	case CodeInvalidPage:
		// With check_path true the page must be in the released version
		// whatever EnvVersion says: only SkipPathCheck makes codes for
		// pages that exist in trial or develop versions alone.
		return "the page is not in the released version: publish it, or set SkipPathCheck (check_path=false) to make codes for a page that only a trial or develop version has"
	case CodeInvalidScene, CodeInvalidSceneLength:
		return "scene takes at most 32 characters of 0-9 A-Z a-z !#$&'()*+,/:;=?@-._~: put a short id in it and look the data up when the code is scanned"
	case CodeDailyQuotaExceeded, CodeMinuteQuotaExceeded:
		return "the API allows 5000 calls a minute: slow down (see WithRateLimit) and try again later"
	case CodeUnauthorized:
		return "the account lacks this API: use the mini program's own AppID, or, as a third-party platform, get permission set 17 or 58 authorised"
	case CodeNotInWhitelist:
		return "Cloud Run: add /wxa/getwxacodeunlimit to the open-API service's whitelist (API 权限) and redeploy"
	}
	return ""
}

// Is reports whether target is an *APIError with the same Code, so that
// errors.Is works with a code alone.
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	return ok && t.Code == e.Code
}

// RequestID returns the request id ("rid") WeChat appends to errmsg, or ""
// when there is none. Quote it when asking WeChat support about a failure.
func (e *APIError) RequestID() string {
	i := strings.LastIndex(e.Message, "rid:")
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(e.Message[i+len("rid:"):])
}

// tokenRejected reports whether the code says the access_token itself was
// refused (40001, 40014, 42001): a fresh token may succeed.
func (e *APIError) tokenRejected() bool {
	switch e.Code {
	case CodeInvalidCredential, CodeInvalidAccessToken, CodeAccessTokenExpired:
		return true
	}
	return false
}

// temporary reports whether the same call may succeed later unchanged:
// -1 (system busy) and 85113 (Cloud Run's token not ready yet). Quota
// errors are not: they need the caller to slow down.
func (e *APIError) temporary() bool {
	return e.Code == CodeSystemBusy || e.Code == CodeCloudTokenNotReady
}

// ValidationError reports a Request that breaks a documented rule. It is
// returned before any token is fetched or any request is sent.
type ValidationError struct {
	// Field is the JSON name of the parameter: scene, page, width or
	// env_version.
	Field string
	// Reason says, in English, which rule was broken.
	Reason string
}

// Error returns "wxacode: invalid FIELD: REASON".
func (e *ValidationError) Error() string {
	return "wxacode: invalid " + e.Field + ": " + e.Reason
}

// ResponseError is an answer that is neither an image nor a JSON error: an
// HTML page from a proxy, an empty body, a body too large, errcode 0 without
// an image, a redirect. It names what arrived, never the request URL or
// token. Server errors (5xx) are retried.
type ResponseError struct {
	StatusCode  int    // HTTP status code
	ContentType string // Content-Type header as sent ("" when absent)
	Reason      string // what was wrong with it
	// Body is the first bytes of what came back (at most 512, credentials
	// redacted), so that an HTML error page or a proxy's answer can be
	// diagnosed from the error alone, as oauth2.RetrieveError keeps it.
	// It is empty when the body was refused unread (a redirect, or a
	// declared length over the cap).
	Body []byte
}

// maxErrorBody is how much of a refused body a ResponseError keeps.
const maxErrorBody = 512

// errorSnippet returns a copy of the first maxErrorBody bytes of body.
func errorSnippet(body []byte) []byte {
	if len(body) == 0 {
		return nil
	}
	return bytes.Clone(body[:min(len(body), maxErrorBody)])
}

// Error returns "wxacode: unexpected response (HTTP STATUS, Content-Type
// TYPE): REASON", with advice in parentheses for a 502.
func (e *ResponseError) Error() string {
	ct := e.ContentType
	if ct == "" {
		ct = "none"
	}
	msg := fmt.Sprintf("wxacode: unexpected response (HTTP %d, Content-Type %s): %s", e.StatusCode, ct, e.Reason)
	if e.StatusCode == 502 {
		msg += " (a proxy failed; on Cloud Run, the open-API service answers 502 for paths not in its whitelist: check that /wxa/getwxacodeunlimit is listed)"
	}
	return msg
}

// TokenError wraps an error returned by a TokenSource.
type TokenError struct {
	Err error
}

// Error returns "wxacode: get access token: " and the source's error
// (without a second "wxacode: " when the source is one of this package's).
func (e *TokenError) Error() string {
	return "wxacode: get access token: " + strings.TrimPrefix(e.Err.Error(), "wxacode: ")
}

// Unwrap returns the TokenSource's error.
func (e *TokenError) Unwrap() error { return e.Err }

// LimiterError wraps an error returned by the Limiter's Wait that is not
// the context's (a shared limiter's store refusing, say). The call ends
// with it at once: nothing is sent and it is not retried.
type LimiterError struct {
	Err error
}

// Error returns "wxacode: rate limiter: " and the limiter's error.
func (e *LimiterError) Error() string {
	return "wxacode: rate limiter: " + strings.TrimPrefix(e.Err.Error(), "wxacode: ")
}

// Unwrap returns the Limiter's error.
func (e *LimiterError) Unwrap() error { return e.Err }
