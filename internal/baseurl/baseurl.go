// Package baseurl holds the one rule for an API base URL, which the
// library (WithBaseURL) and the command (-base-url) both apply.
package baseurl

import "net/url"

// Check reports whether raw is http:// or https:// with a host and no
// query or fragment: a typo must not send credentials somewhere
// unexpected, or fail later with a confusing transport error. It returns
// nil, or the reason in a few words.
func Check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return errNotHTTP
	}
	return nil
}

type reason string

func (r reason) Error() string { return string(r) }

// errNotHTTP is the reason for a URL of the wrong shape.
const errNotHTTP = reason("must be http:// or https:// with a host and no query")
