package wxacode

import "context"

// TokenSource supplies the access_token sent with each call. Implementations
// must be safe for concurrent use. Token may do I/O (a token service, Redis)
// and must honour ctx.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// TokenInvalidator is implemented by a TokenSource that wants to hear when
// the API rejected one of its tokens (errcode 40001, 40014 or 42001), so
// that its next Token call fetches a fresh one instead of a cached one.
type TokenInvalidator interface {
	InvalidateToken(token string)
}

// TokenFunc adapts a function to a TokenSource, the way http.HandlerFunc
// adapts one to a Handler: for example a lookup in Redis, a central token
// service, or a third-party platform's authorizer_access_token.
type TokenFunc func(ctx context.Context) (string, error)

// Token calls f(ctx).
func (f TokenFunc) Token(ctx context.Context) (string, error) { return f(ctx) }

// StaticToken returns a TokenSource that always returns token. It suits
// tests, scripts and tokens managed elsewhere; it cannot refresh, so a
// rejected token is returned as an *APIError without a second request.
func StaticToken(token string) TokenSource { return staticToken(token) }

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

// TokenParamNamer is an optional interface of a TokenSource, as
// http.Flusher is of a ResponseWriter: a source whose tokens go in a query
// parameter other than access_token (CloudbaseTokenSource sends
// cloudbase_access_token; a third party's source may name its own)
// implements it, and NewClient then uses that name, and redacts that
// parameter's values from errors too. "" sends no token at all (Cloud
// Run's open-API service adds one).
type TokenParamNamer interface {
	TokenParamName() string
}
