package wxacode

import (
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
	// Hint, when set, says what to configure to fix the error; the client
	// sets it where the cause is known (Cloud Run's open-API service).
	Hint string
}

// Error returns "wxacode: errcode CODE: MESSAGE", followed by " (HINT)"
// when there is a hint.
func (e *APIError) Error() string {
	msg := "wxacode: errcode " + strconv.Itoa(e.Code) + ": " + e.Message
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
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

// TokenRejected reports whether the code says the access_token itself was
// refused (40001, 40014, 42001): a fresh token may succeed.
func (e *APIError) TokenRejected() bool {
	switch e.Code {
	case CodeInvalidCredential, CodeInvalidAccessToken, CodeAccessTokenExpired:
		return true
	}
	return false
}

// Temporary reports whether the same call may succeed later unchanged:
// -1 (system busy) and 85113 (Cloud Run's token not ready yet). Quota
// errors are not temporary in this sense: they need the caller to slow
// down.
func (e *APIError) Temporary() bool {
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
// an image. It names what arrived, never the request URL or token.
type ResponseError struct {
	StatusCode  int    // HTTP status code
	ContentType string // Content-Type header as sent ("" when absent)
	Reason      string // what was wrong with it
	Hint        string // what to configure, where the cause is known
}

// Error returns "wxacode: unexpected response (HTTP STATUS, Content-Type
// TYPE): REASON".
func (e *ResponseError) Error() string {
	ct := e.ContentType
	if ct == "" {
		ct = "none"
	}
	msg := fmt.Sprintf("wxacode: unexpected response (HTTP %d, Content-Type %s): %s", e.StatusCode, ct, e.Reason)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Temporary reports whether the status is a server error (5xx), which is
// worth retrying.
func (e *ResponseError) Temporary() bool { return e.StatusCode >= 500 }

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
