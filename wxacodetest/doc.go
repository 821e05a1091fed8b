// Package wxacodetest runs an in-process fake of the WeChat API parts that
// getUnlimitedQRCode needs, the way net/http/httptest runs a fake server:
//
//	srv := wxacodetest.NewServer()
//	defer srv.Close()
//	client := wxacode.NewClient(wxacode.StaticToken(srv.Token()), wxacode.WithBaseURL(srv.URL))
//
// It serves, on a loopback address:
//   - GET /cgi-bin/token (getAccessToken): a new token on every call; the
//     previous one stays valid for 5 more minutes, as the real service does;
//   - POST /cgi-bin/stable_token (getStableAccessToken): the same token until
//     its last 5 minutes (then a new one, the old one still valid until it
//     expires); force_refresh:true replaces it at once, at most once per 30 s
//     (a closer one is ignored) and 20 times a day (then 45009);
//   - POST /wxa/getwxacodeunlimit: the rules and error codes the API
//     documents, and real images: JPEG by default, PNG with a transparent
//     background when is_hyaline, width×width pixels, drawn in line_color.
//
// Errors are HTTP 200 with a JSON body {"errcode":…,"errmsg":"… rid: …"} and
// Content-Type "application/json; encoding=utf-8" (WithTextPlainErrors for
// the "text/plain" older deployments sent).
//
// Each image carries the scene, page and env_version it was made for (JPEG
// COM segments, a PNG tEXt chunk), whatever their length: ReadScene and
// ReadCode read them back, so a test can tell which request made which
// image. The same request always gives the same bytes.
//
// Requests records every getwxacodeunlimit call, refused ones included,
// with the fields it carried and the errcode answered; ForgetRequests
// starts the record afresh.
//
// To serve at an address chosen in advance (for a service under test in
// another process, or another language), give it a listener with
// WithListener; WithMiddleware wraps its handler, to log or to add paths
// of one's own. The wxacode command's "wxacode fake" is both, with control
// endpoints over HTTP.
//
// Time: the fake's clock is the wall clock plus whatever Advance added, so
// tokens expire and rate-limit windows pass without any sleeping in tests.
//
// Faults: FailNext makes the next calls answer an error code; ExpireTokens
// makes every issued token answer 42001; WithLatency delays answers.
//
// # Where it differs from the real service
//
//   - The images are not scannable mini program codes: they are drawn to
//     look like one (a disc with rays in line_color) at the right size, in
//     the right format and colours. auto_color draws in WeChat green
//     (#07C160), where the real service picks a colour from the mini
//     program's icon.
//
//   - Width outside 280..1280 answers 40097. The real service's answer is
//     not documented; it has been seen to clamp the width instead. The fake
//     is strict so that tests catch such widths.
//
//   - Without WithPublishedPages, every well-formed page counts as published
//     (check_path passes); with it, only those pages do.
//
//   - The rate limit (5000 a minute by default, WithMinuteQuota) is a sliding
//     60-second window answered with 45009; the real service counts per
//     minute and may answer 45011.
//
//   - A body that is not a JSON object, and a boolean field sent as a number
//     ("is_hyaline": 1), answer 47001 "data format error", as the service
//     does; a field of another wrong type answers 40097, where the real
//     service's answers vary. Unknown fields are ignored, as the service
//     does, and listed in Request.Fields.
//
//   - Only getUnlimitedQRCode and the two token endpoints exist; anything
//     else is a 404.
//
//   - Cloud Run modes (WithOpenAPIService, WithCloudbaseTokens) only change
//     how the token is taken; the whitelist and the platform's own errors
//     (85107, 85112, 85113, whose messages here are approximations) are
//     reached with FailNext.
//
//   - A transparent (is_hyaline) code is a PNG body sent under
//     Content-Type "image/jpeg", as the service sends it (users of other
//     SDKs report PNG files named .jpg); WithTidyContentTypes sends
//     "image/png" instead.
//
//   - An empty body answers 44002 "empty post data", as reported for the
//     code APIs; not confirmed against the service for this endpoint. The
//     45009 text is the "reach max api daily quota limit" users quote,
//     whose wording today could not be confirmed either.
//
// A Server is safe for concurrent use, and two Servers share nothing.
package wxacodetest
